import ChatQueueSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Parsing of the Linux /proc files the benchmark samples. The parsers are
/// pure (text in, numbers out) and unit-tested; the readers are thin.
public enum ProcFS {
    /// USER_HZ: the unit of the tick counts in /proc/<pid>/stat and /proc/stat.
    public static var clockTicksPerSecond: Double {
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return ticks > 0 ? Double(ticks) : 100
    }

    /// utime + stime (fields 14 and 15) of a /proc/<pid>/stat line, in ticks.
    /// The command name (field 2) is in parentheses and may itself hold spaces
    /// or parentheses, so fields are counted after the last ')'.
    public static func cpuTicks(statLine: String) -> UInt64? {
        cpuTicksSplit(statLine: statLine).map { $0.user + $0.system }
    }

    /// utime and stime apart: user space and kernel (system calls, page faults).
    public static func cpuTicksSplit(statLine: String) -> (user: UInt64, system: UInt64)? {
        guard let close = statLine.lastIndex(of: ")") else { return nil }
        let fields = statLine[statLine.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // fields[0] is field 3 (state), so field n is fields[n - 3].
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        return (user, system)
    }

    /// A "Name:   123 kB" line of /proc/<pid>/status (VmHWM, VmRSS, ...), in kB.
    public static func statusKilobytes(_ status: String, field: String) -> Int? {
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            let parts = line.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" })
            return parts.first.flatMap { Int($0) }
        }
        return nil
    }

    /// Busy ticks of all CPUs together (user, nice, system, irq, softirq,
    /// steal) from the first line of /proc/stat.
    public static func machineBusyTicks(procStat: String) -> UInt64? {
        guard let line = procStat.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
        let values = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().compactMap { UInt64($0) }
        guard values.count >= 8 else { return nil }
        // user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
        return values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
    }

    /// Inodes of the sockets listening on `port` in a /proc/net/tcp or tcp6 table.
    public static func listeningSocketInodes(procNetTCP: String, port: Int) -> Set<UInt64> {
        var inodes: Set<UInt64> = []
        for line in procNetTCP.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            guard fields.count > 9, fields[3] == "0A",  // TCP_LISTEN
                let colon = fields[1].lastIndex(of: ":"),
                Int(fields[1][fields[1].index(after: colon)...], radix: 16) == port,
                let inode = UInt64(fields[9])
            else { continue }
            inodes.insert(inode)
        }
        return inodes
    }

    /// The first line of /proc/loadavg's three averages, e.g. "1.52 1.20 0.98".
    public static func loadAverage(_ text: String) -> String {
        text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    // MARK: - Readers

    /// A /proc file's text (their size reads as 0, so read to EOF); nil when it can't be read
    /// (the process is gone). /proc files of interest are far below the 4 MiB bound.
    public static func read(_ path: String) -> String? {
        guard let bytes = try? FileIO.read(path, limit: 4 << 20) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func cpuTicksSplit(pid: Int32) -> (user: UInt64, system: UInt64)? {
        read("/proc/\(pid)/stat").flatMap { cpuTicksSplit(statLine: $0) }
    }

    public static func status(pid: Int32) -> String? { read("/proc/\(pid)/status") }

    public static func machineBusyTicks() -> UInt64? { read("/proc/stat").flatMap { machineBusyTicks(procStat: $0) } }

    public static func loadAverage() -> String? { read("/proc/loadavg").map { loadAverage($0) } }

    /// The process holding a socket that listens on `port` (the local broker:
    /// there may be other beam.smp processes, such as rabbitmqctl's). Needs
    /// permission to read other processes' /proc/<pid>/fd (same user or root).
    public static func pidListening(onPort port: Int) -> Int32? {
        var inodes: Set<UInt64> = []
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            if let text = read(table) { inodes.formUnion(listeningSocketInodes(procNetTCP: text, port: port)) }
        }
        guard !inodes.isEmpty else { return nil }
        let wanted = Set(inodes.map { "socket:[\($0)]" })
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
        // Brokers first, so the scan is short when it is one.
        let ordered = pids.filter { command(pid: $0) == "beam.smp" } + pids.filter { command(pid: $0) != "beam.smp" }
        var target = [CChar](repeating: 0, count: 256)
        for pid in ordered {
            let directory = "/proc/\(pid)/fd"
            guard let descriptors = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for descriptor in descriptors {
                let length = readlink("\(directory)/\(descriptor)", &target, target.count - 1)
                guard length > 0 else { continue }
                let link = String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if wanted.contains(link) { return pid }
            }
        }
        return nil
    }

    /// /proc/<pid>/comm without its newline.
    public static func command(pid: Int32) -> String? {
        read("/proc/\(pid)/comm").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }
}

/// CPU and memory of one process over a run.
public struct ProcessUsage: Sendable, Equatable {
    /// worker, broker, upstream or generator.
    public var role: String
    public var pid: Int32
    /// user + system CPU time over the run.
    public var cpuSeconds: Double
    /// The system (kernel) part of `cpuSeconds`.
    public var systemCPUSeconds: Double?
    /// VmHWM at the end of the run: the process's peak resident memory so far.
    public var peakRSSKilobytes: Int?
    /// VmRSS at the end of the run.
    public var rssKilobytes: Int?
    /// RssAnon at the end of the run: the process's own memory, without the
    /// shared libraries' pages that VmRSS also counts.
    public var anonymousRSSKilobytes: Int?

    public init(
        role: String, pid: Int32, cpuSeconds: Double, systemCPUSeconds: Double? = nil, peakRSSKilobytes: Int? = nil,
        rssKilobytes: Int? = nil, anonymousRSSKilobytes: Int? = nil
    ) {
        self.role = role
        self.pid = pid
        self.cpuSeconds = cpuSeconds
        self.systemCPUSeconds = systemCPUSeconds
        self.peakRSSKilobytes = peakRSSKilobytes
        self.rssKilobytes = rssKilobytes
        self.anonymousRSSKilobytes = anonymousRSSKilobytes
    }
}

/// Samples the processes of a run at its start and end: CPU ticks of each,
/// the machine's busy ticks (to tell how much else ran), and memory at the end.
public struct ResourceSampler: Sendable {
    public struct Watched: Sendable {
        public var role: String
        public var pid: Int32

        public init(role: String, pid: Int32) {
            self.role = role
            self.pid = pid
        }
    }

    public struct Snapshot: Sendable {
        var ticks: [(user: UInt64, system: UInt64)?]
        var machineBusyTicks: UInt64?
        public var loadAverage: String?
    }

    public let watched: [Watched]
    private let ticksPerSecond = ProcFS.clockTicksPerSecond

    /// The generator itself is always watched, as "generator".
    public init(watching processes: [Watched]) {
        watched = processes + [Watched(role: "generator", pid: getpid())]
    }

    public func snapshot() -> Snapshot {
        Snapshot(
            ticks: watched.map { ProcFS.cpuTicksSplit(pid: $0.pid) }, machineBusyTicks: ProcFS.machineBusyTicks(),
            loadAverage: ProcFS.loadAverage())
    }

    /// Usage of every watched process between two snapshots (processes that
    /// could not be read are left out), and the CPU seconds the whole machine
    /// spent busy meanwhile.
    public func usage(from start: Snapshot, to end: Snapshot) -> (processes: [ProcessUsage], machineBusySeconds: Double?) {
        var result: [ProcessUsage] = []
        for (index, process) in watched.enumerated() {
            guard let before = start.ticks[index], let after = end.ticks[index] else { continue }
            let status = ProcFS.status(pid: process.pid)
            let user = after.user &- before.user
            let system = after.system &- before.system
            result.append(
                ProcessUsage(
                    role: process.role, pid: process.pid, cpuSeconds: Double(user &+ system) / ticksPerSecond,
                    systemCPUSeconds: Double(system) / ticksPerSecond,
                    peakRSSKilobytes: status.flatMap { ProcFS.statusKilobytes($0, field: "VmHWM") },
                    rssKilobytes: status.flatMap { ProcFS.statusKilobytes($0, field: "VmRSS") },
                    anonymousRSSKilobytes: status.flatMap { ProcFS.statusKilobytes($0, field: "RssAnon") }))
        }
        var busy: Double?
        if let before = start.machineBusyTicks, let after = end.machineBusyTicks {
            busy = Double(after &- before) / ticksPerSecond
        }
        return (result, busy)
    }
}
