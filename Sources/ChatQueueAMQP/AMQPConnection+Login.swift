import CRabbitMQ

/// Logging in: SASL PLAIN with client properties that name the connection
/// and announce what rabbitmq-c 0.11 leaves out.
extension AMQPConnection {
    /// The capabilities rabbitmq-c 0.11 does not announce by itself. Without
    /// them the broker sends neither connection.blocked (it just stops reading
    /// from a publisher under an alarm) nor basic.cancel when it drops a consumer.
    static let extraCapabilities = ["connection.blocked", "consumer_cancel_notify", "publisher_confirms", "basic.nack"]

    /// The login's client properties: connection_name and the capabilities
    /// above (the library merges them with its own).
    var clientProperties: [(String, AMQPTableValue)] {
        [
            ("connection_name", .field(.string(options.connectionName))),
            ("capabilities", .table(Self.extraCapabilities.map { ($0, .bool(true)) })),
        ]
    }

    func logIn() throws(AMQPError) {
        arena.reset()
        let reply = AMQPTable.with(clientProperties, in: &arena) { _, table in
            withUnsafePointer(to: table) { properties in
                cq_amqp_login_plain_with_properties(
                    state, options.vhost, 1, 131_072, Int32(options.heartbeat), properties, options.user,
                    options.password)
            }
        }
        try checkReply(reply, "login as \(options.user) to vhost \(options.vhost)", code: .login)
    }
}
