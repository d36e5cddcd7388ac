/// The life of one delivery, from its arrival until it is settled with the
/// broker: HTTP tries, chunks, the one final reply of this attempt, the
/// broker's confirm of that reply, and the ack, reject or requeue that ends it.
///
/// A value type in the style of postgres-nio's `ExtendedQueryStateMachine`:
/// events come in as `mutating func`s, each returns the `Action` the worker
/// must carry out, and every event is handled in every state by an exhaustive
/// switch. Time is a `Deadline` (monotonic nanoseconds) passed in with each event, and
/// randomness (retry jitter) too, so the machine is pure and tested as
/// event -> action tables without sockets.
///
/// The guarantees it keeps, whatever the order of events:
/// - at most one final reply per attempt is out at a time (a final the broker
///   refused is published again, the same reply, a bounded number of times);
/// - the delivery is settled exactly once, acked only after its final reply
///   was confirmed;
/// - no HTTP try starts and no chunk is forwarded once a final is published;
/// - a running transfer is stopped by the action that leaves `calling`.
public struct RequestStateMachine: Sendable {
    // MARK: Types

    /// What is done with the delivery in the end.
    public enum Settlement: Sendable, Equatable {
        /// basic.ack: answered.
        case ack
        /// basic.reject without requeue: the queue's dead-letter exchange takes it.
        case deadLetter
        /// basic.nack with requeue: handed back for another worker.
        case requeue
    }

    /// Why a delivery is settled, for logs and counters.
    public enum SettleReason: Sendable, Equatable {
        /// Its final reply was confirmed.
        case answered
        /// It could not be answered at all (no or a disallowed reply_to).
        case unanswerable
        /// The broker refused its final reply every time it was published.
        case finalRefused
        /// The worker is draining and had not started it.
        case draining
        /// The shutdown grace ran out before it was answered.
        case shutdown
        /// The requester is gone (a reply came back unroutable): acked unanswered.
        case abandoned
        /// No upstream of its route can take it (every breaker open, an
        /// account fault holds): handed back unanswered for later or another worker.
        case held
    }

    public enum FinalKind: Sendable, Equatable {
        case completion
        case error
    }

    /// The final reply of this attempt, kept until the broker confirms it
    /// (it is published again if the broker refuses it).
    public struct FinalReply: Sendable, Equatable {
        public var kind: FinalKind
        public var body: [UInt8]
        /// Its x-seq: after every chunk of the attempt.
        public var seq: Int64
        /// The error it reports (nil for a completion).
        public var error: ChatError?
        /// What happens to the delivery once the broker confirmed it.
        public var settlement: Settlement
        /// Times it was handed to the broker, this one included.
        public var publishes: Int
        /// The failure of the try a timer stopped to send this final (first
        /// byte or idle timeout): it counts toward the upstream's health.
        public var stoppedTry: UpstreamFailure?
    }

    /// How an HTTP try ended.
    public enum TryResult: Sendable, Equatable {
        /// The final chat.completion body.
        case completion([UInt8])
        /// The try failed; `retryAfter` is the upstream's minimum wait in seconds, if it gave a usable one.
        case failure(UpstreamFailure, retryAfter: Double?)
    }

    /// A running HTTP try.
    public struct Calling: Sendable, Equatable {
        /// Chunks of this try handed out for publishing.
        public var chunks: Int
        /// No data event yet: the try fails at this time (`never` once data flows, or while paused).
        public var firstByteDeadline: Deadline
        /// Data flows: the try fails if nothing more arrives by this time (`never` before, or while paused).
        public var idleDeadline: Deadline
        /// Reads paused because replies back up; the per-try timers are off meanwhile.
        public var paused: Bool
        /// A data event arrived: after a pause the idle timer, not the first-byte timer, applies.
        public var sawProgress: Bool
    }

    public enum State: Sendable, Equatable {
        /// Delivered; nothing decided yet.
        case received
        case calling(Calling)
        /// The last try failed with `failure`; the next starts at `until`.
        case waitingToRetry(until: Deadline, failure: UpstreamFailure)
        /// A try is due but no upstream of the route can take it now (windows
        /// full, breakers open, an account fault holds); `failure` is the last
        /// try's, nil before the first. Waits for `upstreamsChanged` or the deadline.
        case waitingForUpstream(failure: UpstreamFailure?)
        /// The final reply is with the broker, waiting for its confirm.
        case finalPublished(FinalReply)
        /// The broker refused the final reply; it is published again at `retryAt`.
        case finalRefused(FinalReply, retryAt: Deadline)
        /// Done. nil: handed back by losing the connection (the broker requeues it).
        case settled(Settlement?)
    }

    /// What the worker must do after an event.
    public enum Action: Sendable, Equatable {
        case none
        /// Start HTTP try number `try`, to `upstream` (the route's upstream at `routePosition`).
        case startTransfer(try: Int)
        /// No upstream of the route can take the try now: keep the request
        /// with those waiting for an upstream, and call `upstreamsChanged`
        /// when a breaker or a window changes.
        case awaitUpstream
        /// The try failed; the next one starts after `wait` seconds (`nextTimer`).
        case retryLater(after: UpstreamFailure, wait: Double, stopTransfer: Bool)
        /// Publish the final reply (again, when `reply.publishes` > 1), settling the delivery on its confirm.
        case publishFinal(FinalReply, stopTransfer: Bool)
        /// Ack, reject or requeue the delivery now; the request is done.
        case settle(Settlement, reason: SettleReason, stopTransfer: Bool)
        /// The connection is gone (the broker requeues the delivery): drop the request without a broker call.
        case forget(stopTransfer: Bool)
    }

    /// What to do with a chunk the running try received.
    public enum ChunkAction: Sendable, Equatable {
        case publish(seq: Int64)
        /// Not calling (cannot happen while the worker stops transfers as told); never published.
        case drop
    }

    /// The fixed rules of a request's life.
    public struct Policy: Sendable, Equatable {
        public var retry: RetryBackoff
        /// Nanoseconds a try may wait for its first data event.
        public var firstByteTimeout: UInt64
        /// Nanoseconds allowed between data events.
        public var idleTimeout: UInt64
        /// Largest final reply body; a larger completion ends as `response_too_large`.
        public var maxReplyBytes: Int
        /// Times a final reply is handed to the broker before the delivery is dead-lettered.
        public var maxFinalPublishes: Int
        /// Nanoseconds before the first republish of a refused final; doubles each time.
        public var finalRepublishDelay: UInt64

        public init(
            retry: RetryBackoff, firstByteTimeout: UInt64, idleTimeout: UInt64, maxReplyBytes: Int,
            maxFinalPublishes: Int = 5, finalRepublishDelay: UInt64 = 1_000_000_000
        ) {
            self.retry = retry
            self.firstByteTimeout = firstByteTimeout
            self.idleTimeout = idleTimeout
            self.maxReplyBytes = maxReplyBytes
            self.maxFinalPublishes = max(1, maxFinalPublishes)
            self.finalRepublishDelay = finalRepublishDelay
        }
    }

    /// One upstream of the request's route, as its tries use it.
    public struct RouteUpstream: Sendable, Equatable {
        /// Its configured name (the error reply's `upstream`, logs, metrics).
        public var name: String
        /// The worker's index of it (its client, handles, counters).
        public var index: Int
        /// The model name this upstream is sent instead of the request's; nil: the body unchanged.
        public var model: String?
        /// The rules of a try to it (its first-byte and idle timeouts; the
        /// retry and reply rules are the same for every upstream).
        public var policy: Policy
        /// `upstream.on_account_error: hold`: a 401/402/403 is never answered;
        /// the request waits for another upstream of the route, or is handed back.
        public var holdsOnAccountError: Bool

        public init(name: String, index: Int, model: String? = nil, policy: Policy, holdsOnAccountError: Bool = false) {
            self.name = name
            self.index = index
            self.model = model
            self.policy = policy
            self.holdsOnAccountError = holdsOnAccountError
        }
    }

    // MARK: Stored

    public private(set) var state: State = .received
    public let requestID: String
    /// The rules of the current try: the creation's, then those of the
    /// route's upstream each try goes to.
    public private(set) var policy: Policy
    /// The upstreams of the request's route, in the order tried (empty: one unnamed upstream, `policy`'s).
    public private(set) var route: [RouteUpstream] = []
    /// Which of `route` the current (or last) try went to.
    public private(set) var routePosition = 0
    /// Which of `route` the next try goes to first (the first of the route
    /// that can take it from there on, see `choose`).
    private var nextRoutePosition = 0
    /// Route positions that answered an account fault and do not hold: not tried again for this request.
    private var accountFaulted: UInt64 = 0
    /// Tries that ended in an account fault: they do not count toward `retry.max_attempts`.
    private var accountFaultTries = 0
    /// Route positions tried since the last backoff wait: a fallback that
    /// comes back to one of them waits the backoff first (with `fallbackRetryAfter`).
    private var roundTried: UInt64 = 0
    /// The Retry-After of the failure that moved the request on without waiting.
    private var fallbackRetryAfter: Double?
    /// The whole request's deadline and the failure reported when it passes.
    public let deadline: Deadline
    public let deadlineFailure: UpstreamFailure
    /// x-seq of the next reply of this attempt.
    public private(set) var nextSeq: Int64 = 0
    /// HTTP tries made so far (the error reply's `attempts`).
    public private(set) var tries = 0
    /// The worker is draining: failed tries are not retried.
    public private(set) var draining = false

    public init(requestID: String, policy: Policy, deadline: Deadline, deadlineFailure: UpstreamFailure) {
        self.requestID = requestID
        self.policy = policy
        self.deadline = deadline
        self.deadlineFailure = deadlineFailure
    }

    public var isSettled: Bool {
        if case .settled = state { return true }
        return false
    }

    /// Whether an HTTP try is running (its transfer is with libcurl).
    public var isCalling: Bool {
        if case .calling = state { return true }
        return false
    }

    /// The earliest time at which `timerFired` can do something (`never`: none).
    public var nextTimer: Deadline {
        switch state {
        case .calling(let calling):
            return min(deadline, calling.firstByteDeadline, calling.idleDeadline)
        case .waitingToRetry(let until, _):
            return min(deadline, until)
        case .waitingForUpstream:
            return deadline
        case .finalRefused(_, let retryAt):
            return retryAt
        case .received, .finalPublished, .settled:
            return .never
        }
    }

    // MARK: Events: arrival

    /// The upstream of the current (or last) try; nil without a route.
    public var upstream: RouteUpstream? {
        route.isEmpty ? nil : route[routePosition]
    }

    /// The upstream the next try goes to (after a failure: the route's next); nil without a route.
    public var nextUpstream: RouteUpstream? {
        route.isEmpty ? nil : route[nextRoutePosition]
    }

    /// The request is valid: make the first try, to the first upstream of
    /// `route` (the upstreams its model routes to, in order; empty: the one
    /// upstream of the creation's policy) that `availability` says can take it.
    public mutating func call(
        now: Deadline, route: [RouteUpstream] = [], availability: RouteAvailability = .allReady(count: 64)
    ) -> Action {
        switch state {
        case .received:
            self.route = route
            nextRoutePosition = 0
            return startTry(
                number: 1, now: now, availability: availability, lastFailure: nil, random: 0, backsOffOnReturn: false)
        case .calling, .waitingToRetry, .waitingForUpstream, .finalPublished, .finalRefused, .settled:
            return .none
        }
    }

    /// A breaker or a window of the worker's upstreams changed: a request
    /// waiting for an upstream tries again with the new `availability`.
    public mutating func upstreamsChanged(now: Deadline, availability: RouteAvailability, random: Double) -> Action {
        switch state {
        case .waitingForUpstream(let failure):
            // It waited for an upstream already: no backoff on top.
            return startTry(
                number: tries + 1, now: now, availability: availability, lastFailure: failure, random: random,
                backsOffOnReturn: false)
        case .received, .calling, .waitingToRetry, .finalPublished, .finalRefused, .settled:
            return .none
        }
    }

    /// The worker stops taking requests (no upstream of any route is up): a
    /// request waiting for an upstream goes back to the queue unanswered.
    public mutating func handBackWaiting() -> Action {
        switch state {
        case .waitingForUpstream:
            state = .settled(.requeue)
            return .settle(.requeue, reason: .held, stopTransfer: false)
        case .received, .calling, .waitingToRetry, .finalPublished, .finalRefused, .settled:
            return .none
        }
    }

    /// Whether the request waits for an upstream to take its next try.
    public var isWaitingForUpstream: Bool {
        if case .waitingForUpstream = state { return true }
        return false
    }

    /// The request is answered without calling the upstream (invalid, poison, past its deadline).
    public mutating func answer(_ error: ChatError) -> Action {
        switch state {
        case .received:
            return publishError(error, stopTransfer: false)
        case .calling, .waitingToRetry, .waitingForUpstream, .finalPublished, .finalRefused, .settled:
            return .none
        }
    }

    /// There is nowhere to answer (no or a disallowed reply_to): dead-letter it unanswered.
    public mutating func refuse() -> Action {
        settleUnstarted(.deadLetter, reason: .unanswerable)
    }

    /// Arrived while draining: hand it back untouched.
    public mutating func handBack() -> Action {
        settleUnstarted(.requeue, reason: .draining)
    }

    /// Settles a delivery nothing was done for yet; any later state ignores it.
    private mutating func settleUnstarted(_ settlement: Settlement, reason: SettleReason) -> Action {
        switch state {
        case .received:
            state = .settled(settlement)
            return .settle(settlement, reason: reason, stopTransfer: false)
        case .calling, .waitingToRetry, .waitingForUpstream, .finalPublished, .finalRefused, .settled:
            return .none
        }
    }

    // MARK: Events: the running try

    /// A chunk of the running try is to be forwarded.
    public mutating func chunk() -> ChunkAction {
        switch state {
        case .calling(var calling):
            calling.chunks += 1
            state = .calling(calling)
            let seq = nextSeq
            nextSeq += 1
            return .publish(seq: seq)
        case .received, .waitingToRetry, .waitingForUpstream, .finalPublished, .finalRefused, .settled:
            return .drop
        }
    }

    /// Real data arrived (a data event, or document bytes that are not padding):
    /// the first-byte timer is done and the idle timer restarts.
    public mutating func progress(now: Deadline) {
        switch state {
        case .calling(var calling) where !calling.paused:
            calling.firstByteDeadline = .never
            calling.idleDeadline = now + policy.idleTimeout
            calling.sawProgress = true
            state = .calling(calling)
        case .calling, .received, .waitingToRetry, .waitingForUpstream, .finalPublished, .finalRefused, .settled:
            break
        }
    }

    /// Reads paused because replies back up: the pause is ours, so the
    /// per-try timers stop; the request's deadline keeps counting.
    public mutating func pause() {
        switch state {
        case .calling(var calling):
            calling.paused = true
            calling.firstByteDeadline = .never
            calling.idleDeadline = .never
            state = .calling(calling)
        case .received, .waitingToRetry, .waitingForUpstream, .finalPublished, .finalRefused, .settled:
            break
        }
    }

    /// Reads resume: the idle timer starts over, or the first-byte timer
    /// when no data event had arrived yet (keep-alives only).
    public mutating func resume(now: Deadline) {
        switch state {
        case .calling(var calling) where calling.paused:
            calling.paused = false
            if calling.sawProgress {
                calling.idleDeadline = now + policy.idleTimeout
            } else {
                calling.firstByteDeadline = now + policy.firstByteTimeout
            }
            state = .calling(calling)
        case .calling, .received, .waitingToRetry, .waitingForUpstream, .finalPublished, .finalRefused, .settled:
            break
        }
    }

    /// Whether the running try is paused (and waits for `resume`).
    public var isPaused: Bool {
        if case .calling(let calling) = state { return calling.paused }
        return false
    }

    /// The running try ended (libcurl finished it, or it could not start).
    public mutating func tryEnded(_ result: TryResult, now: Deadline, random: Double) -> Action {
        switch state {
        case .calling(let calling):
            switch result {
            case .completion(let body):
                guard body.count <= policy.maxReplyBytes else {
                    return publishError(
                        ChatError(upstream: .responseTooLarge(limit: policy.maxReplyBytes)), stopTransfer: false)
                }
                return publishFinal(.completion, body: body, error: nil, settlement: .ack, stopTransfer: false)
            case .failure(let failure, let retryAfter):
                return failed(calling, failure, retryAfter: retryAfter, now: now, random: random, stopTransfer: false)
            }
        case .received, .waitingToRetry, .waitingForUpstream, .finalPublished, .finalRefused, .settled:
            return .none
        }
    }

    // MARK: Events: time and the worker

    /// Timers are due (call when `now >= nextTimer`; earlier calls do nothing).
    /// A retry that is due goes to an upstream `availability` says can take it.
    public mutating func timerFired(
        now: Deadline, random: Double, availability: RouteAvailability = .allReady(count: 64)
    ) -> Action {
        switch state {
        case .calling(let calling):
            if now >= deadline {
                return publishError(ChatError(upstream: deadlineFailure), stopTransfer: true)
            }
            if now >= calling.firstByteDeadline {
                return failed(calling, .firstByteTimeout, retryAfter: nil, now: now, random: random, stopTransfer: true)
            }
            if now >= calling.idleDeadline {
                // The try already produced data: the time is spent, no retry.
                return publishError(ChatError(upstream: .idleTimeout), stopTransfer: true, stoppedTry: .idleTimeout)
            }
            return .none
        case .waitingToRetry(let until, let failure):
            if now >= deadline {
                return publishError(ChatError(upstream: deadlineFailure), stopTransfer: false)
            }
            if now >= until {
                return startTry(
                    number: tries + 1, now: now, availability: availability, lastFailure: failure, random: random,
                    backsOffOnReturn: true)
            }
            return .none
        case .waitingForUpstream:
            // Held or waiting, the deadline still counts: past it, the deadline's error.
            guard now >= deadline else { return .none }
            return publishError(ChatError(upstream: deadlineFailure), stopTransfer: false)
        case .finalRefused(var reply, let retryAt):
            guard now >= retryAt else { return .none }
            reply.publishes += 1
            state = .finalPublished(reply)
            return .publishFinal(reply, stopTransfer: false)
        case .received, .finalPublished, .settled:
            return .none
        }
    }

    /// The first SIGTERM: no new try starts. A failed try is answered at
    /// once instead of retried, and so is a request waiting to retry.
    public mutating func drainStarted() -> Action {
        draining = true
        switch state {
        case .waitingToRetry(_, let failure):
            return answerOrHandBack(failure, stopTransfer: false)
        case .waitingForUpstream(let failure?):
            return answerOrHandBack(failure, stopTransfer: false)
        case .waitingForUpstream(nil):
            // Never tried: another worker can serve it.
            state = .settled(.requeue)
            return .settle(.requeue, reason: .draining, stopTransfer: false)
        case .received, .calling, .finalPublished, .finalRefused, .settled:
            return .none
        }
    }

    /// The shutdown grace is over: whatever is not settled goes back to the queue.
    public mutating func shutdownGraceOver() -> Action {
        switch state {
        case .received, .waitingToRetry, .waitingForUpstream, .finalPublished, .finalRefused:
            state = .settled(.requeue)
            return .settle(.requeue, reason: .shutdown, stopTransfer: false)
        case .calling:
            state = .settled(.requeue)
            return .settle(.requeue, reason: .shutdown, stopTransfer: true)
        case .settled:
            return .none
        }
    }

    /// The broker connection is gone: the broker requeues the delivery by itself.
    public mutating func connectionLost() -> Action {
        switch state {
        case .received, .waitingToRetry, .waitingForUpstream, .finalPublished, .finalRefused:
            state = .settled(nil)
            return .forget(stopTransfer: false)
        case .calling:
            state = .settled(nil)
            return .forget(stopTransfer: true)
        case .settled:
            return .none
        }
    }

    // MARK: Events: the requester

    /// The requester cancelled the request (a cancel message named it, or
    /// one was remembered when it arrived): answered `cancelled` at once, the
    /// running try stopped and not retried, its final after the chunks
    /// already sent. A request with its final out is done already: nothing.
    public mutating func cancel() -> Action {
        switch state {
        case .received, .waitingToRetry, .waitingForUpstream:
            return publishError(.cancelled(), stopTransfer: false)
        case .calling:
            return publishError(.cancelled(), stopTransfer: true)
        case .finalPublished, .finalRefused, .settled:
            return .none
        }
    }

    /// The broker returned one of this attempt's replies as unroutable: the
    /// reply queue is gone, nobody will read an answer. The running try is
    /// stopped and the delivery acked unanswered. Once the final is out its
    /// confirm settles the delivery as usual, so nothing changes then.
    public mutating func requesterGone() -> Action {
        switch state {
        case .received, .waitingToRetry, .waitingForUpstream:
            state = .settled(.ack)
            return .settle(.ack, reason: .abandoned, stopTransfer: false)
        case .calling:
            state = .settled(.ack)
            return .settle(.ack, reason: .abandoned, stopTransfer: true)
        case .finalPublished, .finalRefused, .settled:
            return .none
        }
    }

    // MARK: Events: the broker's answer to the final reply

    /// The broker confirmed the final reply.
    public mutating func finalConfirmed() -> Action {
        switch state {
        case .finalPublished(let reply):
            state = .settled(reply.settlement)
            return .settle(reply.settlement, reason: .answered, stopTransfer: false)
        case .received, .calling, .waitingToRetry, .waitingForUpstream, .finalRefused, .settled:
            return .none
        }
    }

    /// The broker refused the final reply (a negative confirm: the reply
    /// queue is full with reject-publish, or unavailable). It is published
    /// again after a backoff, without calling the upstream again; after
    /// `maxFinalPublishes` refusals the delivery is dead-lettered, so neither
    /// the broker nor the worker loops on it.
    public mutating func finalRefused(now: Deadline) -> Action {
        switch state {
        case .finalPublished(let reply):
            guard reply.publishes < policy.maxFinalPublishes else {
                state = .settled(.deadLetter)
                return .settle(.deadLetter, reason: .finalRefused, stopTransfer: false)
            }
            let shift = UInt64(min(reply.publishes - 1, 16))
            let delay = policy.finalRepublishDelay.multipliedReportingOverflow(by: 1 << shift)
            state = .finalRefused(reply, retryAt: now + (delay.overflow ? .max : delay.partialValue))
            return .none
        case .received, .calling, .waitingToRetry, .waitingForUpstream, .finalRefused, .settled:
            return .none
        }
    }

    /// The connection the final reply went out on was replaced before the
    /// broker confirmed or refused it (the worker opens a new publisher after
    /// a refusal): its fate is unknown, so it is published again at once on
    /// the new one. Not counted as a publish: the broker did not refuse it.
    /// A duplicate final is possible (at-least-once, docs/protocol.md).
    public mutating func finalUnconfirmed() -> Action {
        switch state {
        case .finalPublished(let reply):
            return .publishFinal(reply, stopTransfer: false)
        case .received, .calling, .waitingToRetry, .waitingForUpstream, .finalRefused, .settled:
            return .none
        }
    }

    // MARK: Transitions

    /// Where a due try goes: a route position, nowhere yet, or nowhere at all.
    private enum Choice {
        case upstream(Int)
        case wait
        case answer(UpstreamFailure)
    }

    /// The first upstream from `nextRoutePosition` on (in route order,
    /// wrapping) that can take a try. None ready: wait while one is only
    /// busy, or is down but may come back (breakers close, a hold ends);
    /// answer with the last failure when every upstream not excluded is down
    /// and that failure is an account fault the request is to be answered with.
    private func choose(_ availability: RouteAvailability, lastFailure: UpstreamFailure?) -> Choice {
        let everyPosition: UInt64 = route.count >= 64 ? .max : (1 << UInt64(route.count)) &- 1
        let candidates = everyPosition & ~accountFaulted
        guard candidates != 0 else {
            return .answer(lastFailure ?? .badResponse("every upstream of the route refused the account"))
        }
        let ready = availability.ready & candidates
        if ready != 0 {
            for offset in 0..<route.count {
                let position = (nextRoutePosition + offset) % route.count
                if ready & (1 << UInt64(position)) != 0 { return .upstream(position) }
            }
        }
        if availability.busy & candidates != 0 { return .wait }
        if let lastFailure, lastFailure.accountFault != nil, !route[routePosition].holdsOnAccountError {
            return .answer(lastFailure)
        }
        return .wait
    }

    private mutating func startTry(
        number: Int, now: Deadline, availability: RouteAvailability, lastFailure: UpstreamFailure?, random: Double,
        backsOffOnReturn: Bool
    ) -> Action {
        if !route.isEmpty {
            switch choose(availability, lastFailure: lastFailure) {
            case .upstream(let position):
                let bit: UInt64 = 1 << UInt64(position)
                if backsOffOnReturn, roundTried & bit != 0, let lastFailure {
                    // Back to an upstream this round already tried (the others
                    // are busy or down): the backoff and its Retry-After first.
                    roundTried = 0
                    let secondsLeft = deadline.isNever ? Double.infinity : Double(deadline.nanoseconds(after: now)) / 1e9
                    guard
                        let wait = policy.retry.delay(
                            triesMade: tries - accountFaultTries, retryAfter: fallbackRetryAfter,
                            secondsLeft: secondsLeft, random: random)
                    else { return answerOrHandBack(lastFailure, stopTransfer: false) }
                    if wait > 0 {
                        nextRoutePosition = position
                        state = .waitingToRetry(until: now.adding(seconds: wait), failure: lastFailure)
                        return .retryLater(after: lastFailure, wait: wait, stopTransfer: false)
                    }
                }
                roundTried |= bit
                routePosition = position
                policy = route[position].policy
            case .wait:
                state = .waitingForUpstream(failure: lastFailure)
                return .awaitUpstream
            case .answer(let failure):
                return publishError(ChatError(upstream: failure), stopTransfer: false)
            }
        }
        tries = number
        state = .calling(
            Calling(
                chunks: 0, firstByteDeadline: now + policy.firstByteTimeout, idleDeadline: .never, paused: false,
                sawProgress: false))
        return .startTransfer(try: number)
    }

    /// A try failed: retry when the failure, the policy and the deadline allow, else answer with the error.
    private mutating func failed(
        _ calling: Calling, _ failure: UpstreamFailure, retryAfter: Double?, now: Deadline, random: Double,
        stopTransfer: Bool
    ) -> Action {
        if failure.accountFault != nil, !route.isEmpty, calling.chunks == 0 {
            return accountFaulted(failure, now: now, stopTransfer: stopTransfer)
        }
        var worthRetrying = failure.isRetryable
        if case .streamInterrupted = failure { worthRetrying = true }
        let triesCounted = tries - accountFaultTries
        if worthRetrying, calling.chunks == 0, !draining {
            let secondsLeft = deadline.isNever ? Double.infinity : Double(deadline.nanoseconds(after: now)) / 1e9
            // Fallback: the next try goes to the route's next upstream. Moving
            // on while an upstream of the route is not tried yet in this round
            // does not wait (the failure and its Retry-After are the last
            // upstream's); once all were tried, the next waits the backoff as a
            // retry of one upstream does (and so does a fallback that can only
            // go back to a tried one, see `startTry`).
            let next = route.isEmpty ? 0 : (routePosition + 1) % route.count
            let everyPosition: UInt64 = route.count >= 64 ? .max : (1 << UInt64(route.count)) &- 1
            let fallsOver = !route.isEmpty && roundTried & everyPosition != everyPosition
            let wait: Double? =
                fallsOver
                ? (triesCounted < policy.retry.maxAttempts && secondsLeft > 0 ? 0 : nil)
                : policy.retry.delay(
                    triesMade: triesCounted, retryAfter: retryAfter, secondsLeft: secondsLeft, random: random)
            if let wait {
                nextRoutePosition = next
                if fallsOver { fallbackRetryAfter = retryAfter } else { roundTried = 0 }
                state = .waitingToRetry(until: now.adding(seconds: wait), failure: failure)
                return .retryLater(after: failure, wait: wait, stopTransfer: stopTransfer)
            }
        }
        var error = ChatError(upstream: failure)
        if calling.chunks > 0, failure.isRetryable {
            // Chunks already went out: never retried, reported as an interrupted stream.
            error = ChatError(upstream: .streamInterrupted(String(describing: failure)))
        }
        return publishError(error, stopTransfer: stopTransfer, stoppedTry: stopTransfer ? failure : nil)
    }

    /// A 401, 402 or 403 (the account, not the request): the next upstream of
    /// the route gets the request at once, without using up an attempt.
    /// Answered only when the upstream does not hold and no other upstream
    /// of the route is left; held (waiting, or handed back) when it holds.
    private mutating func accountFaulted(_ failure: UpstreamFailure, now: Deadline, stopTransfer: Bool) -> Action {
        let holds = route[routePosition].holdsOnAccountError
        accountFaultTries += 1
        if !holds { accountFaulted |= 1 << UInt64(routePosition) }
        let everyPosition: UInt64 = route.count >= 64 ? .max : (1 << UInt64(route.count)) &- 1
        if draining || (!holds && accountFaulted == everyPosition) {
            return answerOrHandBack(failure, stopTransfer: stopTransfer)
        }
        nextRoutePosition = (routePosition + 1) % route.count
        state = .waitingToRetry(until: now, failure: failure)
        return .retryLater(after: failure, wait: 0, stopTransfer: stopTransfer)
    }

    /// Whether `failure` is an account fault of an upstream that holds: never answered.
    private func holds(_ failure: UpstreamFailure) -> Bool {
        failure.accountFault != nil && !route.isEmpty && route[routePosition].holdsOnAccountError
    }

    /// Answers with `failure`, or hands the delivery back unanswered: an
    /// account fault of an upstream that holds (reason `held`), or one while
    /// draining that another upstream of the route may still answer, on
    /// another worker (reason `draining`).
    private mutating func answerOrHandBack(_ failure: UpstreamFailure, stopTransfer: Bool) -> Action {
        if holds(failure) {
            state = .settled(.requeue)
            return .settle(.requeue, reason: .held, stopTransfer: stopTransfer)
        }
        let everyPosition: UInt64 = route.count >= 64 ? .max : (1 << UInt64(route.count)) &- 1
        if failure.accountFault != nil, draining, !route.isEmpty, everyPosition & ~accountFaulted != 0 {
            state = .settled(.requeue)
            return .settle(.requeue, reason: .draining, stopTransfer: stopTransfer)
        }
        return publishError(ChatError(upstream: failure), stopTransfer: stopTransfer, stoppedTry: nil)
    }

    private mutating func publishError(
        _ error: ChatError, stopTransfer: Bool, stoppedTry: UpstreamFailure? = nil
    ) -> Action {
        // The upstream of the last try, when one was made.
        let body = error.responseBody(requestID: requestID, attempts: tries, upstream: tries > 0 ? upstream?.name : nil)
        let settlement: Settlement = error.disposition == .deadLetter ? .deadLetter : .ack
        return publishFinal(
            .error, body: body, error: error, settlement: settlement, stopTransfer: stopTransfer, stoppedTry: stoppedTry)
    }

    private mutating func publishFinal(
        _ kind: FinalKind, body: [UInt8], error: ChatError?, settlement: Settlement, stopTransfer: Bool,
        stoppedTry: UpstreamFailure? = nil
    ) -> Action {
        let reply = FinalReply(
            kind: kind, body: body, seq: nextSeq, error: error, settlement: settlement, publishes: 1,
            stoppedTry: stoppedTry)
        nextSeq += 1
        state = .finalPublished(reply)
        return .publishFinal(reply, stopTransfer: stopTransfer)
    }
}
