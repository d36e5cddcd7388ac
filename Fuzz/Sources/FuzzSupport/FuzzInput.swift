import CLibFuzzer
import Glibc

/// Runs libFuzzer with this process's arguments on `testOneInput` (each
/// target's `LLVMFuzzerTestOneInput`); call it from the target's top-level code.
public func runLibFuzzer(_ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
}

/// One fuzz input read front to back: the first bytes make the choices
/// (modes, chunk lengths), the rest is the data. Reading past the end yields
/// zeros, so every input is usable.
public struct FuzzInput {
    private var rest: UnsafeRawBufferPointer

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        rest = UnsafeRawBufferPointer(start: data, count: size)
    }

    /// The next byte, or 0 at the end.
    public mutating func byte() -> UInt8 {
        guard let first = rest.first else { return 0 }
        rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst())
        return first
    }

    /// Whether every byte has been read (event-sequence targets loop until then).
    public var isEmpty: Bool { rest.isEmpty }

    /// A flag from the next byte's low bit.
    public mutating func bool() -> Bool { byte() & 1 == 1 }

    /// A number in `range` from the next bytes (little-endian, as many as the range needs).
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(bitPattern: Int64(range.upperBound) &- Int64(range.lowerBound))
        var value: UInt64 = 0
        var covered: UInt64 = 0
        while covered < span {
            value = value << 8 | UInt64(byte())
            covered = covered << 8 | 0xFF
        }
        let offset = span == .max ? value : value % (span + 1)
        return range.lowerBound &+ Int(truncatingIfNeeded: offset)
    }

    /// One of `choices`, picked by the next byte(s); for event kinds and enum cases.
    public mutating func pick<T>(_ choices: [T]) -> T {
        choices[int(in: 0...(choices.count - 1))]
    }

    /// Bytes up to (not including) the next `separator`, which is consumed;
    /// everything left when there is none.
    public mutating func field(until separator: UInt8) -> UnsafeRawBufferPointer {
        let end = rest.firstIndex(of: separator) ?? rest.count
        let field = UnsafeRawBufferPointer(rebasing: rest[..<end])
        rest = UnsafeRawBufferPointer(rebasing: rest[min(end + 1, rest.count)...])
        return field
    }

    /// Chunk lengths for feeding the rest in pieces: one byte says how many
    /// cuts (up to 31), one byte per cut says how long the piece before it is
    /// (0 to 255, so empty feeds happen too).
    public mutating func chunkLengths() -> [Int] {
        let cuts = Int(byte() % 32)
        return (0..<cuts).map { _ in Int(byte()) }
    }

    /// What is left.
    public var remaining: UnsafeRawBufferPointer { rest }

    /// Takes everything left.
    public mutating func takeRest() -> UnsafeRawBufferPointer {
        let all = rest
        rest = UnsafeRawBufferPointer(rebasing: rest[rest.count...])
        return all
    }
}

/// `data` cut into consecutive pieces of `lengths` (clamped to what is
/// left), the last piece holding the rest.
public func chunks(of data: UnsafeRawBufferPointer, lengths: [Int]) -> [UnsafeRawBufferPointer] {
    var pieces: [UnsafeRawBufferPointer] = []
    var start = 0
    for length in lengths {
        let end = min(start + length, data.count)
        pieces.append(UnsafeRawBufferPointer(rebasing: data[start..<end]))
        start = end
    }
    pieces.append(UnsafeRawBufferPointer(rebasing: data[start...]))
    return pieces
}

/// A property the code under test must keep. Unlike `precondition`, it
/// says what broke in every build configuration, then aborts so libFuzzer
/// records the input as a crash.
public func fuzzCheck(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    guard !condition() else { return }
    let text = "fuzzCheck failed at \(file):\(line): \(message())\n"
    var bytes = Array(text.utf8)
    _ = write(2, &bytes, bytes.count)
    abort()
}
