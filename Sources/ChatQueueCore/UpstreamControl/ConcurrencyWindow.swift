/// One upstream's concurrency window: how many tries may run at once, found
/// by additive increase, multiplicative decrease (AIMD, as TCP finds a
/// path's capacity). Pure.
///
/// Each answered try widens the window by 1/limit (about one per window's
/// worth of answers); an overload signal (HTTP 429 or 503, or the upstream's
/// `x-ratelimit-remaining-*` at zero) narrows it to `decrease` of itself,
/// at most once per round: tries that started before the last decrease do
/// not narrow it again, so one burst of 429s counts once. The limit stays
/// within 1...maximum. Not adaptive, the window is `maximum` always.
///
/// Several workers against one provider converge without talking to each
/// other, as TCP flows share a link: each backs off when the provider says
/// it is overloaded and probes upwards slowly while it is not.
public struct ConcurrencyWindow: Sendable, Equatable {
    /// What a try's end says about the upstream's capacity.
    public enum Signal: Sendable, Equatable {
        /// It answered within its capacity.
        case answered
        /// It said it is over its limit.
        case overloaded
        /// Nothing about capacity (a connection error, a stopped try).
        case none
    }

    /// The share of itself the window keeps on an overload.
    public static let decrease = 0.7

    public let maximum: Int
    public let adaptive: Bool
    /// The window, in 1...maximum.
    public private(set) var limit: Double
    public private(set) var inFlight = 0
    /// Decreases so far; a try remembers the round it started in.
    public private(set) var round: UInt64 = 0
    /// Times it narrowed (metrics).
    public private(set) var decreases = 0

    public init(maximum: Int, adaptive: Bool) {
        self.maximum = max(1, maximum)
        self.adaptive = adaptive
        limit = Double(self.maximum)
    }

    /// The whole tries that may run at once now.
    public var size: Int { Int(limit) }

    /// Whether another try may start.
    public var hasRoom: Bool { inFlight < size }

    /// A try starts; returns its round, to be given back to `ended`.
    public mutating func started() -> UInt64 {
        inFlight += 1
        return round
    }

    /// A try that started in `startedRound` ended with `signal`.
    public mutating func ended(_ signal: Signal, startedRound: UInt64) {
        inFlight = max(0, inFlight - 1)
        guard adaptive else { return }
        switch signal {
        case .answered:
            limit = min(Double(maximum), limit + 1 / limit)
        case .overloaded:
            guard startedRound == round else { return }
            limit = max(1, limit * Self.decrease)
            round &+= 1
            decreases += 1
        case .none:
            break
        }
    }
}
