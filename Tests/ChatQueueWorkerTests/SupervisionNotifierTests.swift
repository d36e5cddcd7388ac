import Testing

@testable import ChatQueueWorker

#if canImport(Glibc)
import Glibc
#endif

@Suite("Supervision: systemd notifications")
struct SupervisionNotifierTests {
    @Test("no NOTIFY_SOCKET, or an unusable one: no notifier")
    func absent() {
        #expect(SystemdNotifier(environment: [:]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": ""]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "relative/path"]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "@"]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "/" + String(repeating: "x", count: 200)]) == nil)
    }

    @Test("datagrams reach a socket bound at a path")
    func pathSocket() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let receiver = try DatagramReceiver(notifySocket: directory.file("notify"))
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": receiver.notifySocket]))
        #expect(notifier.socketPath == receiver.notifySocket)

        notifier.ready()
        #expect(receiver.receive() == "READY=1")
        notifier.status("consuming chat.requests\n32 slots")
        #expect(receiver.receive() == "STATUS=consuming chat.requests 32 slots")
        notifier.watchdog()
        #expect(receiver.receive() == "WATCHDOG=1")
        notifier.stopping(status: "draining 3 requests")
        #expect(receiver.receive() == "STOPPING=1\nSTATUS=draining 3 requests")
        notifier.ready(status: "running")
        #expect(receiver.receive() == "READY=1\nSTATUS=running")
    }

    @Test("datagrams reach an abstract socket (@name)")
    func abstractSocket() throws {
        let name = "@chatqueue-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let receiver = try DatagramReceiver(notifySocket: name)
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": name]))
        notifier.notify(SystemdNotifier.Message.ready)
        #expect(receiver.receive() == "READY=1")
        notifier.notify(SystemdNotifier.Message.watchdog)
        #expect(receiver.receive() == "WATCHDOG=1")
    }

    @Test("a missing socket or a full queue neither blocks nor fails")
    func neverBlocks() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let gone = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": directory.file("nobody")]))
        gone.ready()

        let receiver = try DatagramReceiver(notifySocket: directory.file("full"))
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": receiver.notifySocket]))
        // Nobody reads: the receive queue fills up (a few hundred datagrams) and later sends are dropped.
        for _ in 0..<5000 { notifier.watchdog() }
        #expect(receiver.receive() == "WATCHDOG=1")
    }

    @Test("watchdog interval: half of WATCHDOG_USEC, for this pid only")
    func watchdogInterval() throws {
        let socket = ["NOTIFY_SOCKET": "/run/systemd/notify"]
        func interval(_ extra: [String: String], pid: Int32 = 77) -> UInt64? {
            SystemdNotifier(environment: socket.merging(extra) { $1 }, processID: pid)?.watchdogInterval
        }
        #expect(interval([:]) == nil)
        #expect(interval(["WATCHDOG_USEC": "30000000"]) == 15_000_000_000)
        #expect(interval(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "77"]) == 15_000_000_000)
        #expect(interval(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "78"]) == nil)
        #expect(interval(["WATCHDOG_USEC": "0"]) == nil)
        #expect(interval(["WATCHDOG_USEC": "soon"]) == nil)
        #expect(interval(["WATCHDOG_USEC": "-5"]) == nil)
        #expect(interval(["WATCHDOG_USEC": "1"]) == 500)
        #expect(
            SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "18446744073709551615"], processID: 1)
                == UInt64.max / 2)
        // The default pid is this process.
        let own = SystemdNotifier(
            environment: socket.merging(["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "\(getpid())"]) { $1 })
        #expect(own?.watchdogInterval == 1_000_000_000)
    }
}
