import Testing
@testable import PGSQLChkCore

@Suite("HTTP response rendering")
struct HTTPResponseTests {
    @Test("responses are byte-exact HTTP/1.1 with a computed length", arguments: [
        (Verdict(answer: .serves(weight: 100), body: "primary"),
         "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 8\r\nConnection: close\r\n\r\nprimary\n"),
        (Verdict(answer: .servesReads(weight: 100), body: "standby"),
         "HTTP/1.1 206 Partial Content\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 8\r\nConnection: close\r\n\r\nstandby\n"),
        (Verdict(answer: .unavailable, body: "too many connections"),
         "HTTP/1.1 503 too many connections\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n"),
    ])
    func rendering(verdict: Verdict, expected: String) {
        #expect(HTTPResponse.render(verdict) == Array(expected.utf8))
    }

    @Test("a verdict with a probed state names the role and timeline in headers; HEAD omits only the body")
    func headersAndHead() {
        let verdict = Verdict(answer: .serves(weight: 100), body: "standby", state: NodeState(inRecovery: true, timeline: 3))
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 8\r\n"
            + "X-PGSQLChk-Role: standby\r\nX-PGSQLChk-Timeline: 3\r\nConnection: close\r\n\r\n"
        #expect(HTTPResponse.render(verdict) == Array((head + "standby\n").utf8))
        #expect(HTTPResponse.render(verdict, omitsBody: true) == Array(head.utf8))
    }

    @Test("JSON answers say so, and 405 lists the allowed methods")
    func contentTypes() {
        let json = String(decoding: HTTPResponse.render(Verdict(unavailable: "x"), format: .json), as: UTF8.self)
        #expect(json.contains("Content-Type: application/json\r\n"))
        #expect(json.contains("\r\n\r\n{\"status\": 503, \"role\": \"unknown\","))
        #expect(json.hasSuffix("\"reason\": \"x\"}\n"))
        let refused = String(decoding: HTTPResponse.render(Verdict(refusing: .methodNotAllowed(method: "PUT"))), as: UTF8.self)
        #expect(refused.hasPrefix("HTTP/1.1 405 method \"PUT\" not allowed; use GET, HEAD or OPTIONS\r\n"))
        #expect(refused.contains("Allow: GET, HEAD, OPTIONS\r\n"))
    }

    @Test("Content-Length counts bytes, not characters")
    func multibyteLength() {
        let rendered = String(decoding: HTTPResponse.render(Verdict(unavailable: "réplica")), as: UTF8.self)
        #expect(rendered.contains("Content-Length: 9\r\n"))
    }

    @Test("a request that did not arrive in time is a 408")
    func requestTimeout() {
        let rendered = String(decoding: HTTPResponse.render(Verdict(refusing: .requestTimeout)), as: UTF8.self)
        #expect(rendered.hasPrefix("HTTP/1.1 408 \(RequestError.requestTimeout.reason)\r\n"))
    }

    static let longReason = "could not connect: " + String(repeating: "x", count: 200)

    @Test("200 and 206 keep RFC 9110's reason phrase; any other status carries the reason, printable ASCII, at most 127 bytes, for HAProxy's log", arguments: [
        (Verdict(answer: .serves(weight: 100), body: "primary"), "OK"),
        (Verdict(answer: .servesReads(weight: 100), body: "standby"), "Partial Content"),
        (Verdict(unavailable: "replication lag 48 MB exceeds maximum 16 MB"), "replication lag 48 MB exceeds maximum 16 MB"),
        (Verdict(answer: .drained, body: "maintenance"), "maintenance"),
        (Verdict(refusing: .notASCII), "request is not ASCII"),
        (Verdict(unavailable: "r\u{e9}plica\r\nX-Injected: 1\tend"), "r?plica??X-Injected: 1?end"),
        (Verdict(unavailable: longReason), String(longReason.prefix(124)) + "..."),
        (Verdict(unavailable: String(longReason.prefix(127))), String(longReason.prefix(127))),
        (Verdict(unavailable: ""), "Service Unavailable"),
    ])
    func reasonPhrase(verdict: Verdict, phrase: String) {
        let statusLine = String(decoding: HTTPResponse.render(verdict), as: UTF8.self).split(separator: "\r\n", maxSplits: 1)[0]
        #expect(statusLine == "HTTP/1.1 \(verdict.status.rawValue) \(phrase)")
        #expect(statusLine.utf8.count <= "HTTP/1.1 503 ".utf8.count + HTTPResponse.reasonPhraseLimit)
    }
}
