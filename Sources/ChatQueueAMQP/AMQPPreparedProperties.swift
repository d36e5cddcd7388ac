import CRabbitMQ

/// Message properties built once and published many times (all the chunks of
/// one request attempt): the strings and the header table live in memory
/// owned here, so a publish does no Swift string, array or table work; only
/// an integer header (x-seq) is patched per message.
public final class AMQPPreparedProperties {
    let properties: UnsafeMutablePointer<amqp_basic_properties_t>
    let routingKey: amqp_bytes_t
    private let entries: UnsafeMutablePointer<amqp_table_entry_t>
    private let headerNames: [String]
    private let storage: UnsafeMutableRawPointer

    /// - Parameters:
    ///   - routingKey: where the messages go (through the default exchange).
    ///   - source: the properties; `.int` headers can be changed later with `setInteger`.
    public init(routingKey: String, _ source: AMQPOutgoingProperties) {
        var strings: [String] = [routingKey]
        for optional in [source.contentType, source.correlationID, source.messageID, source.replyTo, source.type, source.expiration] {
            if let text = optional { strings.append(text) }
        }
        for (name, value) in source.headers {
            strings.append(name)
            if case .string(let text) = value { strings.append(text) }
        }
        let total = strings.reduce(0) { $0 + $1.utf8.count }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(total, 1), alignment: 8)
        var offset = 0
        func place(_ text: String) -> amqp_bytes_t {
            let start = buffer + offset
            for byte in text.utf8 {
                buffer.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
                offset += 1
            }
            return amqp_bytes_t(len: text.utf8.count, bytes: start)
        }
        let key = place(routingKey)

        let properties = UnsafeMutablePointer<amqp_basic_properties_t>.allocate(capacity: 1)
        properties.initialize(to: amqp_basic_properties_t())
        properties.pointee._flags = CQ_FLAG_DELIVERY_MODE
        properties.pointee.delivery_mode = source.persistent ? 2 : 1
        // The optional string properties: each sets its flag bit and field when present.
        let fields: [(String?, amqp_flags_t, WritableKeyPath<amqp_basic_properties_t, amqp_bytes_t>)] = [
            (source.contentType, CQ_FLAG_CONTENT_TYPE, \.content_type),
            (source.correlationID, CQ_FLAG_CORRELATION_ID, \.correlation_id),
            (source.messageID, CQ_FLAG_MESSAGE_ID, \.message_id),
            (source.replyTo, CQ_FLAG_REPLY_TO, \.reply_to),
            (source.type, CQ_FLAG_TYPE, \.type),
            (source.expiration, CQ_FLAG_EXPIRATION, \.expiration),
        ]
        for (text, flag, field) in fields {
            guard let text else { continue }
            properties.pointee._flags |= flag
            properties.pointee[keyPath: field] = place(text)
        }
        let entries = UnsafeMutablePointer<amqp_table_entry_t>.allocate(capacity: max(source.headers.count, 1))
        for (index, (name, value)) in source.headers.enumerated() {
            var entry = amqp_table_entry_t()
            entry.key = place(name)
            switch value {
            case .string(let text):
                entry.value.kind = UInt8(ascii: "S")
                entry.value.value.bytes = place(text)
            case .int(let number):
                entry.value.kind = UInt8(ascii: "l")
                entry.value.value.i64 = number
            case .unsigned(let number):
                entry.value.kind = UInt8(ascii: "T")
                entry.value.value.u64 = number
            case .bool(let flag):
                entry.value.kind = UInt8(ascii: "t")
                entry.value.value.boolean = flag ? 1 : 0
            case .double(let number):
                entry.value.kind = UInt8(ascii: "d")
                entry.value.value.f64 = number
            case .other:
                entry.value.kind = UInt8(ascii: "V")
            }
            (entries + index).initialize(to: entry)
        }
        if !source.headers.isEmpty {
            properties.pointee._flags |= CQ_FLAG_HEADERS
            properties.pointee.headers = amqp_table_t(num_entries: Int32(source.headers.count), entries: entries)
        }
        self.storage = buffer
        self.routingKey = key
        self.properties = properties
        self.entries = entries
        self.headerNames = source.headers.map(\.0)
    }

    deinit {
        properties.deallocate()
        entries.deallocate()
        storage.deallocate()
    }

    /// Sets an integer header given at init (a programmer error otherwise).
    public func setInteger(_ value: Int64, forHeader name: String) {
        guard let index = headerNames.firstIndex(of: name), entries[index].value.kind == UInt8(ascii: "l") else {
            preconditionFailure("no integer header \(name) in these prepared properties")
        }
        entries[index].value.value.i64 = value
    }
}

extension AMQPConnection {
    /// Publishes through the default exchange with prepared properties.
    public func publish(prepared: AMQPPreparedProperties, mandatory: Bool, body: UnsafeRawBufferPointer) throws(AMQPError) {
        try writeAllUnsent()
        let bytes = amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress))
        let status = amqp_basic_publish(
            state, Self.channel, amqp_empty_bytes, prepared.routingKey, mandatory ? 1 : 0, 0, prepared.properties, bytes)
        try check(status, "basic.publish to \(String(amqpBytes: prepared.routingKey))")
    }

    /// `publish(prepared:)` for a byte array (withUnsafeBytes would lose the typed throw).
    public func publish(prepared: AMQPPreparedProperties, mandatory: Bool, body: [UInt8]) throws(AMQPError) {
        var failure: AMQPError?
        body.withUnsafeBytes { bytes in
            do throws(AMQPError) {
                try publish(prepared: prepared, mandatory: mandatory, body: bytes)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }
}
