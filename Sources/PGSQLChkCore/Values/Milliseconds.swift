/// A duration in whole milliseconds, the precision of `poll()`.
struct Milliseconds: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// The count of milliseconds.
    var value: Int

    init(_ value: Int) {
        self.value = value
    }

    static func < (lhs: Milliseconds, rhs: Milliseconds) -> Bool {
        lhs.value < rhs.value
    }

    /// Seconds with up to three decimals and no trailing zeros: `1.5`, `2`,
    /// `0.25`, `-0.025`.
    var description: String {
        let sign = value < 0 ? "-" : ""
        let whole = value.magnitude / 1000
        var fraction = value.magnitude % 1000
        guard fraction != 0 else { return sign + String(whole) }
        var digits = 3
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        let padded = String(fraction)
        return sign + "\(whole)." + String(repeating: "0", count: digits - padded.count) + padded
    }

    /// Parses seconds written as a decimal number (`2`, `1.5`, `0.250`).
    ///
    /// Returns nil for anything else, including signs, exponents and more than
    /// millisecond precision, so a mistyped value is reported, not rounded.
    init?(seconds text: some StringProtocol) {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let wholeText = parts.first, !wholeText.isEmpty, wholeText.count <= 7,
              wholeText.allSatisfy(\.isASCIIDigit),
              let whole = Int(wholeText)
        else { return nil }
        var millis = 0
        if parts.count == 2 {
            let fractionText = parts[1]
            guard !fractionText.isEmpty, fractionText.count <= 3, fractionText.allSatisfy(\.isASCIIDigit) else { return nil }
            millis = Int(fractionText + String(repeating: "0", count: 3 - fractionText.count))!
        }
        self.init(whole * 1000 + millis)
    }

    /// Parses a duration: seconds by default, or with `ms`, `s` or `min`
    /// (`30`, `1.5s`, `500ms`, `2min`).
    init?(duration text: String) {
        let number = text.prefix { $0.isASCIIDigit || $0 == "." }
        switch text.dropFirst(number.count) {
        case "ms":
            guard !number.isEmpty, number.allSatisfy(\.isASCIIDigit), number.count <= 9, let value = Int(number) else { return nil }
            self.init(value)
        case "", "s":
            self.init(seconds: number)
        case "min":
            guard let seconds = Milliseconds(seconds: number) else { return nil }
            self.init(seconds.value * 60)
        default:
            return nil
        }
    }
}
