// Many streams waiting the same interval should not mean as many event loop
// timers: NIO keeps scheduled tasks in a heap, and at thousands of entries
// re-balancing it costs more than writing the chunks. This timer groups all
// callbacks due in the same millisecond under one scheduled task.

import NIOCore

final class CoalescingTimer: @unchecked Sendable {
    // @unchecked: all mutable state is only touched on `eventLoop` (asserted in
    // debug builds). The type must be Sendable to be handed to channel initializers.
    private let eventLoop: any EventLoop
    /// Callbacks keyed by the uptime millisecond at which they are due.
    private var due: [UInt64: [() -> Void]] = [:]

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `callback` on the event loop after `delay`, at most a millisecond late and never early.
    /// There is no cancellation: callers check on firing whether they still care.
    func schedule(in delay: TimeAmount, _ callback: @escaping () -> Void) {
        self.eventLoop.assertInEventLoop()
        let deadline = NIODeadline.now() + delay
        let millisecond = deadline.uptimeNanoseconds / 1_000_000 + 1

        if self.due[millisecond] != nil {
            self.due[millisecond]!.append(callback)
            return
        }
        self.due[millisecond] = [callback]
        self.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(millisecond * 1_000_000)) {
            self.fire(millisecond)
        }
    }

    private func fire(_ millisecond: UInt64) {
        guard let callbacks = self.due.removeValue(forKey: millisecond) else { return }
        for callback in callbacks {
            callback()
        }
    }
}

/// The coalescing timer of each event loop of a group.
struct CoalescingTimers: Sendable {
    private let timers: [ObjectIdentifier: CoalescingTimer]

    init(group: any EventLoopGroup) {
        var timers: [ObjectIdentifier: CoalescingTimer] = [:]
        for eventLoop in group.makeIterator() {
            timers[ObjectIdentifier(eventLoop)] = CoalescingTimer(eventLoop: eventLoop)
        }
        self.timers = timers
    }

    /// The timer of `eventLoop`, which must belong to the group.
    func timer(for eventLoop: any EventLoop) -> CoalescingTimer {
        guard let timer = self.timers[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("\(eventLoop) is not part of the mock upstream's event loop group")
        }
        return timer
    }
}
