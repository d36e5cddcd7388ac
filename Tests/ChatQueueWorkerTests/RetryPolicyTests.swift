import Testing

@testable import ChatQueueWorker

struct RetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 4, baseDelay: 0.5, maxDelay: 30, maxRetryAfter: 60)

    @Test("full jitter: the wait is random * min(maxDelay, base * 2^(tries-1))")
    func exponentialWithJitter() {
        #expect(policy.delay(triesMade: 1, retryAfter: nil, secondsLeft: 100, random: 1.0) == 0.5)
        #expect(policy.delay(triesMade: 2, retryAfter: nil, secondsLeft: 100, random: 0.5) == 0.5)
        #expect(policy.delay(triesMade: 3, retryAfter: nil, secondsLeft: 100, random: 1.0) == 2.0)
        #expect(policy.delay(triesMade: 1, retryAfter: nil, secondsLeft: 100, random: 0) == 0)
        let capped = RetryPolicy(maxAttempts: 100, baseDelay: 0.5, maxDelay: 30, maxRetryAfter: 60)
        #expect(capped.delay(triesMade: 20, retryAfter: nil, secondsLeft: 1000, random: 1.0) == 30)
    }

    @Test("no retry after the last attempt")
    func attemptsExhausted() {
        #expect(policy.delay(triesMade: 4, retryAfter: nil, secondsLeft: 100, random: 0.5) == nil)
    }

    @Test("Retry-After is a minimum; beyond max_retry_after or the deadline it is not taken")
    func retryAfter() {
        #expect(policy.delay(triesMade: 1, retryAfter: 3, secondsLeft: 100, random: 0.1) == 3)
        #expect(policy.delay(triesMade: 1, retryAfter: 61, secondsLeft: 100, random: 0.1) == nil)
        #expect(policy.delay(triesMade: 1, retryAfter: 5, secondsLeft: 4, random: 0.1) == nil)
    }

    @Test("retry-after-ms wins over Retry-After; HTTP dates are relative to now")
    func parsesHeaders() {
        #expect(RetryPolicy.retryAfterSeconds(milliseconds: "1500", header: "9", nowUnixSeconds: 0) == 1.5)
        #expect(RetryPolicy.retryAfterSeconds(milliseconds: nil, header: "2", nowUnixSeconds: 0) == 2)
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777
        #expect(
            RetryPolicy.retryAfterSeconds(
                milliseconds: nil, header: "Sun, 06 Nov 1994 08:49:37 GMT", nowUnixSeconds: 784_111_770) == 7)
        #expect(RetryPolicy.retryAfterSeconds(milliseconds: nil, header: "soon", nowUnixSeconds: 0) == nil)
    }
}
