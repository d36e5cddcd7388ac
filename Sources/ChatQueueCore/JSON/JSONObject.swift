/// The members of a JSON object, in the order they were written or added.
///
/// Keeping the order means a reply reads like the API documents it, and
/// objects the worker builds serialize deterministically. Chat payload objects
/// are small, so lookups are linear scans rather than hashing.
///
/// Keys are unique: adding a key that exists replaces its value in place.
/// Equality is JSON's: the same keys with equal values, in any order.
public struct JSONObject: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (key: String, value: JSONValue)

    /// One stored member. A struct rather than the `Element` tuple so arrays of
    /// members get specialized (fast) copy and destroy code.
    struct Member: Sendable {
        var key: String
        var value: JSONValue
    }

    var members: [Member]

    /// An empty object.
    public init() {
        members = []
    }

    /// An object with these members in this order; for a repeated key the
    /// last value wins, at the position of the first.
    public init(_ pairs: [(String, JSONValue)]) {
        members = []
        members.reserveCapacity(pairs.count)
        for (key, value) in pairs {
            self[key] = value
        }
    }

    /// An object with the literal's members in the literal's order.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }

    /// Members already known to have unique keys (the parser checks).
    init(uniqueMembers: [Member]) {
        members = uniqueMembers
    }

    /// The value for `key`. Setting nil removes the member; setting an
    /// existing key keeps its position; a new key is appended.
    public subscript(key: String) -> JSONValue? {
        get {
            guard let position = position(of: key) else { return nil }
            return members[position].value
        }
        set {
            let position = position(of: key)
            switch (position, newValue) {
            case (let position?, let value?):
                members[position].value = value
            case (let position?, nil):
                members.remove(at: position)
            case (nil, let value?):
                members.append(Member(key: key, value: value))
            case (nil, nil):
                break
            }
        }
    }

    /// Where `key` is stored. Comparing UTF-8 lengths first skips most
    /// mismatching keys cheaply.
    func position(of key: String) -> Int? {
        let length = key.utf8.count
        for position in members.indices where members[position].key.utf8.count == length && members[position].key == key {
            return position
        }
        return nil
    }

    /// The keys in order.
    public var keys: [String] { members.map(\.key) }

    /// The values in key order.
    public var values: [JSONValue] { members.map(\.value) }

    /// The number of members.
    public var count: Int { members.count }

    /// Whether the object has no members.
    public var isEmpty: Bool { members.isEmpty }

    /// Iterates the members in order.
    public func makeIterator() -> Iterator {
        Iterator(members: members)
    }

    /// Yields the members in order as `(key:, value:)` pairs.
    public struct Iterator: IteratorProtocol {
        private let members: [Member]
        private var position = 0

        init(members: [Member]) {
            self.members = members
        }

        public mutating func next() -> Element? {
            guard position < members.count else { return nil }
            defer { position += 1 }
            return (key: members[position].key, value: members[position].value)
        }
    }

    public var underestimatedCount: Int { members.count }

    /// JSON equality: the same keys with equal values, in any order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        // Fast path: same order (the usual case when comparing round trips).
        var sameOrder = true
        for (left, right) in zip(lhs.members, rhs.members) where left.key != right.key {
            sameOrder = false
            break
        }
        if sameOrder {
            for (left, right) in zip(lhs.members, rhs.members) where left.value != right.value {
                return false
            }
            return true
        }
        for member in lhs.members {
            guard let other = rhs[member.key], other == member.value else { return false }
        }
        return true
    }
}
