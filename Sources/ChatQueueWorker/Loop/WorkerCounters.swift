/// What the worker has done since it started (for logs, status and metrics).
public struct WorkerCounters: Sendable, Equatable {
    /// Deliveries taken from the queue.
    public var received = 0
    /// Requests answered with chat.completion.
    public var succeeded = 0
    /// Requests answered with an error reply.
    public var failed = 0
    /// Requests dead-lettered (invalid, or nowhere to reply).
    public var rejected = 0
    /// HTTP retries made.
    public var retried = 0
    /// Deliveries that were redeliveries (attempt > 1).
    public var redelivered = 0
    /// Replies the broker could not route (the requester's queue was gone).
    public var unroutableReplies = 0
    /// Chunks forwarded.
    public var chunksPublished = 0
    /// Deliveries handed back to the queue (shutdown, lost publish).
    public var requeued = 0
    /// Final replies published again after the broker refused them.
    public var finalsRepublished = 0
    /// Deliveries dead-lettered because the broker refused their final reply every time.
    public var finalsRefused = 0
    /// Broker connections re-established after a loss.
    public var reconnects = 0
    /// Publisher connections replaced after a refused final.
    public var publisherReplacements = 0
    /// Attempts to connect to the broker that failed (each is tried again after a backoff).
    public var brokerConnectFailures = 0
    /// Times no route had an upstream up (every breaker open), so the worker degraded.
    public var degradations = 0
    /// Requests handed back to the queue unanswered because no upstream of
    /// their route was up (breakers open, an account fault held).
    public var held = 0
    /// Requests taken one at a time while degraded, to probe the upstream.
    public var upstreamProbes = 0

    // Cancellation and abandoned requests (issue 11).
    /// Requests answered `cancelled` (a cancel message named them, in flight or before they arrived).
    public var cancelled = 0
    /// Requests acked unanswered because their reply queue was gone (a reply came back unroutable).
    public var abandoned = 0
    /// Messages taken from the worker's cancel queue.
    public var cancelsReceived = 0
    /// Of those, the ones dropped as malformed.
    public var cancelsMalformed = 0
    /// Of those, the ones remembered (held here or not) for the request's arrival or redelivery.
    public var cancelsRemembered = 0

    public init() {}
}
