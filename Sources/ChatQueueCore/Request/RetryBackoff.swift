/// When to make another HTTP try, and how long to wait first. Pure.
///
/// Exponential backoff with full jitter: the n-th retry waits a random time
/// in [0, min(maxDelay, baseDelay * 2^(n-1))]. A `retry-after-ms` or
/// `Retry-After` from the upstream is a minimum; a wait longer than
/// `maxRetryAfter`, or one that would end past the request's deadline, is not
/// taken (the error reply then says retryable: true).
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
        var wait = ceiling * min(max(random, 0), 1)
        if let retryAfter {
            guard retryAfter.isFinite, retryAfter <= maxRetryAfter else { return nil }
            wait = max(wait, retryAfter)
        }
        guard wait.isFinite, wait < secondsLeft else { return nil }
        return wait
    }
}
