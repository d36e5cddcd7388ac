import Testing

@testable import ChatQueueCore

@Suite("Retry backoff and Retry-After hints")
struct RetryBackoffTests {
    let policy = RetryBackoff(maxAttempts: 4, baseDelay: 0.5, maxDelay: 30, maxRetryAfter: 60)

    @Test("full jitter: the wait is random * min(maxDelay, base * 2^(tries-1))")
    func exponentialWithJitter() {
        #expect(policy.delay(triesMade: 1, retryAfter: nil, secondsLeft: 100, random: 1.0) == 0.5)
        #expect(policy.delay(triesMade: 2, retryAfter: nil, secondsLeft: 100, random: 0.5) == 0.5)
        #expect(policy.delay(triesMade: 3, retryAfter: nil, secondsLeft: 100, random: 1.0) == 2.0)
        #expect(policy.delay(triesMade: 1, retryAfter: nil, secondsLeft: 100, random: 0) == 0)
        let capped = RetryBackoff(maxAttempts: 100, baseDelay: 0.5, maxDelay: 30, maxRetryAfter: 60)
        #expect(capped.delay(triesMade: 20, retryAfter: nil, secondsLeft: 1000, random: 1.0) == 30)
    }

    @Test("no retry after the last attempt")
    func attemptsExhausted() {
        #expect(policy.delay(triesMade: 4, retryAfter: nil, secondsLeft: 100, random: 0.5) == nil)
    }

    @Test("Retry-After is a minimum, spread by up to half of it (at most the backoff); beyond max_retry_after or the deadline it is not taken")
    func retryAfter() {
        #expect(policy.delay(triesMade: 1, retryAfter: 3, secondsLeft: 100, random: 0) == 3)
        // Base 0.5: the first retry's backoff ceiling is 0.5 s, so 3 s becomes 3...3.5 s.
        #expect(policy.delay(triesMade: 1, retryAfter: 3, secondsLeft: 100, random: 0.5) == 3.25)
        // A short hint is spread by at most half of itself.
        #expect(policy.delay(triesMade: 3, retryAfter: 0.2, secondsLeft: 100, random: 0.99) == 2 * 0.99)
        #expect(policy.delay(triesMade: 1, retryAfter: 0.2, secondsLeft: 100, random: 1) == 0.5)
        #expect(policy.delay(triesMade: 1, retryAfter: 1, secondsLeft: 100, random: 0.2) == 1.1)
        #expect(policy.delay(triesMade: 1, retryAfter: 61, secondsLeft: 100, random: 0.1) == nil)
        #expect(policy.delay(triesMade: 1, retryAfter: 5, secondsLeft: 4, random: 0.1) == nil)
    }

    @Test("retry-after-ms wins over Retry-After; HTTP dates are relative to now")
    func parsesHeaders() {
        #expect(RetryBackoff.retryAfterSeconds(milliseconds: "1500", header: "9", nowUnixSeconds: 0) == 1.5)
        #expect(RetryBackoff.retryAfterSeconds(milliseconds: nil, header: "2", nowUnixSeconds: 0) == 2)
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777
        #expect(
            RetryBackoff.retryAfterSeconds(
                milliseconds: nil, header: "Sun, 06 Nov 1994 08:49:37 GMT", nowUnixSeconds: 784_111_770) == 7)
        #expect(RetryBackoff.retryAfterSeconds(milliseconds: nil, header: "soon", nowUnixSeconds: 0) == nil)
    }

    @Test(
        "unusable hints are ignored, never trapping: negative, NaN, infinite, malformed or impossible dates",
        arguments: [
            (String?.some("-5"), String?.none),
            ("nan", nil), ("inf", nil), ("1e400", nil), ("-0.5", nil), ("soon", nil),
            (nil, "-1"), (nil, "nan"), (nil, "inf"), (nil, "1e400"), (nil, "-inf"),
            (nil, "Sun, 06 Nov 99999999999 08:49:37 GMT"),
            (nil, "Sun, 06 Nov 9223372036854775807 08:49:37 GMT"),
            (nil, "Sun, 06 Nov -9223372036854775808 08:49:37 GMT"),
            (nil, "Sun, 06 Nov 0000 08:49:37 GMT"),
            (nil, "Sun, 32 Nov 1994 08:49:37 GMT"),
            (nil, "Sun, 31 Nov 1994 08:49:37 GMT"),
            (nil, "Sun, 29 Feb 1995 08:49:37 GMT"),
            (nil, "Sun, 00 Nov 1994 08:49:37 GMT"),
            (nil, "Sun, 06 Nov 1994 24:00:00 GMT"),
            (nil, "Sun, 06 Nov 1994 08:60:00 GMT"),
            (nil, "Sun, 06 Nov 1994 08:49:61 GMT"),
            (nil, "Sun, 06 Nov 1994 -8:49:37 GMT"),
            (nil, "Sun, 06 Nov 1994 08:49:37:00 GMT"),
            (nil, "Sun, 6 Nov 1994 08:49:37 GMT"),
            (nil, "Sun, +6 Nov 1994 08:49:37 GMT"),
            (nil, "Sun, 06 nov 1994 08:49:37 GMT"),
            (nil, "Sun, 06 Nov 1994 08:49:37 UTC"),
            (nil, String(repeating: "9", count: 10_000)),
        ]
    )
    func ignoredHints(milliseconds: String?, header: String?) {
        let hint = RetryBackoff.retryAfterHint(milliseconds: milliseconds, header: header, nowUnixSeconds: 1e9)
        guard case .ignored(let shown) = hint else {
            Issue.record("expected the hint ignored, got \(hint)")
            return
        }
        #expect(shown.utf8.count <= 64)
        #expect(RetryBackoff.retryAfterSeconds(milliseconds: milliseconds, header: header, nowUnixSeconds: 1e9) == nil)
    }

    @Test("hint edge cases: absent, huge but finite, dates in the past and at the calendar's ends")
    func hintEdges() {
        #expect(RetryBackoff.retryAfterHint(milliseconds: nil, header: nil, nowUnixSeconds: 0) == .absent)
        // A huge finite wait is a hint; delay() then declines it as longer than max_retry_after.
        #expect(RetryBackoff.retryAfterHint(milliseconds: nil, header: "1e300", nowUnixSeconds: 0) == .seconds(1e300))
        #expect(policy.delay(triesMade: 1, retryAfter: 1e300, secondsLeft: .infinity, random: 0.5) == nil)
        // An unusable retry-after-ms falls back to Retry-After.
        #expect(RetryBackoff.retryAfterHint(milliseconds: "nan", header: "3", nowUnixSeconds: 0) == .seconds(3))
        #expect(
            RetryBackoff.retryAfterHint(milliseconds: nil, header: "Sun, 06 Nov 1994 08:49:37 GMT", nowUnixSeconds: 1e12)
                == .seconds(0))
        #expect(HTTPDate.parse("Mon, 01 Jan 0001 00:00:00 GMT") == -62_135_596_800)
        #expect(HTTPDate.parse("Fri, 31 Dec 9999 23:59:59 GMT") == 253_402_300_799)
        #expect(HTTPDate.parse("Tue, 29 Feb 2000 12:00:60 GMT") == 951_825_659)  // leap second read as :59
        let lastDay = "Fri, 31 Dec 9999 23:59:59 GMT"
        #expect(RetryBackoff.retryAfterHint(milliseconds: nil, header: lastDay, nowUnixSeconds: .nan) == .ignored(lastDay))
    }
}
