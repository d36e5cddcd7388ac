import ChatQueueCore
import Testing

/// The request state machine as event -> action tables, no sockets: every
/// event in every state, the paths the contract describes, and long random
/// event sequences checked against the invariants after every step.
@Suite("Request state machine")
struct RequestStateMachineTests {
    typealias Machine = RequestStateMachine
    static let second: UInt64 = 1_000_000_000

    static let policy = Machine.Policy(
        retry: RetryBackoff(maxAttempts: 3, baseDelay: 0.5, maxDelay: 30, maxRetryAfter: 60),
        firstByteTimeout: 10 * second, idleTimeout: 5 * second, maxReplyBytes: 1000, maxFinalPublishes: 3,
        finalRepublishDelay: second)

    /// A machine received at t = 100 s with a deadline 60 s later.
    static func machine(deadline: Deadline = Deadline(nanoseconds: 160 * second)) -> Machine {
        Machine(requestID: "r1", policy: policy, deadline: deadline, deadlineFailure: .requestTimeout)
    }

    /// Every event, with the arguments the tables use.
    enum Event: CaseIterable {
        case call, answer, refuse, handBack, chunk, progress, pause, resume, completion, failure, timer, drain
        case graceOver, connectionLost, confirmed, refused, unconfirmed, cancel, requesterGone
    }

    static let now = Deadline(nanoseconds: 100 * second)

    /// Applies `event` and describes what the machine asked for, compactly.
    @discardableResult
    static func apply(_ event: Event, to machine: inout Machine, at now: Deadline = now) -> String {
        switch event {
        case .call: return describe(machine.call(now: now))
        case .answer: return describe(machine.answer(.invalidJSON("x")))
        case .refuse: return describe(machine.refuse())
        case .handBack: return describe(machine.handBack())
        case .chunk:
            switch machine.chunk() {
            case .publish(let seq): return "chunk \(seq)"
            case .drop: return "drop"
            }
        case .progress:
            machine.progress(now: now)
            return "-"
        case .pause:
            machine.pause()
            return "-"
        case .resume:
            machine.resume(now: now)
            return "-"
        case .completion: return describe(machine.tryEnded(.completion(Array("{}".utf8)), now: now, random: 0.5))
        case .failure:
            return describe(machine.tryEnded(.failure(.httpStatus(503, body: []), retryAfter: nil), now: now, random: 0.5))
        case .timer: return describe(machine.timerFired(now: now, random: 0.5))
        case .drain: return describe(machine.drainStarted())
        case .graceOver: return describe(machine.shutdownGraceOver())
        case .connectionLost: return describe(machine.connectionLost())
        case .confirmed: return describe(machine.finalConfirmed())
        case .refused: return describe(machine.finalRefused(now: now))
        case .unconfirmed: return describe(machine.finalUnconfirmed())
        case .cancel: return describe(machine.cancel())
        case .requesterGone: return describe(machine.requesterGone())
        }
    }

    static func describe(_ action: Machine.Action) -> String {
        switch action {
        case .none: return "none"
        case .startTransfer(let number): return "start \(number)"
        case .retryLater(_, let wait, let stop): return "retry \(wait)\(stop ? " stop" : "")"
        case .publishFinal(let reply, let stop):
            let what = reply.error.map { $0.code ?? "status \($0.status)" } ?? "completion"
            return "final \(what) #\(reply.publishes)\(stop ? " stop" : "")"
        case .settle(let settlement, let reason, let stop): return "settle \(settlement) \(reason)\(stop ? " stop" : "")"
        case .forget(let stop): return "forget\(stop ? " stop" : "")"
        case .awaitUpstream: return "await upstream"
        }
    }

    /// Machines in each state, reached through events.
    static func inState(_ name: String) -> Machine {
        var machine = machine()
        switch name {
        case "received": break
        case "calling": apply(.call, to: &machine)
        case "waiting":
            apply(.call, to: &machine)
            apply(.failure, to: &machine)
        case "finalPublished":
            apply(.call, to: &machine)
            apply(.completion, to: &machine)
        case "finalRefused":
            apply(.call, to: &machine)
            apply(.completion, to: &machine)
            apply(.refused, to: &machine)
        case "settled":
            apply(.call, to: &machine)
            apply(.completion, to: &machine)
            apply(.confirmed, to: &machine)
        default: Issue.record("no state \(name)")
        }
        return machine
    }

    /// What each event does in each state at t = 100 s (timers are not due
    /// yet, except where the state's own timer is 0 s away). "-" marks
    /// events that return nothing.
    static let table: [String: [Event: String]] = [
        "received": [
            .call: "start 1", .answer: "final invalid_json #1", .refuse: "settle deadLetter unanswerable",
            .handBack: "settle requeue draining", .chunk: "drop", .completion: "none", .failure: "none",
            .timer: "none", .graceOver: "settle requeue shutdown", .connectionLost: "forget", .confirmed: "none",
            .refused: "none", .unconfirmed: "none", .drain: "none", .cancel: "final cancelled #1",
            .requesterGone: "settle ack abandoned",
        ],
        "calling": [
            .call: "none", .answer: "none", .refuse: "none", .handBack: "none", .chunk: "chunk 0",
            .completion: "final completion #1", .failure: "retry 0.25", .timer: "none",
            .graceOver: "settle requeue shutdown stop", .connectionLost: "forget stop", .confirmed: "none",
            .refused: "none", .unconfirmed: "none", .drain: "none", .cancel: "final cancelled #1 stop",
            .requesterGone: "settle ack abandoned stop",
        ],
        "waiting": [
            .call: "none", .answer: "none", .refuse: "none", .handBack: "none", .chunk: "drop", .completion: "none",
            .failure: "none", .timer: "none", .graceOver: "settle requeue shutdown", .connectionLost: "forget",
            .confirmed: "none", .refused: "none", .unconfirmed: "none", .drain: "final status 503 #1", .cancel: "final cancelled #1",
            .requesterGone: "settle ack abandoned",
        ],
        "finalPublished": [
            .call: "none", .answer: "none", .refuse: "none", .handBack: "none", .chunk: "drop", .completion: "none",
            .failure: "none", .timer: "none", .graceOver: "settle requeue shutdown", .connectionLost: "forget",
            .confirmed: "settle ack answered", .refused: "none", .unconfirmed: "final completion #1", .drain: "none", .cancel: "none",
            .requesterGone: "none",
        ],
        "finalRefused": [
            .call: "none", .answer: "none", .refuse: "none", .handBack: "none", .chunk: "drop", .completion: "none",
            .failure: "none", .timer: "none", .graceOver: "settle requeue shutdown", .connectionLost: "forget",
            .confirmed: "none", .refused: "none", .unconfirmed: "none", .drain: "none", .cancel: "none", .requesterGone: "none",
        ],
        "settled": [
            .call: "none", .answer: "none", .refuse: "none", .handBack: "none", .chunk: "drop", .completion: "none",
            .failure: "none", .timer: "none", .graceOver: "none", .connectionLost: "none", .confirmed: "none",
            .refused: "none", .unconfirmed: "none", .drain: "none", .cancel: "none", .requesterGone: "none",
        ],
    ]

    @Test("every event in every state does what the table says", arguments: table.keys.sorted())
    func eventTable(state: String) {
        for event in Event.allCases {
            var machine = Self.inState(state)
            let got = Self.apply(event, to: &machine)
            let expected = Self.table[state]?[event] ?? "-"
            #expect(got == expected, "\(state) + \(event)")
        }
    }

    // MARK: Paths

    @Test("a final whose connection was replaced before its confirm is published again at once, uncounted; a refusal after that still counts")
    func unconfirmedFinalIsRepublishedUncounted() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        _ = machine.tryEnded(.completion(Array("{}".utf8)), now: Self.now, random: 0.5)
        #expect(Self.apply(.unconfirmed, to: &machine) == "final completion #1")
        #expect(Self.apply(.unconfirmed, to: &machine) == "final completion #1")
        #expect(Self.apply(.refused, to: &machine) == "none")
        #expect(machine.nextTimer == Self.now + Self.second)
        #expect(Self.apply(.timer, to: &machine, at: Self.now + Self.second) == "final completion #2")
        #expect(Self.apply(.confirmed, to: &machine) == "settle ack answered")
    }

    @Test("a 503 is retried after the jittered backoff; the next try starts when the timer fires")
    func retryAfterFailure() {
        var machine = Self.machine()
        #expect(Self.apply(.call, to: &machine) == "start 1")
        #expect(Self.apply(.failure, to: &machine) == "retry 0.25")
        #expect(machine.nextTimer == Self.now + Self.second / 4)
        #expect(Self.apply(.timer, to: &machine, at: Self.now + Self.second / 8) == "none")
        #expect(Self.apply(.timer, to: &machine, at: Self.now + Self.second / 4) == "start 2")
        #expect(machine.tries == 2)
    }

    @Test("an upstream Retry-After is a minimum; one over retry.max_retry_after is not waited for")
    func retryAfterHint() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        let hinted = machine.tryEnded(.failure(.httpStatus(429, body: []), retryAfter: 7), now: Self.now, random: 0)
        #expect(Self.describe(hinted) == "retry 7.0")
        var tooLong = Self.machine()
        _ = tooLong.call(now: Self.now)
        let answered = tooLong.tryEnded(.failure(.httpStatus(429, body: []), retryAfter: 61), now: Self.now, random: 0)
        guard case .publishFinal(let reply, _) = answered else {
            Issue.record("expected a final, got \(answered)")
            return
        }
        #expect(reply.error?.status == 429)
        #expect(reply.error?.retryable == true)
    }

    @Test("after the last try the error is final, with attempts = tries made")
    func lastTry() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        for attempt in 2...3 {
            #expect(Self.apply(.failure, to: &machine).hasPrefix("retry"))
            #expect(Self.apply(.timer, to: &machine, at: Self.now + 100 * Self.second / 2) == "start \(attempt)")
        }
        let final = machine.tryEnded(.failure(.httpStatus(503, body: []), retryAfter: nil), now: Self.now, random: 0)
        guard case .publishFinal(let reply, false) = final else {
            Issue.record("expected a final, got \(final)")
            return
        }
        #expect(String(decoding: reply.body, as: UTF8.self).contains("\"attempts\":3"))
    }

    @Test("a failure after chunks is stream_interrupted, never retried; its final comes after the chunks")
    func failureAfterChunks() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        #expect(Self.apply(.chunk, to: &machine) == "chunk 0")
        #expect(Self.apply(.chunk, to: &machine) == "chunk 1")
        let ended = machine.tryEnded(.failure(.connectionFailed("reset"), retryAfter: nil), now: Self.now, random: 0)
        guard case .publishFinal(let reply, false) = ended else {
            Issue.record("expected a final, got \(ended)")
            return
        }
        #expect(reply.error?.code == "stream_interrupted")
        #expect(reply.seq == 2)
        #expect(Self.apply(.chunk, to: &machine) == "drop")
    }

    @Test("the first-byte timer stops the try and retries it; the idle timer stops it for good")
    func perTryTimers() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        #expect(Self.apply(.timer, to: &machine, at: Self.now + 10 * Self.second) == "retry 0.25 stop")
        _ = machine.timerFired(now: Self.now + 11 * Self.second, random: 0)
        Self.apply(.progress, to: &machine, at: Self.now + 12 * Self.second)
        #expect(machine.nextTimer == Self.now + 17 * Self.second)
        let idle = machine.timerFired(now: Self.now + 17 * Self.second, random: 0)
        #expect(Self.describe(idle) == "final idle_timeout #1 stop")
        // The stopped try counts toward the upstream's health; a passed deadline does not.
        guard case .publishFinal(let reply, _) = idle else { return }
        #expect(reply.stoppedTry == .idleTimeout)
        var late = Self.machine(deadline: Self.now + Self.second)
        _ = late.call(now: Self.now)
        guard case .publishFinal(let deadlineReply, true) = late.timerFired(now: Self.now + Self.second, random: 0) else {
            Issue.record("expected a final that stops the transfer")
            return
        }
        #expect(deadlineReply.stoppedTry == nil)
    }

    /// A route of `count` upstreams u0, u1, ...; u1 renames the model.
    static func route(_ count: Int) -> [Machine.RouteUpstream] {
        (0..<count).map { index in
            var policy = Self.policy
            policy.firstByteTimeout = UInt64(index + 2) * Self.second
            return Machine.RouteUpstream(name: "u\(index)", index: index, model: index == 1 ? "m1" : nil, policy: policy)
        }
    }

    @Test("a try follows its upstream's timeouts; the route is set once, at the first call")
    func routedPolicy() {
        let route = Self.route(2)
        var machine = Self.machine()
        #expect(machine.upstream == nil, "no upstream before the call")
        #expect(Self.describe(machine.call(now: Self.now, route: route)) == "start 1")
        #expect(machine.upstream == route[0] && machine.policy == route[0].policy)
        #expect(machine.nextTimer == Self.now + 2 * Self.second)
        #expect(Self.describe(machine.call(now: Self.now, route: Self.route(1))) == "none")
        #expect(machine.route == route)
    }

    @Test("fallback: a retryable failure before any chunk moves to the next upstream at once, then wraps with backoff")
    func fallback() throws {
        var machine = Self.machine()
        _ = machine.call(now: Self.now, route: Self.route(2))
        // u0 fails: u1 next, without waiting (its Retry-After is u0's).
        let moved = machine.tryEnded(.failure(.httpStatus(503, body: []), retryAfter: 30), now: Self.now, random: 0.5)
        #expect(Self.describe(moved) == "retry 0.0")
        #expect(machine.nextUpstream?.name == "u1" && machine.upstream?.name == "u0")
        #expect(Self.describe(machine.timerFired(now: Self.now, random: 0.5)) == "start 2")
        #expect(machine.upstream?.name == "u1")
        #expect(machine.nextTimer == Self.now + 3 * Self.second, "u1's first-byte timeout")
        // u1 fails too: back to u0, after the backoff of a second retry (up to 1 s; random 0.5).
        let wrapped = machine.tryEnded(.failure(.connectionFailed("refused"), retryAfter: nil), now: Self.now, random: 0.5)
        #expect(Self.describe(wrapped) == "retry 0.5")
        #expect(Self.describe(machine.timerFired(now: Self.now + Self.second, random: 0)) == "start 3")
        #expect(machine.upstream?.name == "u0")
        // u0 fails a third time: retry.max_attempts (3) is the bound in total, and the error names u0.
        let final = machine.tryEnded(.failure(.httpStatus(503, body: []), retryAfter: nil), now: Self.now, random: 0.5)
        guard case .publishFinal(let reply, _) = final else {
            Issue.record("expected the final error, got \(Self.describe(final))")
            return
        }
        let body = try #require(try JSONValue(parsing: reply.body).objectValue)
        #expect(body["upstream"] == .string("u0"))
        #expect(body["attempts"] == .number("3"))
    }

    @Test("no fallback after a chunk: stream_interrupted names the upstream that sent it")
    func noFallbackAfterChunk() throws {
        var machine = Self.machine()
        _ = machine.call(now: Self.now, route: Self.route(3))
        _ = machine.chunk()
        let ended = machine.tryEnded(.failure(.connectionFailed("reset"), retryAfter: nil), now: Self.now, random: 0.5)
        guard case .publishFinal(let reply, _) = ended else {
            Issue.record("expected the final error, got \(Self.describe(ended))")
            return
        }
        #expect(reply.error?.code == "stream_interrupted")
        #expect(try JSONValue(parsing: reply.body).objectValue?["upstream"] == .string("u0"))
        #expect(machine.tries == 1)
    }

    @Test("a non-retryable failure does not fall back; an error without a try names no upstream")
    func noFallbackForRequestErrors() throws {
        var machine = Self.machine()
        _ = machine.call(now: Self.now, route: Self.route(2))
        let ended = machine.tryEnded(.failure(.httpStatus(400, body: []), retryAfter: nil), now: Self.now, random: 0.5)
        #expect(Self.describe(ended) == "final status 400 #1")
        var unanswered = Self.machine()
        guard case .publishFinal(let reply, _) = unanswered.answer(.invalidJSON("x")) else { return }
        #expect(try JSONValue(parsing: reply.body).objectValue?["upstream"] == nil)
        // Draining while waiting to move on: answered with the last try's failure, naming that try's upstream.
        var draining = Self.machine()
        _ = draining.call(now: Self.now, route: Self.route(2))
        _ = draining.tryEnded(.failure(.httpStatus(503, body: []), retryAfter: nil), now: Self.now, random: 0.5)
        guard case .publishFinal(let drained, _) = draining.drainStarted() else {
            Issue.record("expected the final error")
            return
        }
        #expect(try JSONValue(parsing: drained.body).objectValue?["upstream"] == .string("u0"))
    }

    @Test("a paused try has no per-try timers, but its deadline still ends it")
    func deadlineWhilePaused() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        Self.apply(.pause, to: &machine)
        #expect(machine.nextTimer == Deadline(nanoseconds: 160 * Self.second))
        #expect(Self.apply(.timer, to: &machine, at: Self.now + 50 * Self.second) == "none")
        #expect(Self.apply(.timer, to: &machine, at: Self.now + 60 * Self.second) == "final request_timeout #1 stop")
    }

    @Test("a deadline that passes while waiting to retry ends the request without another try")
    func deadlineWhileWaiting() {
        var machine = Self.machine(deadline: Self.now + 2 * Self.second)
        _ = machine.call(now: Self.now)
        _ = machine.tryEnded(.failure(.httpStatus(503, body: []), retryAfter: 1.5), now: Self.now, random: 0)
        #expect(machine.nextTimer == Self.now + 3 * Self.second / 2)
        let late = Machine(requestID: "r", policy: Self.policy, deadline: Self.now + Self.second, deadlineFailure: .deadlineExceeded)
        var waiting = late
        _ = waiting.call(now: Self.now)
        _ = waiting.tryEnded(.failure(.httpStatus(503, body: []), retryAfter: nil), now: Self.now, random: 0.9)
        #expect(Self.apply(.timer, to: &waiting, at: Self.now + Self.second) == "final deadline_exceeded #1")
    }

    @Test("a cancel mid-stream stops the try at once, is not retried, and its final comes after the chunks")
    func cancelMidStream() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        #expect(Self.apply(.chunk, to: &machine) == "chunk 0")
        #expect(Self.apply(.chunk, to: &machine) == "chunk 1")
        let cancelled = machine.cancel()
        guard case .publishFinal(let reply, true) = cancelled else {
            Issue.record("expected a final that stops the transfer, got \(cancelled)")
            return
        }
        #expect(reply.seq == 2)
        #expect(reply.settlement == .ack)
        #expect(reply.stoppedTry == nil, "a cancel says nothing about the upstream's health")
        let body = String(decoding: reply.body, as: UTF8.self)
        #expect(body.contains(#""type":"cancelled","code":"cancelled""#))
        #expect(body.contains(#""status":499"#))
        #expect(body.contains(#""retryable":false"#))
        #expect(Self.apply(.chunk, to: &machine) == "drop")
        #expect(Self.apply(.timer, to: &machine, at: Self.now + 100 * Self.second) == "none")
        #expect(Self.apply(.cancel, to: &machine) == "none", "a second cancel changes nothing")
        #expect(Self.apply(.confirmed, to: &machine) == "settle ack answered")
        #expect(machine.tries == 1)
    }

    @Test("a cancel while waiting to retry answers cancelled; the retry timer starts no try")
    func cancelWhileWaiting() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        #expect(Self.apply(.failure, to: &machine) == "retry 0.25")
        #expect(Self.apply(.cancel, to: &machine) == "final cancelled #1")
        #expect(machine.nextTimer == .never)
        #expect(Self.apply(.timer, to: &machine, at: Self.now + Self.second) == "none")
        #expect(machine.tries == 1)
    }

    @Test("the requester gone mid-stream: the try stops and the delivery is acked unanswered; later returns change nothing")
    func requesterGoneMidStream() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        for seq in 0..<3 { #expect(Self.apply(.chunk, to: &machine) == "chunk \(seq)") }
        #expect(Self.apply(.requesterGone, to: &machine) == "settle ack abandoned stop")
        #expect(machine.state == .settled(.ack))
        #expect(Self.apply(.requesterGone, to: &machine) == "none")
        #expect(Self.apply(.cancel, to: &machine) == "none")
        #expect(Self.apply(.timer, to: &machine, at: Self.now + 100 * Self.second) == "none")
    }

    @Test("the requester gone once the final is out: the final's confirm settles it as answered")
    func requesterGoneAfterFinal() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        _ = machine.tryEnded(.completion(Array("{}".utf8)), now: Self.now, random: 0)
        #expect(Self.apply(.requesterGone, to: &machine) == "none")
        #expect(Self.apply(.confirmed, to: &machine) == "settle ack answered")
    }

    @Test("x-deadline-ms passing while waiting to retry ends in deadline_exceeded without another try")
    func requesterDeadlineWhileWaiting() {
        var machine = Machine(
            requestID: "r", policy: Self.policy, deadline: Self.now + 2 * Self.second, deadlineFailure: .deadlineExceeded)
        _ = machine.call(now: Self.now)
        #expect(Self.describe(machine.tryEnded(.failure(.httpStatus(503, body: []), retryAfter: 1.5), now: Self.now, random: 0)) == "retry 1.5")
        // The loop wakes late, past both the retry time and the deadline.
        #expect(Self.apply(.timer, to: &machine, at: Self.now + 3 * Self.second) == "final deadline_exceeded #1")
        #expect(machine.tries == 1)
        #expect(machine.nextTimer == .never)
    }

    @Test("a completion larger than the reply limit ends as response_too_large")
    func tooLarge() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        let ended = machine.tryEnded(.completion([UInt8](repeating: 0x20, count: 1001)), now: Self.now, random: 0)
        #expect(Self.describe(ended) == "final response_too_large #1")
    }

    @Test("a refused final is published again after 1 s and 2 s, then dead-lettered: no loop, no new try")
    func refusedFinal() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        _ = machine.tryEnded(.completion(Array("{}".utf8)), now: Self.now, random: 0)
        #expect(Self.apply(.refused, to: &machine) == "none")
        #expect(machine.nextTimer == Self.now + Self.second)
        #expect(Self.apply(.timer, to: &machine, at: Self.now + Self.second) == "final completion #2")
        #expect(Self.apply(.refused, to: &machine, at: Self.now + Self.second) == "none")
        #expect(machine.nextTimer == Self.now + 3 * Self.second)
        #expect(Self.apply(.timer, to: &machine, at: Self.now + 3 * Self.second) == "final completion #3")
        #expect(Self.apply(.refused, to: &machine) == "settle deadLetter finalRefused")
        #expect(machine.isSettled)
        #expect(machine.tries == 1)
    }

    @Test("an invalid request's refused error reply ends in the dead-letter queue too")
    func refusedInvalid() {
        var machine = Self.machine()
        #expect(Self.apply(.answer, to: &machine) == "final invalid_json #1")
        for _ in 1..<3 {
            _ = machine.finalRefused(now: Self.now)
            _ = machine.timerFired(now: Deadline(nanoseconds: .max - 1), random: 0)
        }
        #expect(Self.apply(.refused, to: &machine) == "settle deadLetter finalRefused")
    }

    @Test("while draining a failed try is answered at once, not retried")
    func drainingNoRetry() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        #expect(Self.apply(.drain, to: &machine) == "none")
        #expect(Self.apply(.failure, to: &machine) == "final status 503 #1")
    }

    @Test("a pause before any data event keeps the first-byte timer: keep-alives are not progress")
    func pauseBeforeFirstByte() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now)
        Self.apply(.pause, to: &machine, at: Self.now + Self.second)
        Self.apply(.resume, to: &machine, at: Self.now + 2 * Self.second)
        #expect(machine.nextTimer == Self.now + 12 * Self.second)
        #expect(Self.apply(.timer, to: &machine, at: Self.now + 12 * Self.second) == "retry 0.25 stop")
    }

    @Test("deadlines at the end of time never overflow: the machine's timers saturate at never")
    func saturatingTime() {
        var machine = Self.machine(deadline: .never)
        _ = machine.call(now: Deadline(nanoseconds: .max - 5))
        #expect(machine.nextTimer == .never)
        Self.apply(.progress, to: &machine, at: Deadline(nanoseconds: .max - 5))
        #expect(machine.nextTimer == .never)
        _ = machine.tryEnded(.completion(Array("{}".utf8)), now: Deadline(nanoseconds: .max - 5), random: 0)
        _ = machine.finalRefused(now: Deadline(nanoseconds: .max - 5))
        #expect(machine.nextTimer == .never, "the republish delay saturates too")
    }

    // MARK: Random sequences

    /// SplitMix64: a small seeded generator so a failing sequence can be replayed.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("random event sequences keep every invariant after every step", arguments: 0..<8)
    func randomSequences(batch: UInt64) throws {
        var generator = SeededGenerator(state: 0xC0FFEE &+ batch)
        for _ in 0..<500 {
            var run = InvariantChecker(using: &generator)
            let steps = Int.random(in: 1...80, using: &generator)
            for _ in 0..<steps {
                run.step(Event.allCases.randomElement(using: &generator)!, using: &generator)
                if !run.violations.isEmpty { break }
            }
            run.finish(using: &generator)
            try #require(run.violations.isEmpty, "\(run.violations) after \(run.trace)")
        }
    }
}

/// Drives one machine as the worker would (a transfer exists exactly while
/// the machine says calling; tries end only while one runs) and checks the
/// invariants the issue names after every step.
struct InvariantChecker {
    typealias Machine = RequestStateMachine
    var machine: Machine
    var now = RequestStateMachineTests.now
    var transferRunning = false
    var finalsOut = 0
    var refusals = 0
    var settled = false
    var confirmedFinal = false
    var trace: [String] = []
    var violations: [String] = []
    /// x-seq the next chunk or first final must carry, and the final's once published.
    var nextSeq: Int64 = 0
    var finalSeq: Int64?
    /// The route given to `call` (empty: none), and the position of the last try started.
    var route: [Machine.RouteUpstream] = []
    var lastTryPosition: Int?

    /// A machine with a random policy and deadline: one try only or several,
    /// no deadline or one that comes soon, small reply limits.
    init(using generator: inout some RandomNumberGenerator) {
        let second = RequestStateMachineTests.second
        let policy = Machine.Policy(
            retry: RetryBackoff(
                maxAttempts: Int.random(in: 1...4, using: &generator), baseDelay: 0.5, maxDelay: 30,
                maxRetryAfter: 60),
            firstByteTimeout: UInt64.random(in: 1...20, using: &generator) * second,
            idleTimeout: UInt64.random(in: 1...20, using: &generator) * second, maxReplyBytes: 16,
            maxFinalPublishes: Int.random(in: 1...3, using: &generator), finalRepublishDelay: second)
        let deadlines: [Deadline] = [
            .never, now + 5 * second, now + UInt64.random(in: 0...120, using: &generator) * second,
        ]
        machine = Machine(
            requestID: "r", policy: policy, deadline: deadlines.randomElement(using: &generator)!,
            deadlineFailure: Bool.random(using: &generator) ? .requestTimeout : .deadlineExceeded)
        // No route, or one of 1 to 3 upstreams with timeouts of their own.
        route = (0..<Int.random(in: 0...3, using: &generator)).map { index in
            var own = policy
            own.firstByteTimeout = UInt64.random(in: 1...20, using: &generator) * second
            return Machine.RouteUpstream(name: "u\(index)", index: index, policy: own)
        }
    }

    /// A try's end: completions of random sizes, failures of every kind, hints hostile or not.
    static func randomResult(using generator: inout some RandomNumberGenerator) -> Machine.TryResult {
        let failures: [UpstreamFailure] = [
            .httpStatus(503, body: []), .httpStatus(429, body: []), .httpStatus(400, body: []), .connectionFailed("x"),
            .connectTimeout, .firstByteTimeout, .idleTimeout, .badResponse("x"), .emptyStream,
            .streamInterrupted("x"), .responseTooLarge(limit: 16), .streamError(.null),
        ]
        let hints: [Double?] = [nil, 0, 1.5, 59, 61, -1, .nan, .infinity, 1e300]
        if Int.random(in: 0..<3, using: &generator) == 0 {
            return .completion([UInt8](repeating: 0x20, count: Int.random(in: 0...24, using: &generator)))
        }
        return .failure(failures.randomElement(using: &generator)!, retryAfter: hints.randomElement(using: &generator)!)
    }

    mutating func check(_ condition: Bool, _ message: String) {
        if !condition { violations.append(message) }
    }

    mutating func step(_ event: RequestStateMachineTests.Event, using generator: inout some RandomNumberGenerator) {
        now += UInt64.random(in: 0...3_000_000_000, using: &generator)
        let finalBefore = finalsOut > refusals
        switch event {
        case .completion, .failure:
            // libcurl only ends transfers that run.
            guard transferRunning else { return }
            transferRunning = false
        case .chunk:
            guard transferRunning else { return }
        case .confirmed, .refused, .unconfirmed:
            // The broker only answers finals that are out; only those can be left unconfirmed.
            guard finalsOut > refusals + (confirmedFinal ? 1 : 0) else { return }
        default:
            break
        }
        if event == .timer { now = max(now, min(machine.nextTimer, now + 60_000_000_000)) }
        let wasCalling = machine.isCalling
        trace.append("\(event)")
        switch event {
        case .chunk:
            let result = machine.chunk()
            check(result == .publish(seq: nextSeq), "chunk \(result), expected seq \(nextSeq)")
            nextSeq += 1
            check(!finalBefore, "chunk after a final")
            return
        case .completion, .failure:
            let result = event == .completion
                ? Self.randomResult(using: &generator)
                : .failure(.httpStatus(503, body: []), retryAfter: nil)
            apply(machine.tryEnded(result, now: now, random: Double.random(in: 0..<1, using: &generator)), wasCalling: false)
        case .call: apply(machine.call(now: now, route: route), wasCalling: wasCalling)
        case .answer: apply(machine.answer(.invalidJSON("x")), wasCalling: wasCalling)
        case .refuse: apply(machine.refuse(), wasCalling: wasCalling)
        case .handBack: apply(machine.handBack(), wasCalling: wasCalling)
        case .progress: machine.progress(now: now)
        case .pause: machine.pause()
        case .resume: machine.resume(now: now)
        case .timer: apply(machine.timerFired(now: now, random: 0.5), wasCalling: wasCalling)
        case .drain: apply(machine.drainStarted(), wasCalling: wasCalling)
        case .graceOver: apply(machine.shutdownGraceOver(), wasCalling: wasCalling)
        case .connectionLost: apply(machine.connectionLost(), wasCalling: wasCalling)
        case .confirmed:
            confirmedFinal = true
            apply(machine.finalConfirmed(), wasCalling: wasCalling)
        case .refused:
            refusals += 1
            apply(machine.finalRefused(now: now), wasCalling: wasCalling)
        case .unconfirmed:
            // The final out is withdrawn with its connection, and must be out again at once.
            refusals += 1
            apply(machine.finalUnconfirmed(), wasCalling: wasCalling)
            if !settled { check(finalsOut == refusals + 1, "a final left unconfirmed was not published again") }
        case .cancel:
            let hadFinal = finalSeq != nil
            apply(machine.cancel(), wasCalling: wasCalling)
            if !hadFinal && !settled {
                check(finalSeq != nil && !transferRunning, "a cancel left the request without its final, or calling")
            }
        case .requesterGone:
            apply(machine.requesterGone(), wasCalling: wasCalling)
        }
        check(transferRunning == machine.isCalling, "transfer \(transferRunning) but machine \(machine.state)")
        check(finalsOut <= refusals + 1, "more than one final out at a time")
        if settled { check(machine.isSettled, "settled but the machine is \(machine.state)") }
    }

    mutating func apply(_ action: Machine.Action, wasCalling: Bool) {
        let stops: Bool
        switch action {
        case .none:
            stops = false
        case .startTransfer:
            check(!transferRunning, "a second transfer started")
            check(finalsOut == 0, "upstream called after a final")
            check(!settled, "upstream called after settlement")
            check(nextSeq == 0, "a new try (another upstream, or the same) after a chunk was published")
            if !route.isEmpty {
                let position = machine.routePosition
                check(position < route.count && machine.upstream == route[position], "a try's upstream is not the route's")
                check(machine.policy == route[position].policy, "a try not following its upstream's policy")
                let expected = lastTryPosition.map { ($0 + 1) % route.count } ?? 0
                check(position == expected, "try at upstream \(position), expected the route's next, \(expected)")
                lastTryPosition = position
            }
            transferRunning = true
            stops = false
        case .retryLater(_, _, let stop):
            stops = stop
        case .publishFinal(let reply, let stop):
            check(!settled, "final after settlement")
            if let finalSeq {
                check(
                    reply.publishes <= machine.policy.maxFinalPublishes && reply.seq == finalSeq,
                    "a second final, or a republish with another seq or beyond the limit")
            } else {
                check(reply.publishes == 1 && reply.seq == nextSeq, "the final's seq \(reply.seq) is not after the chunks")
                finalSeq = reply.seq
            }
            check(reply.body.count <= machine.policy.maxReplyBytes || reply.kind == .error, "a final over the reply limit")
            if reply.kind == .error {
                let named = (try? JSONValue(parsing: reply.body))?.objectValue?["upstream"]
                let expected = lastTryPosition.map { JSONValue.string(route[$0].name) }
                check(named == expected, "the error names \(String(describing: named)), the last try was \(String(describing: expected))")
            }
            finalsOut += 1
            stops = stop
        case .settle(let settlement, let reason, let stop):
            check(!settled, "settled twice")
            if settlement == .ack {
                check(reason == .answered || reason == .abandoned, "ack without an answer or an abandonment")
            }
            if reason == .abandoned { check(finalSeq == nil, "abandoned with a final out: its confirm settles it") }
            if reason == .answered { check(confirmedFinal, "settled as answered before the final was confirmed") }
            settled = true
            stops = stop
        case .forget(let stop):
            check(!settled, "forgotten after settlement")
            settled = true
            stops = stop
        case .awaitUpstream:
            check(!settled && finalsOut == 0, "waiting for an upstream after a final or settlement")
            stops = false
        }
        if stops {
            check(wasCalling && transferRunning, "stop without a running transfer")
            transferRunning = false
        } else if case .startTransfer = action {
        } else if wasCalling && !machine.isCalling {
            check(!transferRunning, "left calling without stopping the transfer")
        }
    }

    /// Plays the sequence out: timers far ahead and the broker confirming
    /// whatever final is out, until the request is settled.
    mutating func finish(using generator: inout some RandomNumberGenerator) {
        for _ in 0..<200 where !settled && violations.isEmpty {
            if transferRunning {
                step(.completion, using: &generator)
            } else if finalsOut > refusals && !confirmedFinal {
                step(.confirmed, using: &generator)
            } else if machine.state == .received {
                step(.call, using: &generator)
            } else {
                now = max(now, machine.nextTimer.isNever ? now : machine.nextTimer)
                step(.timer, using: &generator)
            }
        }
        check(settled, "never settled: \(machine.state)")
    }
}
