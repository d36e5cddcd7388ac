#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex with one condition variable, for the few places where a
/// second thread takes work from the event loop (the span exporter). The
/// condition waits on the monotonic clock, so a wall-clock jump can't stretch
/// or cut a timed wait. The owner of the data it guards is the caller.
public final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        // Both fail only for bad attributes or without memory for the objects: fatal.
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init")
        var attributes = pthread_condattr_t()
        precondition(pthread_condattr_init(&attributes) == 0, "pthread_condattr_init")
        precondition(pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC) == 0, "pthread_condattr_setclock")
        precondition(pthread_cond_init(condition, &attributes) == 0, "pthread_cond_init")
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }

    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Wakes every waiter (callers hold the lock, and waiters recheck what they wait for).
    public func broadcast() { pthread_cond_broadcast(condition) }

    /// With the lock held: sleeps until woken, or until the monotonic clock
    /// reaches `monotonicNanoseconds` (nil: no limit). May return early
    /// (spurious wake-ups): callers loop on their own condition.
    public func wait(untilMonotonicNanoseconds deadline: UInt64? = nil) {
        guard let deadline else {
            pthread_cond_wait(condition, mutex)
            return
        }
        var time = timespec()
        time.tv_sec = Int(clamping: deadline / 1_000_000_000)
        time.tv_nsec = Int(deadline % 1_000_000_000)
        _ = pthread_cond_timedwait(condition, mutex, &time)  // ETIMEDOUT is the expected end
    }
}

/// Threads besides the event loop.
public enum SystemThread {
    /// Starts a detached thread running `body`. Throws when the system has
    /// no room for another thread (EAGAIN) or its stack (ENOMEM); `name` is
    /// for that error.
    public static func detach(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
        let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var thread = pthread_t()
        let code = pthread_create(&thread, nil, { argument in
            guard let argument else { return nil }
            let started = Unmanaged<ThreadBody>.fromOpaque(argument).takeRetainedValue()
            started.body()
            return nil
        }, box)
        guard code == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            throw SystemError(call: "pthread_create \(name)", errno: code)
        }
        pthread_detach(thread)
    }

    private final class ThreadBody {
        let body: @Sendable () -> Void

        init(_ body: @escaping @Sendable () -> Void) {
            self.body = body
        }
    }
}
