/// Cancels of requests this worker does not hold (yet): remembered so that a
/// request arriving after its cancel is answered `cancelled` without calling
/// the upstream. Bounded in time (`cancel.remember_seconds`) and count
/// (`cancel.remember_max`, oldest forgotten first), so no sequence of cancel
/// messages can grow the worker's memory. Pure.
///
/// Entries are kept in arrival order, which is also expiry order (one fixed
/// lifetime), in an array with a moving head beside a dictionary; remembering
/// and looking up are O(1) amortised.
public struct PendingCancels: Sendable {
    /// How long a cancel is remembered, in nanoseconds.
    public let lifetime: UInt64
    /// The most ids remembered at once (0: none are).
    public let capacity: Int

    private var expiries: [String: Deadline] = [:]
    private var order: [(id: String, expires: Deadline)] = []
    private var head = 0

    public init(lifetime: UInt64, capacity: Int) {
        self.lifetime = lifetime
        self.capacity = max(0, capacity)
    }

    /// Ids remembered now (expired ones not yet dropped included).
    public var count: Int { expiries.count }
    /// Entries held in memory, dropped ones not yet compacted away included.
    public var storedCount: Int { order.count }
    public var isEmpty: Bool { expiries.isEmpty }

    /// Remembers a cancel of `id` until `now + lifetime`. Returns false when
    /// nothing was added: the id is remembered already (its first time
    /// stands), or remembering is off.
    @discardableResult
    public mutating func remember(_ id: String, now: Deadline) -> Bool {
        dropExpired(now: now)
        guard capacity > 0, expiries[id] == nil else { return false }
        while expiries.count >= capacity { dropOldest() }
        let expires = now + lifetime
        expiries[id] = expires
        order.append((id, expires))
        return true
    }

    /// Whether a cancel of `id` is remembered and not expired.
    public func contains(_ id: String, now: Deadline) -> Bool {
        guard let expires = expiries[id] else { return false }
        return now < expires
    }

    private mutating func dropExpired(now: Deadline) {
        while head < order.count, order[head].expires <= now { dropOldest() }
    }

    private mutating func dropOldest() {
        guard head < order.count else { return }
        expiries.removeValue(forKey: order[head].id)
        head += 1
        if head == order.count {
            order.removeAll(keepingCapacity: order.count <= 4096)
            head = 0
        } else if head > 1024, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
