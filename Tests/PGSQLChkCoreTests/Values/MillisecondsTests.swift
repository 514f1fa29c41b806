import Testing
@testable import PGSQLChkCore

@Suite("Milliseconds")
struct MillisecondsTests {
    @Test("seconds parse to milliseconds and print back without trailing zeros", arguments: [
        ("2", 2_000, "2"),
        ("1.5", 1_500, "1.5"),
        ("0.250", 250, "0.25"),
        ("0.001", 1, "0.001"),
        ("10.07", 10_070, "10.07"),
    ])
    func roundTrip(text: String, milliseconds: Int, printed: String) throws {
        let parsed = try #require(Milliseconds(seconds: text))
        #expect(parsed.value == milliseconds)
        #expect(parsed.description == printed)
    }

    @Test("negative durations print with their sign, never trap", arguments: [(-1, "-0.001"), (-25, "-0.025"), (-1_500, "-1.5"), (-2_000, "-2")])
    func negative(milliseconds: Int, printed: String) {
        #expect(Milliseconds(milliseconds).description == printed)
    }

    @Test("durations with units reject what they cannot read", arguments: ["", "s", "1h", "1.5ms", "-1s", "1 s", "1.2345s"])
    func badDurations(text: String) {
        #expect(Milliseconds(duration: text) == nil)
    }

    @Test("anything but plain decimal seconds is rejected", arguments: ["", ".5", "5.", "1e3", "+1", " 1", "1,5", "0x10", "1.2.3", "١"])
    func rejected(text: String) {
        #expect(Milliseconds(seconds: text) == nil)
    }

    @Test("durations take seconds, ms, s or min", arguments: [("30", 30_000), ("1.5s", 1_500), ("500ms", 500), ("2min", 120_000)])
    func durations(text: String, milliseconds: Int) {
        #expect(Milliseconds(duration: text) == Milliseconds(milliseconds))
    }
}
