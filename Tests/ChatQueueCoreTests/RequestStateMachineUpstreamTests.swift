import ChatQueueCore
import Testing

/// The request machine and its route's upstreams: choosing an upstream that
/// can take a try, waiting when none can, and account faults (401/402/403)
/// that fall over, are answered (reply) or never answered (hold). Event ->
/// action tables, no sockets.
@Suite("Request state machine: upstream availability and account faults")
struct RequestStateMachineUpstreamTests {
    typealias Machine = RequestStateMachine
    static let second: UInt64 = 1_000_000_000
    static let now = Deadline(nanoseconds: 100 * second)
    static let policy = Machine.Policy(
        retry: RetryBackoff(maxAttempts: 2, baseDelay: 0.5, maxDelay: 30, maxRetryAfter: 60),
        firstByteTimeout: 10 * second, idleTimeout: 5 * second, maxReplyBytes: 1000)
    static let payment = UpstreamFailure.httpStatus(402, body: Array(#"{"error":{"message":"Insufficient Balance"}}"#.utf8))

    static func route(_ holds: [Bool]) -> [Machine.RouteUpstream] {
        holds.enumerated().map { index, holds in
            Machine.RouteUpstream(name: "u\(index)", index: index, policy: policy, holdsOnAccountError: holds)
        }
    }

    static func machine() -> Machine {
        Machine(
            requestID: "r1", policy: policy, deadline: Deadline(nanoseconds: 160 * second), deadlineFailure: .requestTimeout)
    }

    static func ready(_ positions: Int...) -> RouteAvailability {
        RouteAvailability(ready: positions.reduce(0) { $0 | 1 << UInt64($1) })
    }

    static func errorCode(_ action: Machine.Action) -> String? {
        guard case .publishFinal(let reply, _) = action else { return nil }
        return reply.error?.code ?? reply.error?.type
    }

    @Test("the first try goes to the first upstream of the route that can take it")
    func firstReady() {
        var machine = Self.machine()
        #expect(machine.call(now: Self.now, route: Self.route([false, false, false]), availability: Self.ready(2)) == .startTransfer(try: 1))
        #expect(machine.upstream?.name == "u2")
    }

    @Test("none ready but one busy: the request waits, and starts once told an upstream can take it")
    func waitsForBusy() {
        var machine = Self.machine()
        let busy = RouteAvailability(ready: 0, busy: 0b10)
        #expect(machine.call(now: Self.now, route: Self.route([false, false]), availability: busy) == .awaitUpstream)
        #expect(machine.state == .waitingForUpstream(failure: nil))
        #expect(machine.isWaitingForUpstream)
        #expect(machine.tries == 0)
        #expect(machine.nextTimer == machine.deadline)
        #expect(machine.upstreamsChanged(now: Self.now, availability: busy, random: 0.5) == .awaitUpstream)
        #expect(machine.upstreamsChanged(now: Self.now, availability: Self.ready(1), random: 0.5) == .startTransfer(try: 1))
        #expect(machine.upstream?.name == "u1")
        #expect(machine.upstreamsChanged(now: Self.now, availability: Self.ready(1), random: 0.5) == .none, "only while waiting")
    }

    @Test("waiting: the deadline answers with its error; a cancel answers cancelled; draining hands an untried one back")
    func waitingEnds() {
        func waiting() -> Machine {
            var machine = Self.machine()
            _ = machine.call(now: Self.now, route: Self.route([false]), availability: .allDown)
            return machine
        }
        var machine = waiting()
        #expect(machine.timerFired(now: Deadline(nanoseconds: 159 * Self.second), random: 0.5) == .none)
        #expect(Self.errorCode(machine.timerFired(now: machine.deadline, random: 0.5)) == "request_timeout")
        machine = waiting()
        #expect(Self.errorCode(machine.cancel()) == "cancelled")
        machine = waiting()
        #expect(machine.drainStarted() == .settle(.requeue, reason: .draining, stopTransfer: false))
        machine = waiting()
        #expect(machine.handBackWaiting() == .settle(.requeue, reason: .held, stopTransfer: false))
        #expect(machine.handBackWaiting() == .none)
        machine = waiting()
        #expect(machine.requesterGone() == .settle(.ack, reason: .abandoned, stopTransfer: false))
        machine = waiting()
        #expect(machine.connectionLost() == .forget(stopTransfer: false))
    }

    @Test("reply mode: a 402 falls over to the next upstream at once, without using up an attempt")
    func accountFaultFallsOver() {
        var machine = Self.machine()
        let route = Self.route([false, false])
        #expect(machine.call(now: Self.now, route: route, availability: Self.ready(0, 1)) == .startTransfer(try: 1))
        #expect(
            machine.tryEnded(.failure(Self.payment, retryAfter: nil), now: Self.now, random: 0.5)
                == .retryLater(after: Self.payment, wait: 0, stopTransfer: false))
        #expect(machine.timerFired(now: Self.now, random: 0.5, availability: Self.ready(0, 1)) == .startTransfer(try: 2))
        #expect(machine.upstream?.name == "u1")
        // u1 fails retryably twice: max_attempts 2 counts those two, not the 402.
        let busy = UpstreamFailure.httpStatus(503, body: [])
        guard case .retryLater = machine.tryEnded(.failure(busy, retryAfter: nil), now: Self.now, random: 0.5) else {
            Issue.record("the first 503 is retried")
            return
        }
        // The retry skips u0 (it refused the account) and goes to u1 again.
        #expect(machine.timerFired(now: Deadline(nanoseconds: 130 * Self.second), random: 0.5, availability: Self.ready(0, 1)) == .startTransfer(try: 3))
        #expect(machine.upstream?.name == "u1")
        #expect(Self.errorCode(machine.tryEnded(.failure(busy, retryAfter: nil), now: Self.now, random: 0.5)) == "upstream_error")
    }

    @Test("reply mode: answered with the account error when no other upstream is left or up")
    func accountFaultAnswered() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now, route: Self.route([false]), availability: Self.ready(0))
        let alone = machine.tryEnded(.failure(Self.payment, retryAfter: nil), now: Self.now, random: 0.5)
        #expect(Self.errorCode(alone) == "payment_required")
        guard case .publishFinal(let reply, _) = alone else { return }
        #expect((try? JSONValue(parsing: reply.body))?["upstream"] == "u0")
        // The other upstream's breaker is open: nothing works, the 402 is the answer.
        machine = Self.machine()
        _ = machine.call(now: Self.now, route: Self.route([false, false]), availability: Self.ready(0, 1))
        _ = machine.tryEnded(.failure(Self.payment, retryAfter: nil), now: Self.now, random: 0.5)
        #expect(Self.errorCode(machine.timerFired(now: Self.now, random: 0.5, availability: .allDown)) == "payment_required")
        // ... but only busy: it waits for it.
        machine = Self.machine()
        _ = machine.call(now: Self.now, route: Self.route([false, false]), availability: Self.ready(0, 1))
        _ = machine.tryEnded(.failure(Self.payment, retryAfter: nil), now: Self.now, random: 0.5)
        #expect(machine.timerFired(now: Self.now, random: 0.5, availability: RouteAvailability(ready: 0, busy: 0b10)) == .awaitUpstream)
    }

    @Test("hold mode: a 402 is never answered; alone it waits for the probe, handed back or answered by the deadline only")
    func accountFaultHeld() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now, route: Self.route([true]), availability: Self.ready(0))
        #expect(
            machine.tryEnded(.failure(Self.payment, retryAfter: nil), now: Self.now, random: 0.5)
                == .retryLater(after: Self.payment, wait: 0, stopTransfer: false))
        // Its breaker is open now: nothing can take it.
        #expect(machine.timerFired(now: Self.now, random: 0.5, availability: .allDown) == .awaitUpstream)
        #expect(machine.state == .waitingForUpstream(failure: Self.payment))
        // The probe goes when the breaker lets it; a 402 again waits again.
        #expect(machine.upstreamsChanged(now: Self.now, availability: Self.ready(0), random: 0.5) == .startTransfer(try: 2))
        _ = machine.tryEnded(.failure(Self.payment, retryAfter: nil), now: Self.now, random: 0.5)
        #expect(machine.timerFired(now: Self.now, random: 0.5, availability: .allDown) == .awaitUpstream)
        // Draining hands it back rather than answering 402.
        var draining = machine
        #expect(draining.drainStarted() == .settle(.requeue, reason: .held, stopTransfer: false))
        // The deadline answers with the deadline's error, not the 402.
        #expect(Self.errorCode(machine.timerFired(now: machine.deadline, random: 0.5)) == "request_timeout")
    }

    @Test("hold mode: a 402 while draining hands the delivery back unanswered")
    func heldWhileDraining() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now, route: Self.route([true]), availability: Self.ready(0))
        _ = machine.drainStarted()
        #expect(
            machine.tryEnded(.failure(Self.payment, retryAfter: nil), now: Self.now, random: 0.5)
                == .settle(.requeue, reason: .held, stopTransfer: false))
    }

    @Test("hold mode: another upstream of the route takes the request")
    func heldFallsOver() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now, route: Self.route([true, false]), availability: Self.ready(0, 1))
        _ = machine.tryEnded(.failure(.httpStatus(401, body: []), retryAfter: nil), now: Self.now, random: 0.5)
        #expect(machine.timerFired(now: Self.now, random: 0.5, availability: Self.ready(1)) == .startTransfer(try: 2))
        #expect(machine.upstream?.name == "u1")
        #expect(machine.tryEnded(.completion(Array("{}".utf8)), now: Self.now, random: 0.5) != .none)
    }

    @Test("a fallback that can only go back to the upstream that just failed waits the backoff and its Retry-After first")
    func fallbackBackToTried() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now, route: Self.route([false, false]), availability: Self.ready(0, 1))
        let limited = UpstreamFailure.httpStatus(429, body: [])
        #expect(
            machine.tryEnded(.failure(limited, retryAfter: 20), now: Self.now, random: 0.5)
                == .retryLater(after: limited, wait: 0, stopTransfer: false))
        // u1 is busy, u0 ready: not u0 again at once.
        let onlyFirst = RouteAvailability(ready: 0b01, busy: 0b10)
        // Retry-After 20 s plus its spread (random 0.5 of the first backoff ceiling, 0.5 s).
        #expect(
            machine.timerFired(now: Self.now, random: 0.5, availability: onlyFirst)
                == .retryLater(after: limited, wait: 20.25, stopTransfer: false))
        #expect(machine.timerFired(now: Self.now + 20 * Self.second, random: 0.5, availability: onlyFirst) == .none)
        #expect(machine.timerFired(now: Self.now + 21 * Self.second, random: 0.5, availability: onlyFirst) == .startTransfer(try: 2))
        #expect(machine.upstream?.name == "u0")
    }

    @Test("reply mode: a 402 while draining goes back to the queue when another upstream of the route may answer it")
    func accountFaultWhileDraining() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now, route: Self.route([false, false]), availability: Self.ready(0, 1))
        _ = machine.drainStarted()
        #expect(
            machine.tryEnded(.failure(Self.payment, retryAfter: nil), now: Self.now, random: 0.5)
                == .settle(.requeue, reason: .draining, stopTransfer: false))
        // Alone on its route it is answered, as before.
        machine = Self.machine()
        _ = machine.call(now: Self.now, route: Self.route([false]), availability: Self.ready(0))
        _ = machine.drainStarted()
        #expect(Self.errorCode(machine.tryEnded(.failure(Self.payment, retryAfter: nil), now: Self.now, random: 0.5)) == "payment_required")
    }

    @Test("hold: a fallback back to the holding upstream with no time left hands the request back, never answers the 402")
    func heldNoTimeLeft() {
        var machine = Machine(
            requestID: "r1", policy: Self.policy, deadline: Self.now + Self.second / 10, deadlineFailure: .requestTimeout)
        _ = machine.call(now: Self.now, route: Self.route([true, false]), availability: Self.ready(0, 1))
        _ = machine.tryEnded(.failure(Self.payment, retryAfter: nil), now: Self.now, random: 0.5)
        #expect(
            machine.timerFired(now: Self.now, random: 0.5, availability: Self.ready(0))
                == .settle(.requeue, reason: .held, stopTransfer: false))
    }

    @Test("400 is the request's fault: answered at once, no fallover")
    func badRequestNotAccount() {
        var machine = Self.machine()
        _ = machine.call(now: Self.now, route: Self.route([true, true]), availability: Self.ready(0, 1))
        #expect(Self.errorCode(machine.tryEnded(.failure(.httpStatus(400, body: []), retryAfter: nil), now: Self.now, random: 0.5)) == "invalid_request_error")
    }
}
