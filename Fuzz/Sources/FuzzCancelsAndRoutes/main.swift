import ChatQueueCore
import FuzzSupport

runLibFuzzer(fuzzCancelsAndRoutes)

/// The ways in that issues 11 and 12 added: a cancel message's body, the
/// remembered cancels, a request's model as a metric label, a route's model
/// pattern (configuration) against a model (request body), and the model
/// rename of a body. Never a trap; every answer checked against a reference.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzCancelsAndRoutes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let pattern = String(decoding: input.field(until: 0), as: UTF8.self)
    let model = String(decoding: input.field(until: 0), as: UTF8.self)
    let body = Array(input.takeRest())

    // A cancel message: bounded, and the body a requester writes reads back to its id.
    let contentType: String? = mode & 1 == 0 ? "application/json" : (mode & 2 == 0 ? nil : pattern)
    switch CancelMessage.requestID(body: body, bodySize: UInt64(body.count), contentType: contentType) {
    case .success(let id):
        fuzzCheck(!id.isEmpty && id.utf8.count <= CancelMessage.maxRequestIDBytes, "request id \(id.utf8.count) bytes")
        fuzzCheck(body.count <= CancelMessage.maxBodyBytes, "a \(body.count)-byte cancel accepted")
    case .failure:
        break
    }
    if !model.isEmpty, model.utf8.count <= CancelMessage.maxRequestIDBytes {
        let written = CancelMessage.body(requestID: model)
        let read = CancelMessage.requestID(body: written, bodySize: UInt64(written.count), contentType: "application/json")
        fuzzCheck(read == .success(model), "the cancel of \(model) reads back as \(read)")
    }

    // Remembered cancels: bounded by capacity, found until their lifetime ends.
    var pending = PendingCancels(lifetime: 1_000, capacity: Int(mode >> 4))
    let now = Deadline(nanoseconds: UInt64(mode) << 20)
    for id in [pattern, model, pattern] where !id.isEmpty { _ = pending.remember(id, now: now) }
    fuzzCheck(pending.count <= pending.capacity, "\(pending.count) cancels remembered, capacity \(pending.capacity)")
    if pending.capacity >= 2, !model.isEmpty {
        fuzzCheck(pending.contains(model, now: now), "a remembered cancel was forgotten at once")
        fuzzCheck(!pending.contains(model, now: now + 1_000), "a cancel outlived its lifetime")
    }

    // A model as a label: itself when short and plain, else `other`.
    let label = ModelLabels.bounded(model)
    fuzzCheck(
        label == ModelLabels.other || (label == model && model.utf8.count <= ModelLabels.maxLength),
        "model label \(label) for \(model)")

    // A route's pattern against a model: as a plain glob where `*` is the only wildcard.
    if let compiled = try? ModelPattern(pattern) {
        fuzzCheck(
            compiled.matches(model) == globMatches(Array(pattern.utf8), Array(model.utf8)),
            "pattern \(pattern) on \(model)")
    }

    // The rename: only the top-level model changes.
    if let renamed = ModelRename.body(body, withModel: model) {
        guard case .object(let before)? = try? JSONValue(parsing: body),
            case .object(let after)? = try? JSONValue(parsing: renamed)
        else {
            fuzzCheck(false, "a rename of a non-object, or to a non-object")
            return 0
        }
        if before["model"] != nil { fuzzCheck(after["model"] == .string(model), "the model was not renamed") }
        for (key, _) in before where key != "model" {
            fuzzCheck(after[key] == before[key], "member \(key) changed by the rename")
        }
    }
    return 0
}

/// The reference: dynamic programming over pattern and model bytes.
func globMatches(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
    var row = [Bool](repeating: false, count: text.count + 1)
    row[0] = true
    for byte in pattern {
        var next = [Bool](repeating: false, count: text.count + 1)
        if byte == UInt8(ascii: "*") {
            var any = false
            for index in 0...text.count {
                any = any || row[index]
                next[index] = any
            }
        } else {
            for index in 0..<text.count where row[index] && text[index] == byte { next[index + 1] = true }
        }
        row = next
    }
    return row[text.count]
}
