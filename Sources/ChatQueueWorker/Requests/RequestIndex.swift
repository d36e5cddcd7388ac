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
        // One hash of the id in the common case; a duplicate id puts the first back.
        guard var earlier = tags.updateValue(DeliveryTags(first: deliveryTag), forKey: requestID) else { return }
        earlier.others.append(deliveryTag)
        tags[requestID] = earlier
    }

    mutating func remove(_ requestID: String, deliveryTag: UInt64) {
        // One hash of the id in the common case (one delivery per id).
        guard let position = tags.index(forKey: requestID) else { return }
        var entry = tags.values[position]
        guard !entry.others.isEmpty else {
            if entry.first == deliveryTag { tags.remove(at: position) }
            return
        }
        if entry.first == deliveryTag {
            entry.first = entry.others.removeFirst()
        } else {
            entry.others.removeAll { $0 == deliveryTag }
        }
        tags.values[position] = entry
    }

    /// The delivery tags in flight for `requestID` (empty: none).
    func deliveryTags(of requestID: String) -> [UInt64] {
        tags[requestID]?.all ?? []
    }
}
