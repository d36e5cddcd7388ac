import ChatQueueCore
import Testing

/// The per-upstream controls as pure values: the circuit breaker and the AIMD window.
@Suite("Upstream control: circuit breaker and concurrency window")
struct UpstreamControlTests {
    static let second: UInt64 = 1_000_000_000
    static let policy = CircuitBreaker.Policy(
        failureThreshold: 3, cooldown: 10 * second, maxCooldown: 60 * second, holdProbeInterval: 30 * second)
    static func at(_ seconds: UInt64) -> Deadline { Deadline(nanoseconds: seconds * second) }

    @Test("closed: failures in a row open it at the threshold, for the cooldown; an answer resets the count")
    func opensAtThreshold() {
        var breaker = CircuitBreaker(policy: Self.policy)
        #expect(breaker.record(.trouble(retryAfter: nil), now: Self.at(1)) == .none)
        #expect(breaker.record(.answered, now: Self.at(2)) == .none)
        #expect(breaker.consecutiveFailures == 0)
        #expect(breaker.record(.trouble(retryAfter: nil), now: Self.at(3)) == .none)
        #expect(breaker.record(.trouble(retryAfter: nil), now: Self.at(4)) == .none)
        #expect(breaker.consecutiveFailures == 2)
        #expect(breaker.record(.trouble(retryAfter: nil), now: Self.at(5)) == .opened(.failures, until: Self.at(15)))
        #expect(breaker.state.name == "open")
        #expect(!breaker.admits(now: Self.at(14)))
        #expect(breaker.isDown(now: Self.at(14)))
        #expect(breaker.reopensAt == Self.at(15))
        #expect(breaker.openings == 1)
    }

    @Test("Retry-After is a floor of the cooldown, capped at max_cooldown; not for account holds")
    func retryAfterFloor() {
        var breaker = CircuitBreaker(policy: CircuitBreaker.Policy(
            failureThreshold: 1, cooldown: 10 * Self.second, maxCooldown: 60 * Self.second,
            holdProbeInterval: 30 * Self.second))
        #expect(breaker.record(.trouble(retryAfter: 25), now: Self.at(0)) == .opened(.failures, until: Self.at(25)))
        breaker = CircuitBreaker(policy: breaker.policy)
        #expect(breaker.record(.trouble(retryAfter: 1e12), now: Self.at(0)) == .opened(.failures, until: Self.at(60)))
        breaker = CircuitBreaker(policy: breaker.policy)
        #expect(breaker.record(.trouble(retryAfter: 2), now: Self.at(0)) == .opened(.failures, until: Self.at(10)))
        breaker = CircuitBreaker(policy: breaker.policy)
        #expect(breaker.record(.trouble(retryAfter: -5), now: Self.at(0)) == .opened(.failures, until: Self.at(10)))
    }

    @Test("half-open: one probe at a time; its success closes, its failure opens again, a stopped probe frees the slot")
    func halfOpen() {
        var breaker = CircuitBreaker(policy: Self.policy)
        for t in 1...3 { _ = breaker.record(.trouble(retryAfter: nil), now: Self.at(UInt64(t))) }
        // Time up: the probe may go; once out, nothing else.
        #expect(breaker.admits(now: Self.at(13)))
        #expect(!breaker.isDown(now: Self.at(13)))
        breaker.tryStarted(now: Self.at(13))
        #expect(breaker.state == .halfOpen(reason: .failures, probing: true))
        #expect(!breaker.admits(now: Self.at(14)))
        // Its failure opens it again, counted.
        #expect(breaker.record(.trouble(retryAfter: nil), now: Self.at(14)) == .opened(.failures, until: Self.at(24)))
        #expect(breaker.openings == 2)
        // A cancelled probe lets the next one go.
        breaker.tryStarted(now: Self.at(24))
        #expect(breaker.record(.stopped, now: Self.at(25)) == .none)
        #expect(breaker.admits(now: Self.at(25)))
        breaker.tryStarted(now: Self.at(25))
        #expect(breaker.record(.answered, now: Self.at(26)) == .closed)
        #expect(breaker.state == .closed(consecutiveFailures: 0))
        #expect(breaker.reason == nil)
    }

    @Test("an account fault opens it at once for the probe interval; a probe's network trouble keeps the account reason")
    func accountHold() {
        var breaker = CircuitBreaker(policy: Self.policy)
        #expect(breaker.record(.accountFault(.paymentRequired), now: Self.at(0)) == .opened(.paymentRequired, until: Self.at(30)))
        #expect(breaker.reason?.name == "payment_required")
        breaker.tryStarted(now: Self.at(30))
        #expect(breaker.record(.trouble(retryAfter: 1000), now: Self.at(31)) == .opened(.paymentRequired, until: Self.at(61)))
        breaker.tryStarted(now: Self.at(61))
        #expect(breaker.record(.accountFault(.authentication), now: Self.at(62)) == .opened(.authentication, until: Self.at(92)))
        breaker.tryStarted(now: Self.at(92))
        #expect(breaker.record(.answered, now: Self.at(93)) == .closed)
    }

    @Test("a try that started before the breaker opened does not undo the opening")
    func lateAnswer() {
        var breaker = CircuitBreaker(policy: Self.policy)
        for t in 1...3 { _ = breaker.record(.trouble(retryAfter: nil), now: Self.at(UInt64(t))) }
        #expect(breaker.record(.answered, now: Self.at(4)) == .none)
        #expect(breaker.isDown(now: Self.at(5)))
    }

    @Test("the window: full at the maximum; an overload narrows it to 0.7 once per round; answers widen it by 1/limit")
    func window() {
        var window = ConcurrencyWindow(maximum: 10, adaptive: true)
        var rounds: [UInt64] = []
        for _ in 0..<10 { rounds.append(window.started()) }
        #expect(!window.hasRoom)
        #expect(window.size == 10)
        // A burst of 429s from tries of one round counts once.
        window.ended(.overloaded, startedRound: rounds[0])
        #expect(window.limit == 7)
        window.ended(.overloaded, startedRound: rounds[1])
        #expect(window.limit == 7)
        #expect(window.decreases == 1)
        // 8 in flight, room for 7: none.
        #expect(window.inFlight == 8)
        #expect(!window.hasRoom)
        // A try of the new round may narrow it again.
        for _ in 0..<2 { window.ended(.none, startedRound: 0) }
        let late = window.started()
        window.ended(.overloaded, startedRound: late)
        #expect(abs(window.limit - 4.9) < 1e-9)
        #expect(window.size == 4)
        // Additive increase: about one per window of answers, never past the maximum.
        let before = window.limit
        window.ended(.answered, startedRound: 0)
        #expect(abs(window.limit - (before + 1 / before)) < 1e-9)
        for _ in 0..<1000 {
            _ = window.started()
            window.ended(.answered, startedRound: window.round)
        }
        #expect(window.limit == 10)
    }

    @Test("the window never goes below 1, nor in flight below 0; not adaptive, it stays at the maximum")
    func windowBounds() {
        var window = ConcurrencyWindow(maximum: 3, adaptive: true)
        for _ in 0..<20 {
            let round = window.started()
            window.ended(.overloaded, startedRound: round)
        }
        #expect(window.limit == 1)
        #expect(window.hasRoom)
        window.ended(.none, startedRound: 0)
        #expect(window.inFlight == 0)
        var fixed = ConcurrencyWindow(maximum: 5, adaptive: false)
        let round = fixed.started()
        fixed.ended(.overloaded, startedRound: round)
        #expect(fixed.size == 5)
        #expect(ConcurrencyWindow(maximum: 0, adaptive: true).size == 1)
    }

    @Test("account faults are 401, 402 and 403; overload signals 429 and 503")
    func classification() {
        #expect(UpstreamFailure.httpStatus(401, body: []).accountFault == .authentication)
        #expect(UpstreamFailure.httpStatus(402, body: []).accountFault == .paymentRequired)
        #expect(UpstreamFailure.httpStatus(403, body: []).accountFault == .permissionDenied)
        #expect(UpstreamFailure.httpStatus(400, body: []).accountFault == nil)
        #expect(UpstreamFailure.connectionFailed("x").accountFault == nil)
        #expect(UpstreamFailure.httpStatus(429, body: []).saysOverloaded)
        #expect(UpstreamFailure.httpStatus(503, body: []).saysOverloaded)
        #expect(!UpstreamFailure.httpStatus(500, body: []).saysOverloaded)
        // What a breaker counts: the upstream unwell, not the request wrong, not a 429.
        #expect(UpstreamFailure.httpStatus(503, body: []).isUpstreamTrouble)
        #expect(UpstreamFailure.idleTimeout.isUpstreamTrouble && UpstreamFailure.emptyStream.isUpstreamTrouble)
        #expect(UpstreamFailure.connectionFailed("x").isUpstreamTrouble)
        #expect(!UpstreamFailure.httpStatus(429, body: []).isUpstreamTrouble)
        #expect(!UpstreamFailure.httpStatus(400, body: []).isUpstreamTrouble)
        #expect(!UpstreamFailure.httpStatus(402, body: []).isUpstreamTrouble)
    }

    @Test("x-ratelimit-remaining-requests or -tokens at 0 is an overload signal; other values, however odd, are not")
    func rateLimitHeaders() {
        func exhausted(_ lines: [String]) -> Bool {
            var response = UpstreamResponse(forwardChunks: false, maxResponseBytes: 1000)
            for line in lines { Array(line.utf8).withUnsafeBytes { response.headerLine($0) } }
            return response.rateLimitExhausted
        }
        #expect(exhausted(["HTTP/1.1 200 OK\r\n", "x-ratelimit-remaining-requests: 0\r\n"]))
        #expect(exhausted(["X-RateLimit-Remaining-Tokens:  00 \r\n"]))
        #expect(!exhausted(["x-ratelimit-remaining-requests: 5\r\n"]))
        #expect(!exhausted(["x-ratelimit-remaining-requests: -0\r\n"]))
        #expect(!exhausted(["x-ratelimit-remaining-requests: 0x0\r\n"]))
        #expect(!exhausted(["x-ratelimit-remaining-requests:\r\n"]))
        #expect(!exhausted(["x-ratelimit-remaining-other: 0\r\n"]))
        #expect(!exhausted(["x-ratelimit-limit-requests: 0\r\n"]))
        #expect(!exhausted(["x-ratelimit-remaining-\r\n"]))
        // A new status line (after a 100 Continue) starts over.
        #expect(!exhausted(["x-ratelimit-remaining-requests: 0\r\n", "HTTP/1.1 200 OK\r\n"]))
    }
}

@Suite("Upstream control: rpm and tpm budgets")
struct RateBudgetTests {
    static let second: UInt64 = 1_000_000_000
    static func at(_ milliseconds: UInt64) -> Deadline { Deadline(nanoseconds: milliseconds * 1_000_000) }

    @Test("rpm: a second's worth at once, then one try per 60/rpm seconds")
    func requests() {
        var budget = RateBudget.requests(perMinute: 120, now: Self.at(0))
        #expect(budget.capacity == 2)
        #expect(budget.admits(now: Self.at(0)))
        budget.spend(1, now: Self.at(0))
        budget.spend(1, now: Self.at(0))
        #expect(!budget.admits(now: Self.at(0)))
        // Two a second come back: one after 500 ms.
        #expect(!budget.admits(now: Self.at(499)))
        #expect(budget.admits(now: Self.at(500)))
        let again = budget.admitsAgain(after: Self.at(100))
        #expect(again > Self.at(499) && again <= Self.at(501))
        // Never more than the capacity saved up, however long it rests.
        #expect(budget.balance(at: Self.at(3_600_000)) == 2)
    }

    @Test("rpm below 60: at least one try at once, then one per 60/rpm seconds")
    func slowRequests() {
        var budget = RateBudget.requests(perMinute: 6, now: Self.at(0))
        #expect(budget.capacity == 1)
        budget.spend(1, now: Self.at(0))
        #expect(!budget.admits(now: Self.at(9_999)))
        #expect(budget.admits(now: Self.at(10_000)))
    }

    @Test("tpm: usage spent after the try may leave a debt; tries wait until it is paid back")
    func tokens() {
        var budget = RateBudget.tokens(perMinute: 6000, now: Self.at(0))
        #expect(budget.capacity == 100)
        budget.spend(400, now: Self.at(0))
        #expect(budget.balance == -300)
        #expect(!budget.admits(now: Self.at(2_999)))
        #expect(budget.admits(now: Self.at(3_001)))
        // Hostile usage: huge, negative or NaN spends are bounded or ignored.
        budget.spend(.infinity, now: Self.at(4_000))
        #expect(budget.balance == -6000 * 24 * 60)
        let far = budget.admitsAgain(after: Self.at(4_000))
        #expect(far > Self.at(4_000) && !far.isNever)
        budget.spend(-5, now: Self.at(4_000))
        budget.spend(.nan, now: Self.at(4_000))
        #expect(budget.balance == -6000 * 24 * 60)
    }
}

@Suite("Upstream control: breaker, window and budgets together")
struct UpstreamControlCombinedTests {
    static let second: UInt64 = 1_000_000_000
    static let policy = CircuitBreaker.Policy(
        failureThreshold: 1, cooldown: 10 * second, maxCooldown: 10 * second, holdProbeInterval: 30 * second)
    static let start = Deadline(nanoseconds: 1000 * second)

    @Test("admits while every part does; busy when only the window or a budget is full; down when the breaker is open")
    func admission() {
        var control = UpstreamControl(
            breaker: Self.policy, window: ConcurrencyWindow(maximum: 2, adaptive: true), requestsPerMinute: 60,
            now: Self.start)
        #expect(control.admits(now: Self.start) && control.isUp)
        let first = control.tryStarted(now: Self.start)
        #expect(control.tries == 1)
        // The rpm budget (one a second) is spent: busy, and it says when that changes.
        #expect(!control.admits(now: Self.start))
        #expect(control.isBusy(now: Self.start))
        #expect(control.nextChange(after: Self.start) > Self.start)
        #expect(control.admits(now: Self.start + Self.second))
        // A retryable failure opens the breaker: down, not busy; it comes back at the probe.
        #expect(
            control.tryEnded(.trouble(retryAfter: nil), .none, round: first, tokens: nil, now: Self.start + Self.second)
                == .opened(.failures, until: Self.start + 11 * Self.second))
        #expect(!control.isUp && !control.isBusy(now: Self.start + Self.second))
        #expect(control.nextChange(after: Self.start + Self.second) == Self.start + 11 * Self.second)
        // The probe: the next try; while it runs nothing else goes.
        let probe = control.tryStarted(now: Self.start + 11 * Self.second)
        #expect(control.isBusy(now: Self.start + 11 * Self.second))
        #expect(control.tryEnded(.answered, .answered, round: probe, tokens: 5, now: Self.start + 12 * Self.second) == .closed)
        #expect(control.isUp && control.window.inFlight == 0)
        // A try that says nothing (nil) frees its place and leaves the breaker alone.
        let quiet = control.tryStarted(now: Self.start + 20 * Self.second)
        #expect(control.tryEnded(nil, .none, round: quiet, tokens: nil, now: Self.start + 20 * Self.second) == .none)
        #expect(control.window.inFlight == 0)
    }
}
