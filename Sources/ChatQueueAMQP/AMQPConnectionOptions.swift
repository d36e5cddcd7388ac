/// Where and how to connect.
public struct AMQPConnectionOptions: Sendable {
    public var host: String
    public var port: Int
    public var vhost: String
    public var user: String
    public var password: String
    public var tls: Bool
    /// CA bundle for verifying the broker's certificate (TLS only).
    public var caFile: String?
    /// Client certificate and key for mutual TLS.
    public var certFile: String?
    public var keyFile: String?
    /// Verify the broker's certificate and host name (TLS only).
    public var verifyPeer: Bool
    /// Seconds; 0 disables heartbeats.
    public var heartbeat: Int
    /// Seconds for TCP connect plus the AMQP handshake.
    public var connectTimeout: Double
    /// Seconds to wait for the answer to a synchronous method (declare, consume, ...).
    public var rpcTimeout: Double
    /// Shown as the connection's name in rabbitmqctl and the management UI.
    public var connectionName: String

    /// Debian's CA bundle; rabbitmq-c verifies against no CA at all unless given one.
    public static let systemCABundle = "/etc/ssl/certs/ca-certificates.crt"

    public init(
        host: String = "127.0.0.1", port: Int = 5672, vhost: String = "/", user: String = "guest",
        password: String = "guest", tls: Bool = false, caFile: String? = nil, certFile: String? = nil,
        keyFile: String? = nil, verifyPeer: Bool = true, heartbeat: Int = 30, connectTimeout: Double = 10,
        rpcTimeout: Double = 30, connectionName: String = "chatqueue"
    ) {
        self.host = host
        self.port = port
        self.vhost = vhost
        self.user = user
        self.password = password
        self.tls = tls
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.verifyPeer = verifyPeer
        self.heartbeat = heartbeat
        self.connectTimeout = connectTimeout
        self.rpcTimeout = rpcTimeout
        self.connectionName = connectionName
    }
}
