import Testing
@testable import PGSQLChkCore

@Suite("Check request targets")
struct CheckRequestTests {
    @Test("every path and alias names its endpoint", arguments: Endpoint.paths)
    func paths(path: String, endpoint: Endpoint) throws {
        #expect(try CheckRequest.parse(target: path, defaults: StandbyRequirements()).endpoint == endpoint)
    }

    @Test("query parameters set limits on top of the defaults", arguments: [
        ("/replica?lag=16MB", StandbyRequirements(maximumLagBytes: 16 << 20, requiresStreaming: true)),
        ("/replica?lag=1024&replay_delay=30s", StandbyRequirements(maximumLagBytes: 1024, maximumReplayDelay: Milliseconds(30_000), requiresStreaming: true)),
        ("/read-only?replication_state=streaming", StandbyRequirements(maximumLagBytes: 1 << 30, requiresStreaming: true)),
        ("/replica", StandbyRequirements(maximumLagBytes: 1 << 30, requiresStreaming: true)),
        ("/replica?", StandbyRequirements(maximumLagBytes: 1 << 30, requiresStreaming: true)),
    ])
    func parameters(target: String, requirements: StandbyRequirements) throws {
        let defaults = StandbyRequirements(maximumLagBytes: 1 << 30, requiresStreaming: true)
        #expect(try CheckRequest.parse(target: target, defaults: defaults).requirements == requirements)
    }

    @Test("bad targets are 400s that name what is wrong", arguments: [
        ("/slave", "unknown endpoint \"/slave\"; try /, /primary, /replica, /read-only, /health or /status"),
        ("/replica/", "unknown endpoint \"/replica/\"; try /, /primary, /replica, /read-only, /health or /status"),
        ("/replica?lag=garbage", "invalid lag \"garbage\": expected bytes such as 1048576, 16MB or 1GB"),
        ("/replica?lag=", "invalid lag \"\": expected bytes such as 1048576, 16MB or 1GB"),
        ("/replica?lag=-1", "invalid lag \"-1\": expected bytes such as 1048576, 16MB or 1GB"),
        ("/replica?lag=16XB", "invalid lag \"16XB\": expected bytes such as 1048576, 16MB or 1GB"),
        ("/replica?replay_delay=1h", "invalid replay_delay \"1h\": expected a duration such as 30s, 500ms or 2min"),
        ("/replica?replication_state=stopped", "invalid replication_state \"stopped\": only streaming is supported"),
        ("/replica?lag=1&lag=2", "parameter \"lag\" given twice"),
        ("/replica?max_lag=1", "unknown parameter \"max_lag\"; try lag, replay_delay or replication_state"),
        ("/\u{1b}[31m", "unknown endpoint \"/?[31m\"; try /, /primary, /replica, /read-only, /health or /status"),
    ])
    func badTargets(target: String, reason: String) {
        let error = #expect(throws: RequestError.self) { try CheckRequest.parse(target: target, defaults: StandbyRequirements()) }
        #expect(error?.status == .badRequest)
        #expect(error?.reason == reason)
    }

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

    @Test("durations take seconds, ms, s or min", arguments: [("30", 30_000), ("1.5s", 1_500), ("500ms", 500), ("2min", 120_000)])
    func durations(text: String, milliseconds: Int) {
        #expect(Milliseconds(duration: text) == Milliseconds(milliseconds))
    }
}

@Suite("HTTP request parsing")
struct HTTPRequestParserTests {
    static let fallback = CheckRequest(endpoint: .replica, requirements: StandbyRequirements(maximumLagBytes: 42))

    private func parse(_ text: String) throws(RequestError) -> CheckRequest {
        try HTTPRequestParser.parse(head: Array(text.utf8), fallback: Self.fallback)
    }

    @Test("no request at all is the command line's question")
    func empty() throws {
        #expect(try parse("") == Self.fallback)
    }

    @Test("HAProxy's, curl's and hand-typed requests parse", arguments: [
        ("OPTIONS / HTTP/1.0\r\n\r\n", CheckRequest(endpoint: .role, requirements: StandbyRequirements(maximumLagBytes: 42))),
        ("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", CheckRequest(endpoint: .role, requirements: StandbyRequirements(maximumLagBytes: 42))),
        ("GET /replica?lag=1MB HTTP/1.1\r\nHost: db1:23267\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
         CheckRequest(endpoint: .replica, requirements: StandbyRequirements(maximumLagBytes: 1 << 20))),
        ("HEAD /primary HTTP/1.1\r\n\r\n", CheckRequest(endpoint: .primary, requirements: StandbyRequirements(maximumLagBytes: 42), omitsBody: true)),
        ("GET /health HTTP/1.1\r\naccept: application/json, text/plain\r\n\r\n",
         CheckRequest(endpoint: .health, requirements: StandbyRequirements(maximumLagBytes: 42), wantsJSON: true)),
        ("GET /status HTTP/1.0\n\n", CheckRequest(endpoint: .status, requirements: StandbyRequirements(maximumLagBytes: 42), wantsJSON: true)),
    ])
    func wellFormed(text: String, request: CheckRequest) throws {
        #expect(try parse(text) == request)
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
        ("\u{16}\u{03}\u{01}", .badRequest, "incomplete request line"),
        ("GET /nope HTTP/1.1\r\n\r\n", .badRequest, "unknown endpoint \"/nope\"; try /, /primary, /replica, /read-only, /health or /status"),
    ])
    func malformed(text: String, status: HTTPStatus, reason: String) {
        let error = #expect(throws: RequestError.self) { try parse(text) }
        #expect(error?.status == status)
        #expect(error?.reason == reason)
    }

    @Test("an oversized head is refused as too large")
    func oversized() {
        let head = Array(repeating: UInt8(ascii: "A"), count: CheckPeer.requestLimit)
        #expect(throws: RequestError.headTooLarge) {
            try HTTPRequestParser.parse(head: head, fallback: Self.fallback)
        }
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
