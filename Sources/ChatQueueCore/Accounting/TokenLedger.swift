/// The token counts an upstream reported in a response's `usage` object.
public struct TokenUsage: Sendable, Equatable {
    public var prompt: Int
    public var completion: Int

    /// Negative counts (from a misbehaving upstream) read as 0.
    public init(prompt: Int, completion: Int) {
        self.prompt = max(0, prompt)
        self.completion = max(0, completion)
    }

    /// From a `usage` value as the upstream sent it: `prompt_tokens` and
    /// `completion_tokens`, each 0 when missing, not an integer or negative;
    /// nil unless `usage` is an object.
    public init?(usage: JSONValue) {
        guard usage.objectValue != nil else { return nil }
        self.init(
            prompt: usage["prompt_tokens"]?.integerValue ?? 0, completion: usage["completion_tokens"]?.integerValue ?? 0)
    }

    /// Prompt and completion tokens together (saturating: an upstream can report anything).
    public var total: Int { TokenLedger.saturatingAdd(prompt, completion) }
}

/// How an HTTP try ended, as the accounting of chunks without usage tells them apart.
public enum TryEnding: String, Sendable, CaseIterable, Comparable {
    /// The response ended normally (the upstream reported no usage: OpenAI
    /// without `stream_options.include_usage`).
    case completed
    /// The upstream ended it with a failure after chunks: a broken stream, an
    /// error event, a response over the size limit.
    case failed
    /// The worker stopped it: cancelled, the requester gone, a timeout, the
    /// shutdown grace over, the broker connection lost.
    case stopped

    /// A try that ran to its end: its outcome says which.
    public init(_ outcome: UpstreamResponse.Outcome) {
        switch outcome {
        case .completion: self = .completed
        case .failure: self = .failed
        }
    }

    public static func < (lhs: TryEnding, rhs: TryEnding) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Model names as metric labels. The model comes from the request body,
/// outside input, so its label values are bounded: a name of at most
/// ``maxLength`` bytes of `A-Z a-z 0-9 . _ - : / @ +` is its own label, up
/// to ``maxLabels`` distinct names per process (the first seen); any other
/// name, and every name after those, is ``other``.
public struct ModelLabels: Sendable, Equatable {
    public static let other = "other"
    public static let maxLabels = 32
    public static let maxLength = 64

    /// The names that have a label of their own, in the order they were first seen.
    public private(set) var known: [String] = []

    public init() {}

    /// `model` when its length and characters make an acceptable label, else ``other``.
    /// Pure; does not take one of the ``maxLabels`` places.
    public static func bounded(_ model: String) -> String {
        let bytes = model.utf8
        guard !bytes.isEmpty, bytes.count <= maxLength else { return other }
        // Over the contiguous bytes (every native string): a per-request check, kept cheap.
        let acceptable = bytes.withContiguousStorageIfAvailable { $0.allSatisfy(isLabelByte) } ?? bytes.allSatisfy(isLabelByte)
        return acceptable ? model : other
    }

    /// The label to count `model` under: its ``bounded(_:)`` form while there
    /// is room (or it already has a place), else ``other``.
    public mutating func label(for model: String) -> String {
        let candidate = Self.bounded(model)
        if candidate == Self.other || known.contains(candidate) { return candidate }
        guard known.count < Self.maxLabels else { return Self.other }
        known.append(candidate)
        return candidate
    }

    private static func isLabelByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "/"),
            UInt8(ascii: "@"), UInt8(ascii: "+"):
            return true
        default:
            return false
        }
    }
}

/// What the upstreams' answers cost, per upstream and model: the prompt and
/// completion tokens of their `usage`, and the chunks forwarded by tries that
/// reported none (spent, but not counted in tokens), by how the try ended.
/// Fed once per HTTP try; pure, every sum saturating (the numbers come from
/// the upstream). docs/operations.md, "Token accounting".
public struct TokenLedger: Sendable, Equatable {
    /// The label of the one upstream there is (`upstream.url`) until upstreams get names.
    public static let defaultUpstream = "default"

    public struct Key: Sendable, Hashable, Comparable {
        public var upstream: String
        public var model: String

        public init(upstream: String, model: String) {
            self.upstream = upstream
            self.model = model
        }

        public static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.upstream, lhs.model) < (rhs.upstream, rhs.model)
        }
    }

    public struct Account: Sendable, Equatable {
        public var promptTokens = 0
        public var completionTokens = 0
        /// Chunks forwarded by tries without usage, by how they ended.
        public var chunksWithoutUsage: [TryEnding: Int] = [:]

        public init() {}

        /// All chunks forwarded without usage, however their tries ended.
        public var totalChunksWithoutUsage: Int {
            chunksWithoutUsage.values.reduce(0, TokenLedger.saturatingAdd)
        }

        mutating func add(_ other: Account) {
            promptTokens = TokenLedger.saturatingAdd(promptTokens, other.promptTokens)
            completionTokens = TokenLedger.saturatingAdd(completionTokens, other.completionTokens)
            for (ending, chunks) in other.chunksWithoutUsage {
                chunksWithoutUsage[ending] = TokenLedger.saturatingAdd(chunksWithoutUsage[ending] ?? 0, chunks)
            }
        }
    }

    /// The accounts so far; a key appears once something was counted for it.
    public private(set) var accounts: [Key: Account] = [:]
    /// The model labels handed out (bounded: see ``ModelLabels``).
    public private(set) var models = ModelLabels()

    public init() {}

    /// One HTTP try ended. Its `usage` when the upstream reported one (the
    /// chunks are then paid for in tokens), else the `chunks` it forwarded
    /// under `ending`; a try with neither counts nothing. `model` is bounded
    /// here (``ModelLabels``).
    public mutating func record(
        upstream: String = defaultUpstream, model: String, usage: TokenUsage?, chunks: Int, ending: TryEnding
    ) {
        guard usage != nil || chunks > 0 else { return }
        let key = Key(upstream: upstream, model: models.label(for: model))
        // Mutated in place: one hash of the key per try.
        Self.add(usage: usage, chunks: chunks, ending: ending, to: &accounts[key, default: Account()])
    }

    /// The accounts ordered by upstream, then model (for stable output).
    public var sorted: [(key: Key, account: Account)] {
        accounts.sorted { $0.key < $1.key }.map { (key: $0.key, account: $0.value) }
    }

    /// Every account added up.
    public var total: Account {
        var total = Account()
        for account in accounts.values { total.add(account) }
        return total
    }

    static func saturatingAdd(_ total: Int, _ amount: Int) -> Int {
        let (sum, overflow) = total.addingReportingOverflow(max(0, amount))
        return overflow ? .max : sum
    }
}

extension TokenLedger {
    fileprivate static func add(usage: TokenUsage?, chunks: Int, ending: TryEnding, to account: inout Account) {
        if let usage {
            account.promptTokens.addSaturating(usage.prompt)
            account.completionTokens.addSaturating(usage.completion)
        } else {
            account.chunksWithoutUsage[ending, default: 0].addSaturating(chunks)
        }
    }
}

extension Int {
    /// `self += amount`, stopping at `Int.max` (counts from the upstream can be huge).
    fileprivate mutating func addSaturating(_ amount: Int) {
        self = TokenLedger.saturatingAdd(self, amount)
    }
}
