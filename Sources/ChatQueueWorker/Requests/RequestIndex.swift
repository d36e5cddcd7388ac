/// The in-flight deliveries of each request id, so that a cancel or a
/// returned reply (which name a request, not a delivery) finds them. Almost
/// always one delivery per id: the first tag is kept inline, so the common
/// insert and remove allocate nothing beyond the dictionary's entry.
struct RequestIndex {
    struct DeliveryTags {
        var first: UInt64
        /// Further deliveries with the same id (a requester reusing ids, duplicates).
        var others: [UInt64] = []

        var all: [UInt64] { [first] + others }
    }

    private var tags: [String: DeliveryTags] = [:]

    var count: Int { tags.count }

    mutating func insert(_ requestID: String, deliveryTag: UInt64) {
        if tags[requestID] != nil {
            tags[requestID]!.others.append(deliveryTag)
        } else {
            tags[requestID] = DeliveryTags(first: deliveryTag)
        }
    }

    mutating func remove(_ requestID: String, deliveryTag: UInt64) {
        guard var entry = tags[requestID] else { return }
        if entry.first == deliveryTag {
            guard let next = entry.others.first else {
                tags.removeValue(forKey: requestID)
                return
            }
            entry.first = next
            entry.others.removeFirst()
        } else {
            entry.others.removeAll { $0 == deliveryTag }
        }
        tags[requestID] = entry
    }

    /// The delivery tags in flight for `requestID` (empty: none).
    func deliveryTags(of requestID: String) -> [UInt64] {
        tags[requestID]?.all ?? []
    }

    mutating func removeAll() {
        tags.removeAll()
    }
}
