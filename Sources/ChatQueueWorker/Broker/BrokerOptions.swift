import ChatQueueAMQP
import ChatQueueConfig

extension Settings {
    /// How to connect to one of the configured brokers: the URL's parts plus
    /// `broker.heartbeat` and `broker.tls.*`. Used by the worker and by every
    /// command that talks to the broker, so they connect the same way.
    public func amqpOptions(for endpoint: BrokerEndpoint, connectionName: String) -> AMQPConnectionOptions {
        AMQPConnectionOptions(
            host: endpoint.host, port: endpoint.port, vhost: endpoint.vhost, user: endpoint.user,
            password: endpoint.password.value, tls: endpoint.tls,
            caFile: broker.tls.caFile ?? AMQPConnectionOptions.systemCABundle,
            certFile: broker.tls.certFile, keyFile: broker.tls.keyFile,
            verifyPeer: broker.tls.verify, heartbeat: broker.heartbeat, connectionName: connectionName)
    }
}
