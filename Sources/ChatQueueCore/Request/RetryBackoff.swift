/// When to make another HTTP try, and how long to wait first. Pure.
///
/// Exponential backoff with full jitter: the n-th retry waits a random time
/// in [0, min(maxDelay, baseDelay * 2^(n-1))]. A `retry-after-ms` or
/// `Retry-After` from the upstream is a minimum, with a random part of up to
/// half of it (at most that backoff ceiling) on top when it decides the wait:
/// the requests an upstream told to come back together do not come back at
/// the same moment. A hint longer than `maxRetryAfter`, or a wait that would
/// end past the request's deadline, is not taken (the error reply then says
/// retryable: true).
public struct RetryBackoff: Sendable, Equatable {
    /// HTTP tries per delivery, the first included (`retry.max_attempts`).
    public var maxAttempts: Int
    /// The backoff base in seconds (`retry.base_delay`).
    public var baseDelay: Double
    /// The backoff cap in seconds (`retry.max_delay`).
    public var maxDelay: Double
    /// The longest upstream-requested wait honoured, in seconds (`retry.max_retry_after`).
    public var maxRetryAfter: Double

    public init(maxAttempts: Int = 4, baseDelay: Double = 0.5, maxDelay: Double = 30, maxRetryAfter: Double = 60) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    /// The wait in seconds before the next try, or nil when there is none.
    /// - triesMade: HTTP tries already made (>= 1).
    /// - retryAfter: the upstream's minimum wait in seconds, if it gave one.
    /// - secondsLeft: time until the request's deadline.
    /// - random: a number in [0, 1) (injected so tests are exact).
    public func delay(triesMade: Int, retryAfter: Double?, secondsLeft: Double, random: Double) -> Double? {
        guard triesMade < maxAttempts else { return nil }
        let exponent = min(max(triesMade - 1, 0), 30)
        let ceiling = min(maxDelay, baseDelay * Double(1 << exponent))
        let random = min(max(random, 0), 1)
        var wait = ceiling * random
        if let retryAfter {
            guard retryAfter.isFinite, retryAfter <= maxRetryAfter else { return nil }
            if retryAfter > 0 { wait = max(wait, retryAfter + min(ceiling, retryAfter / 2) * random) }
        }
        guard wait.isFinite, wait < secondsLeft else { return nil }
        return wait
    }
}
