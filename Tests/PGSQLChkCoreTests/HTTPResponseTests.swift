import Testing
@testable import PGSQLChkCore

@Suite("HTTP response rendering")
struct HTTPResponseTests {
    @Test("responses are byte-exact HTTP/1.1 with a computed length", arguments: [
        (Verdict(status: .ok, body: "primary", exitStatus: 0),
         "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 8\r\nConnection: close\r\n\r\nprimary\n"),
        (Verdict(status: .partialContent, body: "standby", exitStatus: 1),
         "HTTP/1.1 206 Partial Content\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 8\r\nConnection: close\r\n\r\nstandby\n"),
        (Verdict(status: .serviceUnavailable, body: "too many connections", exitStatus: 2),
         "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n"),
    ])
    func rendering(verdict: Verdict, expected: String) {
        #expect(HTTPResponse.render(verdict) == Array(expected.utf8))
    }

    @Test("a verdict with a probed state names the role and timeline in headers; HEAD omits only the body")
    func headersAndHead() {
        let verdict = Verdict(status: .ok, body: "standby", exitStatus: 0, state: NodeState(inRecovery: true, timeline: 3))
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 8\r\n"
            + "X-PGSQLChk-Role: standby\r\nX-PGSQLChk-Timeline: 3\r\nConnection: close\r\n\r\n"
        #expect(HTTPResponse.render(verdict) == Array((head + "standby\n").utf8))
        #expect(HTTPResponse.render(verdict, omitsBody: true) == Array(head.utf8))
    }

    @Test("JSON answers say so, and 405 lists the allowed methods")
    func contentTypes() {
        let json = String(decoding: HTTPResponse.render(Verdict(unavailable: "x"), json: true), as: UTF8.self)
        #expect(json.contains("Content-Type: application/json\r\n"))
        #expect(json.hasSuffix("\r\n\r\n" + StatusDocument.json(of: Verdict(unavailable: "x")) + "\n"))
        let refused = String(decoding: HTTPResponse.render(Verdict(refusing: RequestError(.methodNotAllowed, "no"))), as: UTF8.self)
        #expect(refused.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
        #expect(refused.contains("Allow: GET, HEAD, OPTIONS\r\n"))
    }

    @Test("Content-Length counts bytes, not characters")
    func multibyteLength() {
        let rendered = String(decoding: HTTPResponse.render(Verdict(unavailable: "réplica")), as: UTF8.self)
        #expect(rendered.contains("Content-Length: 9\r\n"))
    }
}

@Suite("Request ends")
struct RequestEndTests {
    @Test("a head is complete once a blank line arrives", arguments: [
        ("OPTIONS / HTTP/1.0\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", true),
        ("GET /\n\n", true),
        ("GET / HTTP/1.1\r\nHost: x\r\n", false),
        ("GET / HTTP/1.1\r\n\r", false),
        ("", false),
    ])
    func completeness(text: String, complete: Bool) {
        #expect(RequestEnd.isHTTPHeadComplete(Array(text.utf8)) == complete)
    }

    @Test("an agent-send line ends at its newline", arguments: [("lag=16MB\n", true), ("lag=16MB", false), ("", false)])
    func agentLine(text: String, complete: Bool) {
        #expect(RequestEnd.isLineComplete(Array(text.utf8)) == complete)
    }
}

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
