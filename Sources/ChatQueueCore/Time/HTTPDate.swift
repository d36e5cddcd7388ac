/// IMF-fixdate (RFC 9110 section 5.6.7), the only form `Retry-After` dates take in practice:
/// "Sun, 06 Nov 1994 08:49:37 GMT". Fields are checked (years 1...9999, real
/// calendar days, hour < 24, minute < 60, second < 61), so the arithmetic can't overflow.
public enum HTTPDate {
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Unix seconds, or nil when `text` is not a valid IMF-fixdate.
    public static func parse(_ text: String) -> Double? {
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0].count == 4, parts[0].hasSuffix(","), parts[5] == "GMT",
            let day = number(parts[1], digits: 2), let year = number(parts[3], digits: 4),
            let monthIndex = months.firstIndex(where: { $0 == parts[2] })
        else { return nil }
        let time = parts[4].split(separator: ":", omittingEmptySubsequences: false)
        guard time.count == 3, let hour = number(time[0], digits: 2), let minute = number(time[1], digits: 2),
            let second = number(time[2], digits: 2)
        else { return nil }
        let month = Int64(monthIndex + 1)
        guard year >= 1, day >= 1, day <= RFC3339.daysIn(month: month, year: year), hour < 24, minute < 60, second < 61
        else { return nil }
        let days = RFC3339.daysFromCivil(year: year, month: month, day: day)
        return Double(days * 86_400 + hour * 3600 + minute * 60 + min(second, 59))
    }

    /// Exactly `digits` ASCII digits (so at most 9999 for four).
    private static func number(_ text: Substring, digits: Int) -> Int64? {
        guard text.utf8.count == digits else { return nil }
        var value: Int64 = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }
}
