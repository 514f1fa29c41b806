import Testing
@testable import PGSQLChkCore

@Suite("Deadline")
struct DeadlineTests {
    @Test("what is left rounds up to whole milliseconds and stops at zero", arguments: [
        (0, 1_500),
        (1_000_000, 1_499),
        (1_000_001, 1_499),
        (1_499_999_999, 1),
        (1_500_000_000, 0),
        (9_000_000_000, 0),
    ] as [(UInt64, Int)])
    func remaining(elapsed: UInt64, left: Int) {
        let start: UInt64 = 42_000_000_000
        let deadline = Deadline(after: Milliseconds(1_500), from: start)
        #expect(deadline.remaining(at: start + elapsed) == Milliseconds(left))
    }

    @Test("an earlier deadline never goes before the clock's start")
    func earlier() {
        let deadline = Deadline(after: Milliseconds(1_000), from: 0)
        #expect(deadline.earlier(by: Milliseconds(10)).remaining(at: 0) == Milliseconds(990))
        #expect(deadline.earlier(by: Milliseconds(5_000)).remaining(at: 0) == Milliseconds(0))
    }

    @Test("a cap shortens a wait but never lengthens it")
    func cap() {
        let deadline = Deadline(after: Milliseconds(1_000), from: 0)
        #expect(deadline.remaining(atMost: Milliseconds(200), at: 0) == Milliseconds(200))
        #expect(deadline.remaining(atMost: Milliseconds(200), at: 900_000_000) == Milliseconds(100))
    }
}
