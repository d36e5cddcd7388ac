import ChatQueueCore
import FuzzSupport

runLibFuzzer(fuzzRetryAfter)

/// An upstream's `retry-after-ms` / `Retry-After` values (seconds or an HTTP
/// date) into a wait: never a trap, never a negative or non-finite wait, and
/// the backoff built on it stays within the policy.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzRetryAfter(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let text = String(decoding: input.takeRest(), as: UTF8.self)
    let now = 1_700_000_000.0

    if let date = HTTPDate.parse(text) {
        fuzzCheck(date.isFinite, "HTTP date \(text) is \(date)")
    }
    let seconds = RetryBackoff.retryAfterSeconds(
        milliseconds: mode & 1 == 0 ? nil : text, header: mode & 1 == 0 ? text : nil, nowUnixSeconds: now)
    if let seconds {
        fuzzCheck(seconds.isFinite && seconds >= 0, "Retry-After \(text) gave \(seconds)")
    }
    let hint = RetryBackoff.retryAfterHint(
        milliseconds: mode & 1 == 0 ? nil : text, header: mode & 1 == 0 ? text : nil, nowUnixSeconds: now)
    switch hint {
    case .absent: fuzzCheck(false, "a present header read as absent")
    case .seconds(let value): fuzzCheck(value == seconds, "hint \(value) but retryAfterSeconds \(String(describing: seconds))")
    case .ignored: fuzzCheck(seconds == nil, "ignored hint but retryAfterSeconds \(String(describing: seconds))")
    }
    let policy = RetryBackoff()
    if let wait = policy.delay(
        triesMade: Int(mode >> 1) + 1, retryAfter: seconds, secondsLeft: 120, random: Double(mode) / 256)
    {
        fuzzCheck(wait >= 0 && wait < 120, "wait \(wait)")
        fuzzCheck(wait <= max(policy.maxDelay, policy.maxRetryAfter), "wait \(wait) above the policy's caps")
    }
    return 0
}
