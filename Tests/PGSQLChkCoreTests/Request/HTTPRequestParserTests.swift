import Testing
@testable import PGSQLChkCore

@Suite("HTTP request parsing")
struct HTTPRequestParserTests {
    static let defaults = StandbyRequirements(maximumLagBytes: 42)

    private func parse(_ text: String, end: ReceivedRequest.End = .complete) throws(RequestError) -> CheckRequest? {
        try HTTPRequestParser.parse(ReceivedRequest(bytes: Array(text.utf8), end: end), defaults: Self.defaults)
    }

    @Test("no request at all, when the asker closes or the wait ends, asks nothing", arguments: [ReceivedRequest.End.askerClosed, .waitEnded])
    func empty(end: ReceivedRequest.End) throws {
        #expect(try parse("", end: end) == nil)
    }

    @Test("HAProxy's, curl's and hand-typed requests parse", arguments: [
        ("OPTIONS / HTTP/1.0\r\n\r\n", CheckRequest(endpoint: .role, requirements: StandbyRequirements(maximumLagBytes: 42))),
        ("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", CheckRequest(endpoint: .role, requirements: StandbyRequirements(maximumLagBytes: 42))),
        ("GET /replica?lag=1MB HTTP/1.1\r\nHost: db1:23267\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
         CheckRequest(endpoint: .replica, requirements: StandbyRequirements(maximumLagBytes: 1 << 20))),
        ("HEAD /primary HTTP/1.1\r\n\r\n", CheckRequest(endpoint: .primary, requirements: StandbyRequirements(maximumLagBytes: 42), omitsBody: true)),
        ("GET /health HTTP/1.1\r\naccept: application/json, text/plain\r\n\r\n",
         CheckRequest(endpoint: .health, requirements: StandbyRequirements(maximumLagBytes: 42), format: .json)),
        ("GET /status HTTP/1.0\n\n", CheckRequest(endpoint: .status, requirements: StandbyRequirements(maximumLagBytes: 42), format: .json)),
        ("\r\nGET /primary HTTP/1.1\r\n\r\n", CheckRequest(endpoint: .primary, requirements: StandbyRequirements(maximumLagBytes: 42))),
        ("GET http://db1:23267/replica?lag=1kB HTTP/1.1\r\nHost: db1\r\n\r\n",
         CheckRequest(endpoint: .replica, requirements: StandbyRequirements(maximumLagBytes: 1 << 10))),
    ])
    func wellFormed(text: String, request: CheckRequest) throws {
        #expect(try parse(text) == request)
    }

    static let sentState = "UP 2/3; address=127.0.0.1; port=56433; name=pg_readonly_standbys/pg2; node=lb1; weight=100/100; scur=0/0; qcur=0"

    @Test("HAProxy's send-state header is read; one that does not parse, or has non-ASCII bytes, is set aside, never refused", arguments: [
        ("GET /?lag=64MB HTTP/1.0\r\nX-Haproxy-Server-State: \(sentState)\r\n\r\n",
         HAProxyServerState(header: sentState[...]), nil),
        ("OPTIONS / HTTP/1.0\r\nx-haproxy-server-state:DOWN\t\r\n\r\n", HAProxyServerState(health: .down), nil),
        ("OPTIONS / HTTP/1.0\r\nX-Haproxy-Server-State: MAINT; name=b/s\r\n\r\n", nil, "MAINT; name=b/s"),
        ("OPTIONS / HTTP/1.0\r\nX-Haproxy-Server-State: UP; weight=lots\r\n\r\n", nil, "UP; weight=lots"),
        ("OPTIONS / HTTP/1.0\r\nX-Haproxy-Server-State: UP\r\nX-Haproxy-Server-State: DOWN\r\n\r\n", nil, "UP, DOWN"),
        ("OPTIONS / HTTP/1.0\r\nX-Haproxy-Server-State:\r\n\r\n", nil, ""),
        ("OPTIONS / HTTP/1.0\r\nX-Haproxy-Server-State: UP; name=ro/pg\u{e9}2\r\n\r\n", nil, "UP; name=ro/pg\u{e9}2"),
        ("OPTIONS / HTTP/1.0\r\nx-haproxy-server-state:DOWN \u{ff}\r\n\r\n", nil, "DOWN \u{ff}"),
        ("OPTIONS / HTTP/1.0\r\n\r\n", nil, nil),
    ] as [(String, HAProxyServerState?, String?)])
    func serverState(text: String, state: HAProxyServerState?, unread: String?) throws {
        let request = try #require(try parse(text))
        #expect(request.serverState == state)
        #expect(request.unreadServerState == unread)
    }

    @Test("malformed requests are clear 4xx answers", arguments: [
        ("POST / HTTP/1.1\r\n\r\n", HTTPStatus.methodNotAllowed, "method \"POST\" not allowed; use GET, HEAD or OPTIONS"),
        ("get / HTTP/1.1\r\n\r\n", .methodNotAllowed, "method \"get\" not allowed; use GET, HEAD or OPTIONS"),
        ("GET /\r\n\r\n", .badRequest, "malformed request line; expected e.g. GET /replica HTTP/1.1"),
        ("GET  / HTTP/1.1\r\n\r\n", .badRequest, "malformed request line; expected e.g. GET /replica HTTP/1.1"),
        ("GET / HTTP/2\r\n\r\n", .badRequest, "malformed request line; expected e.g. GET /replica HTTP/1.1"),
        ("GET / HTTP/1.1\r\nno colon here\r\n\r\n", .badRequest, "malformed header line"),
        ("GET / HTTP/1.1\r\n: empty name\r\n\r\n", .badRequest, "malformed header line"),
        ("GET /r\u{e9}plica HTTP/1.1\r\n\r\n", .badRequest, "request is not ASCII"),
        ("GET / HTTP/1.1\r\nX-Haproxy-Server-State: UP\r\nHost: d\u{e9}b1\r\n\r\n", .badRequest, "request is not ASCII"),
        ("GET / HTTP/1.1\r\nX-Haproxy-Server-St\u{e4}te: UP\r\n\r\n", .badRequest, "request is not ASCII"),
        ("X-Haproxy-Server-State: \u{e9}\r\n\r\n", .badRequest, "request is not ASCII"),
        ("\u{16}\u{03}\u{01}\n\n", .badRequest, "malformed request line; expected e.g. GET /replica HTTP/1.1"),
        ("\r\n\r\nGET / HTTP/1.1\r\n\r\n", .badRequest, "malformed request line; expected e.g. GET /replica HTTP/1.1"),
        ("GET /nope HTTP/1.1\r\n\r\n", .badRequest, "unknown endpoint \"/nope\"; try \(Endpoint.choices)"),
    ])
    func malformed(text: String, status: HTTPStatus, reason: String) {
        let error = #expect(throws: RequestError.self) { try parse(text) }
        #expect(error?.status == status)
        #expect(error?.reason == reason)
    }

    @Test("how reading ended decides what an unfinished head means", arguments: [
        ("GET /replica HTTP/1.1\r\nHost: x\r\n", ReceivedRequest.End.waitEnded, RequestError.requestTimeout),
        ("GET /repl", .waitEnded, .requestTimeout),
        ("\r\n", .waitEnded, .requestTimeout),
        ("GET /repl", .askerClosed, .incompleteRequestLine),
        ("\u{16}\u{03}\u{01}", .askerClosed, .incompleteRequestLine),
        ("GET / HTTP/1.1\r\nX-Pad: " + String(repeating: "a", count: 9_000) + "\r\n", .limitReached, .headTooLarge),
    ])
    func unfinished(text: String, end: ReceivedRequest.End, error: RequestError) {
        #expect(throws: error) { try parse(text, end: end) }
    }

    @Test("a request line the asker closed after, without a blank line, still parses (nc, then Ctrl-D)")
    func closedAfterRequestLine() throws {
        #expect(try parse("GET /primary HTTP/1.0\n", end: .askerClosed)?.endpoint == .primary)
    }

    @Test("a head is complete once a blank line follows the request line", arguments: [
        ("OPTIONS / HTTP/1.0\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", true),
        ("GET /\n\n", true),
        ("\r\nGET / HTTP/1.1\r\n\r\n", true),
        ("\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: x\r\n", false),
        ("GET / HTTP/1.1\r\n\r", false),
        ("", false),
    ])
    func completeness(text: String, complete: Bool) {
        #expect(HTTPRequestParser.isHeadComplete(Array(text.utf8)) == complete)
    }
}
