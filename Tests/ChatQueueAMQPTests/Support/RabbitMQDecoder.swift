import CRabbitMQ

/// rabbitmq-c's own decoders, for checking what we encode. What they return
/// lives in this decoder's pool, and points into copies of the input the
/// decoder keeps (decoded strings are not copied): valid as long as the decoder.
final class RabbitMQDecoder {
    private var pool = amqp_pool_t()
    private var inputs: [UnsafeMutableRawBufferPointer] = []

    init() { init_amqp_pool(&pool, 4096) }

    deinit {
        empty_amqp_pool(&pool)
        inputs.forEach { $0.deallocate() }
    }

    /// A copy of `bytes` that lives as long as the decoder.
    private func keep(_ bytes: some Collection<UInt8>) -> amqp_bytes_t {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        copy.copyBytes(from: bytes)
        inputs.append(copy)
        return amqp_bytes_t(len: bytes.count, bytes: copy.baseAddress)
    }

    /// A method frame's payload (the method id, then its arguments): the id
    /// and the decoded arguments, nil when rabbitmq-c refused them.
    func method(_ payload: [UInt8]) -> (id: amqp_method_number_t, decoded: UnsafeMutableRawPointer?) {
        let id = payload.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        var decoded: UnsafeMutableRawPointer?
        let status = amqp_decode_method(id, &pool, keep(payload.dropFirst(4)), &decoded)
        return (id, status == 0 ? decoded : nil)
    }

    /// Encoded basic properties (the flag word first), decoded; nil when rabbitmq-c refused them.
    func properties(_ encoded: [UInt8]) -> amqp_basic_properties_t? {
        var decoded: UnsafeMutableRawPointer?
        let status = amqp_decode_properties(60, &pool, keep(encoded), &decoded)
        guard status == 0, let decoded else { return nil }
        return decoded.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee
    }
}
