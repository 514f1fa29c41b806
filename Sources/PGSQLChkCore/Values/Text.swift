/// Small text helpers the check path needs without Foundation.

extension Character {
    var isASCIIDigit: Bool { isASCII && isWholeNumber }
}

extension StringProtocol {
    /// The index just past the first occurrence of `marker`, if any.
    func indexAfter(_ marker: String) -> Index? {
        var start = startIndex
        while start < endIndex {
            if self[start...].hasPrefix(marker) {
                return index(start, offsetBy: marker.count)
            }
            start = index(after: start)
        }
        return nil
    }

    /// Whether `marker` occurs anywhere (without Foundation's `contains`).
    func containsText(_ marker: String) -> Bool {
        indexAfter(marker) != nil
    }
}

enum Text {
    /// Quotes text from a peer or a user for a reason line, keeping it short
    /// and printable: anything outside printable ASCII becomes `?`.
    static func quoted(_ text: some StringProtocol) -> String {
        let visible = text.unicodeScalars.prefix(64).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7f ? Character($0) : "?" }
        return "\"" + String(visible) + (text.unicodeScalars.count > 64 ? "...\"" : "\"")
    }

    /// One line of at most 2,000 characters from a multi-line message (libpq's).
    static func oneLine(_ message: String) -> String {
        String(message.split(whereSeparator: \.isNewline).joined(separator: " ").prefix(2_000))
    }

    /// `a, b, c or d`.
    static func alternatives(_ words: [String]) -> String {
        guard let last = words.last, words.count > 1 else { return words.first ?? "" }
        return words.dropLast().joined(separator: ", ") + " or " + last
    }

    /// Decodes RFC 3986 percent-encoding once; nil when a `%` is not followed
    /// by two hex digits, or the bytes are not UTF-8.
    static func percentDecoded(_ text: some StringProtocol) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
