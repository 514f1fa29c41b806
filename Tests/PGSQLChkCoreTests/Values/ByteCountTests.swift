import Testing
@testable import PGSQLChkCore

@Suite("Byte counts")
struct ByteCountTests {
    @Test("byte counts take PostgreSQL's units, powers of 1024", arguments: [
        ("0", Int64(0)), ("1048576", 1 << 20), ("16kB", 16 << 10), ("16KB", 16 << 10), ("64MB", 64 << 20), ("1GB", 1 << 30),
        ("2TB", 2 << 40), ("100B", 100),
    ])
    func byteCounts(text: String, bytes: Int64) {
        #expect(ByteCount.parse(text) == bytes)
    }

    @Test("byte counts reject anything else", arguments: ["", "MB", "1.5MB", "-1", " 1", "1 MB", "99999999999999999999", "9999999999TB"])
    func badByteCounts(text: String) {
        #expect(ByteCount.parse(text) == nil)
    }

    @Test("byte counts print at a glance", arguments: [(Int64(100), "100 bytes"), (1536, "1.5 kB"), (48 << 20, "48 MB"), (3 << 30, "3 GB")])
    func describe(bytes: Int64, text: String) {
        #expect(ByteCount.describe(bytes) == text)
    }
}
