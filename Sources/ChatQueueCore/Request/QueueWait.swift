/// How long a request waited between its publisher and the worker, from
/// the AMQP `timestamp` property. Pure; the value comes from outside.
public enum QueueWait {
    /// Timestamps above this are read as Unix milliseconds: as seconds they
    /// would lie after the year 5138, and some clients (pika users, JavaScript
    /// `Date.now()`) put milliseconds there although AMQP says seconds.
    static let millisecondsThreshold: UInt64 = 100_000_000_000

    /// A clock ahead of the worker's by up to this much reads as no wait at all.
    static let toleratedSkewMilliseconds: Int64 = 60_000

    /// Seconds from `timestamp` to `nowUnixMilliseconds`, or nil when the
    /// timestamp tells nothing: 0, beyond Int64 milliseconds, or more than
    /// a minute in the future (a wrong clock or a forged value). A timestamp
    /// in seconds has second precision, so its wait can be up to 1 s short.
    public static func seconds(timestamp: UInt64, nowUnixMilliseconds: Int64) -> Double? {
        guard timestamp > 0 else { return nil }
        let milliseconds: UInt64
        if timestamp > millisecondsThreshold {
            milliseconds = timestamp
        } else {
            milliseconds = timestamp * 1000  // at most 10^14: cannot overflow
        }
        guard milliseconds <= UInt64(Int64.max) else { return nil }
        let (wait, overflow) = nowUnixMilliseconds.subtractingReportingOverflow(Int64(milliseconds))
        guard !overflow, wait >= -toleratedSkewMilliseconds else { return nil }
        return Double(max(0, wait)) / 1000
    }
}
