import ChatQueueCore
import ChatQueueSystem
import Logging

/// The upstreams' health as the worker acts on it: each try takes a place in
/// its upstream's window and tells its breaker how it went; requests that
/// find no upstream of their route able to take a try wait here (FIFO) and
/// are offered the upstreams again when a place frees or a breaker's time
/// is up; when no route has an upstream up, the worker is degraded: it takes
/// no new requests but, when idle, one at a time (the probe).
extension Worker {
    /// What each upstream of `request`'s route can do now.
    func availability(of request: InFlightRequest, now: Deadline) -> RouteAvailability {
        var availability = RouteAvailability(ready: 0)
        let route = routeUpstreams[request.route]
        for position in route.indices {
            let control = upstreams[route[position].index].control
            let ready = control.admits(now: now)
            availability.set(position, ready: ready, busy: !ready && control.isBusy(now: now))
        }
        return availability
    }

    /// A try to `request.upstream` starts: it takes a place in the window (and is the probe of a half-open breaker).
    func tryStarted(_ request: InFlightRequest, now: Deadline) {
        let upstream = request.upstream
        request.isProbe = !upstream.control.isUp
        request.windowRound = upstream.control.tryStarted(now: now)
        request.holdsWindowPlace = true
    }

    /// The request's try ended: its place in the window frees, and its
    /// breaker hears how it went (`failure` nil: answered; `stopped`: it said
    /// nothing, e.g. cancelled). Once per try, whichever path ends it.
    func tryFinished(
        _ request: InFlightRequest, failure: UpstreamFailure?, retryAfter: Double? = nil, rateLimited: Bool = false,
        usage: TokenUsage? = nil, stopped: Bool = false, at time: Deadline? = nil
    ) {
        guard request.holdsWindowPlace else { return }
        request.holdsWindowPlace = false
        let upstream = request.upstream
        let outcome: CircuitBreaker.Outcome?
        var signal = ConcurrencyWindow.Signal.none
        if stopped {
            // Only the probe's stop frees the probe's slot; other tries say nothing.
            outcome = request.isProbe ? .stopped : nil
        } else if let failure {
            upstream.figures.recordFailure(failure)
            if let reason = failure.accountFault, upstream.holdsOnAccountError {
                outcome = .accountFault(reason)
            } else if failure.isUpstreamTrouble {
                outcome = .trouble(retryAfter: retryAfter)
                supervisor.upstreamLastError = named(upstream, "\(failure)")
            } else {
                // The request's fault (400, 404, ...), a reply-mode account fault, or a 429: the upstream answered.
                outcome = .answered
            }
            if failure.saysOverloaded { signal = .overloaded }
        } else {
            outcome = .answered
            signal = .answered
            supervisor.upstreamLastSuccess = WallClock.unixMilliseconds()
        }
        if rateLimited { signal = .overloaded }
        let now = time ?? Deadline.now()
        let change = upstream.control.tryEnded(
            outcome, signal, round: request.windowRound, tokens: usage?.total, now: now)
        upstreamsChanged = true
        switch change {
        case .none:
            break
        case .opened(let reason, let until):
            if reason.isAccountFault { supervisor.upstreamLastError = named(upstream, reason.name) }
            logger.warning(
                "upstream breaker open: no tries go to it until its probe",
                metadata: [
                    "upstream.name": "\(upstream.name)", "breaker.reason": "\(reason.name)",
                    "breaker.probe_in_s": "\(Double(until.nanoseconds(after: now)) / 1e9)",
                ])
            timers.upstreams = min(timers.upstreams, until)
            upstreamModeMayChange = true
        case .closed:
            logger.notice("upstream breaker closed: the probe succeeded", metadata: ["upstream.name": "\(upstream.name)"])
            upstreamModeMayChange = true
        }
    }

    /// `<upstream>: <text>`, or the text alone with one unnamed upstream.
    private func named(_ upstream: UpstreamClient, _ text: String) -> String {
        upstreams.count == 1 && upstream.name == "default" ? text : upstream.name + ": " + text
    }

    /// Whether some route has an upstream whose breaker is closed.
    var someRouteIsUp: Bool {
        routeUpstreams.contains { route in route.contains { upstreams[$0.index].control.isUp } }
    }

    /// Loop phase: an upstream's admission changed by itself (a breaker's
    /// time is up, a budget refilled), or tries freed places or changed
    /// breakers this turn: requests waiting for an upstream are offered them,
    /// oldest first, and the worker's mode follows the breakers. Costs nothing
    /// while no request waits and the worker is not degraded.
    func offerUpstreams(now: Deadline) throws {
        if now >= timers.upstreams {
            timers.upstreams = .never
            upstreamsChanged = true
        }
        if upstreamModeMayChange {
            upstreamModeMayChange = false
            try followUpstreamMode()
        }
        if upstreamsChanged, !waitingForUpstream.isEmpty {
            let waiting = waitingForUpstream
            waitingForUpstream.removeAll(keepingCapacity: true)
            for request in waiting where !request.machine.isSettled {
                try perform(
                    request.machine.upstreamsChanged(
                        now: now, availability: availability(of: request, now: now), random: Double.random(in: 0..<1)),
                    for: request)
            }
        }
        upstreamsChanged = false
        // Wake when what an upstream admits changes by itself, if anyone cares.
        if !waitingForUpstream.isEmpty || state == .degraded {
            for upstream in upstreams {
                timers.upstreams = min(timers.upstreams, upstream.control.nextChange(after: now))
            }
        }
    }

    /// The machine found no upstream for the request's try: it waits (the
    /// oldest first when upstreams free up).
    func awaitUpstream(_ request: InFlightRequest) throws {
        waitingForUpstream.append(request)
    }

    /// Degraded while no route has an upstream up: no new deliveries (they
    /// stay queued for healthier workers or later), and of the requests
    /// waiting for an upstream the oldest of each route stays (it probes its
    /// route's upstreams when they let it) while the others go back to the
    /// queue, once, as the worker degrades; running again once a breaker closed.
    func followUpstreamMode() throws {
        guard let session, !draining else { return }
        let up = someRouteIsUp
        if !up, state == .running {
            logger.warning("no route has an upstream up: degraded, taking no new requests")
            counters.degradations += 1
            state = .degraded
            try session.unsubscribe()
            var keptRoutes = Set<Int>()
            var handedBack: [InFlightRequest] = []
            waitingForUpstream.removeAll { request in
                guard request.machine.isWaitingForUpstream else { return true }
                if keptRoutes.insert(request.route).inserted { return false }
                handedBack.append(request)
                return true
            }
            for request in handedBack { try perform(request.machine.handBackWaiting(), for: request) }
        } else if up, state == .degraded {
            logger.notice("an upstream is up again: taking requests again")
            state = .running
            try session.unsubscribe()
            try session.subscribe(queue: settings.queue.name, prefetch: settings.worker.concurrency)
        }
    }

    /// Loop phase, degraded: once a breaker lets its probe go and no try
    /// runs (the requests kept waiting could not use it), take one more
    /// request, at most one a second and within `worker.concurrency` (it
    /// unsubscribes again on arrival, see `handleDelivery`). Nothing is handed
    /// back meanwhile, so no delivery goes round between broker and worker.
    func probeIfDegradedAndIdle(_ session: BrokerSession, now: Deadline) throws {
        guard state == .degraded, !session.isConsuming, now >= nextProbeSubscription,
            inFlight.count < settings.worker.concurrency,
            upstreams.allSatisfy({ $0.control.window.inFlight == 0 }),
            upstreams.contains(where: { !$0.control.isUp && $0.control.breaker.admits(now: now) })
        else { return }
        try session.subscribe(queue: settings.queue.name, prefetch: 1)
        nextProbeSubscription = now + 1_000_000_000
        counters.upstreamProbes += 1
        logger.notice("degraded: probing the upstreams with one request")
    }
}
