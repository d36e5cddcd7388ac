// One event of a streamed reply, and how directives reshape the sequence.

enum StreamStep {
    case role(choice: Int)
    case reasoning(choice: Int, text: String)
    case content(choice: Int, text: String)
    case toolCallStart
    case toolArguments(String)
    case finish(choice: Int, usage: Bool)
    /// `data: {"error":…}` and then a clean end (directive `stream_error`).
    case streamError
    case done
    /// Close the connection without ending the chunked body (directive `drop_after`).
    case drop

    /// Steps counted by `drop_after` and `stream_error`: the answer itself, not role or reasoning.
    var isContent: Bool {
        switch self {
        case .content, .toolCallStart, .toolArguments: return true
        default: return false
        }
    }

    /// Whether the chunk interval is waited before this step. `[DONE]` and a drop
    /// follow the previous event at once, like a server that has nothing more to say.
    var isPaced: Bool {
        switch self {
        case .done, .drop: return false
        default: return true
        }
    }
}

extension Array where Element == StreamStep {
    /// Applies the directives that cut a stream short or change its ending.
    func shaped(by directives: MockDirectives) -> [StreamStep] {
        var steps = self
        if directives.streamError {
            steps = Array(steps[..<steps.position(afterContentEvents: 2)]) + [.streamError]
        }
        // A drop only matters if it comes before the stream error would have ended the stream.
        if let dropAfter = directives.dropAfter, !(directives.streamError && dropAfter >= 2) {
            return Array(steps[..<steps.position(afterContentEvents: dropAfter)]) + [.drop]
        }
        if !directives.streamError && !directives.noDone {
            steps.append(.done)
        }
        return steps
    }

    /// The index just past the `count`-th content step (or past the last one if there are
    /// fewer); for 0, the index of the first content step.
    private func position(afterContentEvents count: Int) -> Int {
        var seen = 0
        var position = self.firstIndex { $0.isContent } ?? self.firstIndex {
            if case .finish = $0 { return true } else { return false }
        } ?? self.endIndex
        for (index, step) in self.enumerated() where step.isContent {
            guard seen < count else { break }
            seen += 1
            position = index + 1
        }
        return position
    }
}
