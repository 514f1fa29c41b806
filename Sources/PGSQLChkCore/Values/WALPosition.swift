/// A WAL position (`pg_lsn`) as PostgreSQL prints it, `16/B374D848`: the
/// high and low 32 bits of a byte offset into the WAL, in hexadecimal.
struct WALPosition: Equatable, Sendable {
    var offset: UInt64

    /// nil unless `text` is `HEX/HEX` with each half at most 32 bits.
    init?(_ text: String) {
        let halves = text.split(separator: "/", omittingEmptySubsequences: false)
        guard halves.count == 2, halves.allSatisfy({ (1...8).contains($0.count) && $0.allSatisfy(\.isHexDigit) }),
              let high = UInt64(halves[0], radix: 16), let low = UInt64(halves[1], radix: 16)
        else { return nil }
        offset = high << 32 | low
    }

    /// Bytes from `earlier` up to this position; zero when `earlier` is not
    /// earlier (read a moment later than this one, it may have moved on).
    func bytes(after earlier: WALPosition) -> Int64 {
        offset > earlier.offset ? Int64(clamping: offset - earlier.offset) : 0
    }
}
