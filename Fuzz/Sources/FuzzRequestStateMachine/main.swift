import ChatQueueCore
import FuzzSupport

runLibFuzzer(fuzzRequestStateMachine)

/// The request state machine driven by event sequences the input spells out
/// (policy, deadline and hints included), as the worker would drive it: a
/// try ends only while a transfer runs, the broker answers only a final that
/// is out. After every event: settled at most once and nothing after that,
/// acked only after a confirm, one final at a time with its x-seq after the
/// chunks, no try or chunk after a final, a transfer exactly while calling;
/// a cancel always ends in the cancelled final, a requester gone only before one;
/// with a route (0 to 4 upstreams, each holding on account errors or not)
/// and the input's availability of them: each try goes to an upstream that
/// was ready, none after a chunk, an error names the last try's upstream,
/// and a 401/402/403 of an upstream that holds is never answered.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzRequestStateMachine(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let second: UInt64 = 1_000_000_000
    let policy = RequestStateMachine.Policy(
        retry: RetryBackoff(
            maxAttempts: input.int(in: 0...5), baseDelay: Double(input.byte()) / 16, maxDelay: Double(input.byte()),
            maxRetryAfter: Double(input.byte())),
        firstByteTimeout: UInt64(input.byte()) * second, idleTimeout: UInt64(input.byte()) * second,
        maxReplyBytes: input.int(in: 0...64), maxFinalPublishes: input.int(in: 0...4),
        finalRepublishDelay: UInt64(input.byte()) * second)
    var now = Deadline(nanoseconds: UInt64(input.int(in: 0...Int(Int32.max))) * 1_000_000)
    let deadline = input.bool() ? Deadline.never : now + UInt64(input.byte()) * second
    var machine = RequestStateMachine(
        requestID: "fuzz", policy: policy, deadline: deadline, deadlineFailure: .deadlineExceeded)
    let route = (0..<input.int(in: 0...4)).map { index in
        var own = policy
        own.firstByteTimeout = UInt64(input.byte()) * second
        return RequestStateMachine.RouteUpstream(
            name: "u\(index)", index: index, policy: own, holdsOnAccountError: input.bool())
    }
    /// The availability given with the last event that may start a try.
    var availability = RouteAvailability.allReady(count: 64)
    func nextAvailability() -> RouteAvailability {
        availability = RouteAvailability(ready: UInt64(input.byte() & 0x0F), busy: UInt64(input.byte() & 0x0F))
        return availability
    }
    var lastTryPosition: Int?

    var transferRunning = false
    var finalOut = false
    var finalSeq: Int64?
    var nextSeq: Int64 = 0
    var settled = false

    func apply(_ action: RequestStateMachine.Action, wasCalling: Bool) {
        switch action {
        case .none:
            break
        case .startTransfer:
            fuzzCheck(!transferRunning && finalSeq == nil && !settled, "a try started after a final, or twice")
            fuzzCheck(nextSeq == 0, "a try after a chunk was published")
            if !route.isEmpty {
                let position = machine.routePosition
                fuzzCheck(availability.isReady(position) && machine.upstream == route[position], "try at \(position), not ready")
                fuzzCheck(machine.policy == route[position].policy, "a try not following its upstream's policy")
                lastTryPosition = position
            }
            transferRunning = true
        case .retryLater(_, let wait, let stop):
            fuzzCheck(wait.isFinite && wait >= 0, "retry wait \(wait)")
            if stop { transferRunning = false }
        case .publishFinal(let reply, let stop):
            fuzzCheck(!settled && !finalOut, "a final while one is out, or after settlement")
            if let finalSeq {
                // Published again: after a refusal (counted) or a replaced connection (not counted).
                fuzzCheck(
                    reply.seq == finalSeq && reply.publishes <= machine.policy.maxFinalPublishes, "a second final")
            } else {
                fuzzCheck(reply.seq == nextSeq && reply.publishes == 1, "final seq \(reply.seq), expected \(nextSeq)")
                finalSeq = reply.seq
            }
            if reply.kind == .error {
                let named = (try? JSONValue(parsing: reply.body))?.objectValue?["upstream"]
                fuzzCheck(named == lastTryPosition.map { .string(route[$0].name) }, "the error names \(String(describing: named))")
                // (An HTTP status after chunks cannot happen; the model allows it, so it is left out.)
                if let status = reply.error?.upstreamStatus, [401, 402, 403].contains(status), let last = lastTryPosition,
                    nextSeq == 0
                {
                    fuzzCheck(!route[last].holdsOnAccountError, "an account error answered for an upstream that holds")
                }
            }
            finalOut = true
            if stop { transferRunning = false }
        case .settle(_, let reason, let stop):
            fuzzCheck(!settled, "settled twice")
            fuzzCheck(reason != .answered || finalSeq != nil, "answered without a final")
            fuzzCheck(reason != .abandoned || finalSeq == nil, "abandoned with a final out")
            settled = true
            if stop { transferRunning = false }
        case .forget(let stop):
            fuzzCheck(!settled, "forgotten after settlement")
            settled = true
            if stop { transferRunning = false }
        case .awaitUpstream:
            fuzzCheck(!transferRunning && !machine.isCalling, "waiting for an upstream while calling")        case .awaitUpstream:
            fuzzCheck(!settled && !finalOut, "waiting for an upstream after a final or settlement")
        }
        fuzzCheck(transferRunning == machine.isCalling, "transfer \(transferRunning), machine \(machine.state)")
        if settled { fuzzCheck(machine.isSettled, "settled, machine \(machine.state)") }
    }

    let failures: [UpstreamFailure] = [
        .httpStatus(503, body: []), .httpStatus(429, body: []), .httpStatus(401, body: []), .httpStatus(402, body: []),
        .httpStatus(403, body: []), .httpStatus(400, body: []), .connectionFailed(""),
        .connectTimeout, .firstByteTimeout, .idleTimeout, .requestTimeout, .badResponse(""), .emptyStream,
        .streamInterrupted(""), .responseTooLarge(limit: 1),
    ]
    let hints: [Double?] = [nil, 0, 0.5, 30, 61, -1, .nan, .infinity, -.infinity, 1e308]
    while !input.isEmpty {
        now += UInt64(input.byte()) * 100_000_000
        let wasCalling = machine.isCalling
        switch input.byte() % 20 {
        case 0: apply(machine.call(now: now, route: route, availability: nextAvailability()), wasCalling: wasCalling)
        case 1: apply(machine.answer(.invalidJSON("")), wasCalling: wasCalling)
        case 2: apply(machine.refuse(), wasCalling: wasCalling)
        case 3: apply(machine.handBack(), wasCalling: wasCalling)
        case 4:
            guard transferRunning else { continue }
            let chunk = machine.chunk()
            fuzzCheck(chunk == .publish(seq: nextSeq), "chunk \(chunk), expected \(nextSeq)")
            nextSeq += 1
        case 5: machine.progress(now: now)
        case 6: machine.pause()
        case 7: machine.resume(now: now)
        case 8:
            guard transferRunning else { continue }
            transferRunning = false
            let result: RequestStateMachine.TryResult =
                input.bool()
                ? .completion([UInt8](repeating: 0x20, count: input.int(in: 0...80)))
                : .failure(input.pick(failures), retryAfter: input.pick(hints))
            apply(machine.tryEnded(result, now: now, random: Double(input.byte()) / 256), wasCalling: false)
        case 9:
            let at = max(now, min(machine.nextTimer, now + 100 * second))
            apply(machine.timerFired(now: at, random: 0.5, availability: nextAvailability()), wasCalling: wasCalling)
        case 10: apply(machine.drainStarted(), wasCalling: wasCalling)
        case 11: apply(machine.shutdownGraceOver(), wasCalling: wasCalling)
        case 12: apply(machine.connectionLost(), wasCalling: wasCalling)
        case 13:
            guard finalOut else { continue }
            apply(machine.finalConfirmed(), wasCalling: wasCalling)
        case 15:
            let answeredBefore = finalSeq != nil || settled
            apply(machine.cancel(), wasCalling: wasCalling)
            fuzzCheck(answeredBefore || finalOut, "a cancel left the request without its final")
        case 16:
            apply(machine.requesterGone(), wasCalling: wasCalling)
        case 17:
            let wasWaiting = machine.isWaitingForUpstream
            apply(machine.upstreamsChanged(now: now, availability: nextAvailability(), random: 0.5), wasCalling: wasCalling)
            fuzzCheck(wasWaiting || !machine.isCalling || wasCalling, "upstreamsChanged started a try of a request not waiting")
        case 18:
            let wasWaiting = machine.isWaitingForUpstream
            apply(machine.handBackWaiting(), wasCalling: wasCalling)
            fuzzCheck(!wasWaiting || machine.state == .settled(.requeue), "a waiting request not handed back")
        case 19:
            guard finalOut else { continue }
            finalOut = false
            apply(machine.finalUnconfirmed(), wasCalling: wasCalling)
            fuzzCheck(settled || finalOut, "a final whose connection was replaced was not published again")
        default:
            guard finalOut else { continue }
            finalOut = false
            apply(machine.finalRefused(now: now), wasCalling: wasCalling)
        }
    }
    return 0
}
