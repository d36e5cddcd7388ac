// How the mock reads the fields of a request body (parsed by Core's
// JSONParser): numbers that tests write as 3 or 3.0 read alike, and a
// boolean never reads as a number.

import ChatQueueCore

extension JSONValue {
    /// A number with no fractional part, within ±1e15 (`3`, `3.0`, `3e0`);
    /// nil for other numbers and other kinds.
    var wholeNumber: Int? {
        guard let double = doubleValue, double.isFinite, double.rounded() == double, abs(double) < 1e15 else {
            return nil
        }
        return Int(double)
    }
}
