// The provider-like limits of a running mock: how many completion requests are
// in progress, the concurrency limit that answers 429 above it, and the status
// every request fails with. All atomics: every completion request reads them,
// so the benchmark path takes no lock for them.

import Synchronization

final class MockTraffic: Sendable {
    /// Completion requests admitted and not yet fully answered.
    private let inProgressCount = Atomic<Int>(0)
    private let peakCount = Atomic<Int>(0)
    /// The concurrency limit K; 0 means none.
    private let limit: Atomic<Int>
    /// The status every completion request fails with; 0 means none.
    private let failStatus: Atomic<Int>

    /// What a provider with a concurrency limit does with one more request.
    enum Admission {
        /// Counted as in progress (`inProgress` includes it) until ``MockTraffic/release()``.
        case admitted(inProgress: Int, limit: Int?)
        /// K requests are in progress already: 429, not counted.
        case rejected(limit: Int)
    }

    init(maxConcurrentRequests: Int?, failEveryRequest: Int?) {
        self.limit = Atomic(Self.encodedLimit(maxConcurrentRequests))
        self.failStatus = Atomic(failEveryRequest ?? 0)
    }

    var maxConcurrentRequests: Int? {
        let limit = self.limit.load(ordering: .relaxed)
        return limit > 0 ? limit : nil
    }

    func setMaxConcurrentRequests(_ limit: Int?) {
        self.limit.store(Self.encodedLimit(limit), ordering: .relaxed)
    }

    var failEveryRequest: Int? {
        let status = self.failStatus.load(ordering: .relaxed)
        return status > 0 ? status : nil
    }

    func setFailEveryRequest(_ status: Int?) {
        self.failStatus.store(status ?? 0, ordering: .relaxed)
    }

    var inProgress: Int { self.inProgressCount.load(ordering: .relaxed) }
    var peakInProgress: Int { self.peakCount.load(ordering: .relaxed) }

    func admit() -> Admission {
        let limit = self.limit.load(ordering: .relaxed)
        let now: Int
        if limit == 0 {
            now = self.inProgressCount.wrappingAdd(1, ordering: .relaxed).newValue
        } else {
            // Compare-and-swap, so a rejected request never counts, not even for a moment.
            var current = self.inProgressCount.load(ordering: .relaxed)
            while true {
                if current >= limit { return .rejected(limit: limit) }
                let (exchanged, original) = self.inProgressCount.compareExchange(
                    expected: current, desired: current + 1, ordering: .relaxed)
                if exchanged { break }
                current = original
            }
            now = current + 1
        }
        var peak = self.peakCount.load(ordering: .relaxed)
        while now > peak {
            let (exchanged, original) = self.peakCount.compareExchange(expected: peak, desired: now, ordering: .relaxed)
            if exchanged { break }
            peak = original
        }
        return .admitted(inProgress: now, limit: limit > 0 ? limit : nil)
    }

    /// An admitted request's response was written, or its connection closed.
    func release() {
        self.inProgressCount.wrappingSubtract(1, ordering: .relaxed)
    }

    private static func encodedLimit(_ limit: Int?) -> Int {
        guard let limit else { return 0 }
        return max(1, limit)
    }
}

extension MockTraffic.Admission {
    /// OpenAI's rate-limit headers, sent with every completion answer while a limit is set:
    /// the limit, and what is left of it with this request counted (0 when it was rejected).
    var rateLimitHeaders: [(String, String)] {
        switch self {
        case .admitted(_, nil):
            return []
        case .admitted(let inProgress, let limit?):
            return Self.headers(limit: limit, remaining: max(0, limit - inProgress))
        case .rejected(let limit):
            return Self.headers(limit: limit, remaining: 0)
        }
    }

    private static func headers(limit: Int, remaining: Int) -> [(String, String)] {
        [("x-ratelimit-limit-requests", String(limit)), ("x-ratelimit-remaining-requests", String(remaining))]
    }
}
