import CRabbitMQ

/// Scratch bytes that outlive one library call: Swift strings handed to C as
/// `amqp_bytes_t` must stay valid for the whole call (`amqp_cstring_bytes` of
/// a temporary would dangle), so they are copied here first. Reused by every
/// call on a connection (`reset()` keeps the capacity).
struct ByteArena {
    private var storage: [UInt8] = []

    mutating func reset() { storage.removeAll(keepingCapacity: true) }

    /// Copies `string` in; the range finds it again inside `withBytes`.
    mutating func append(_ string: String) -> Range<Int> {
        let start = storage.count
        storage.append(contentsOf: string.utf8)
        return start..<storage.count
    }

    /// The bytes' base address, valid inside `body` only.
    mutating func withBytes<R>(_ body: (UnsafeMutableRawPointer) -> R) -> R {
        if storage.isEmpty { storage.reserveCapacity(1) }
        return storage.withUnsafeMutableBytes { raw in
            // An empty array may have no base address; any non-null pointer does for zero lengths.
            body(raw.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 1)!)
        }
    }
}

extension UnsafeMutableRawPointer {
    /// The arena bytes at `range`, as rabbitmq-c takes them (the pointer is an arena's base).
    func amqpBytes(_ range: Range<Int>) -> amqp_bytes_t {
        amqp_bytes_t(len: range.count, bytes: self + range.lowerBound)
    }
}
