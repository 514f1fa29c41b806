/// Byte counts written as PostgreSQL writes memory sizes: `1048576`, `16kB`,
/// `64MB`, `1GB`, `1TB` (powers of 1024; unit letters in any case).
enum ByteCount {
    static let units: [(suffix: String, factor: Int64)] = [
        ("tb", 1 << 40), ("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10), ("b", 1),
    ]

    /// The byte count `text` spells, or nil: no sign, no fraction, no space
    /// before the unit, and nothing that overflows.
    static func parse(_ text: String) -> Int64? {
        let digits = text.prefix(while: \.isASCIIDigit)
        let unit = text.dropFirst(digits.count).lowercased()
        guard !digits.isEmpty, digits.count <= 15, let number = Int64(digits) else { return nil }
        if unit.isEmpty { return number }
        guard let factor = units.first(where: { $0.suffix == unit })?.factor else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: factor)
        return overflow ? nil : product
    }

    /// `48 MB`, `512 kB`, `100 bytes`: the largest unit that divides evenly
    /// enough to read at a glance (one decimal).
    static func describe(_ bytes: Int64) -> String {
        for (suffix, factor) in units where factor > 1 && bytes >= factor {
            let tenths = (bytes * 10 + factor / 2) / factor
            let label = suffix == "kb" ? "kB" : suffix.uppercased()
            return tenths % 10 == 0 ? "\(tenths / 10) \(label)" : "\(tenths / 10).\(tenths % 10) \(label)"
        }
        return "\(bytes) bytes"
    }
}
