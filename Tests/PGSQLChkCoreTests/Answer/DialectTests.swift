import Testing
@testable import PGSQLChkCore

@Suite("Dialects: HTTP and the agent")
struct DialectTests {
    static let defaults = StandbyRequirements(maximumLagBytes: 7)

    private func agentRequest(_ text: String, end: ReceivedRequest.End = .complete) throws(RequestError) -> CheckRequest? {
        try Dialect.agent.request(from: ReceivedRequest(bytes: Array(text.utf8), end: end), defaults: Self.defaults)
    }

    @Test("agent-send reads as query parameters over the defaults, always for /read-only", arguments: [
        ("\n", StandbyRequirements(maximumLagBytes: 7)),
        ("lag=16MB\n", StandbyRequirements(maximumLagBytes: 16 << 20)),
        ("lag=%31%36MB\n", StandbyRequirements(maximumLagBytes: 16 << 20)),
        ("replication_state=streaming\r\n", StandbyRequirements(maximumLagBytes: 7, requiresStreaming: true)),
    ])
    func agentSend(line: String, requirements: StandbyRequirements) throws {
        #expect(try agentRequest(line) == CheckRequest(endpoint: .readOnly, requirements: requirements))
    }

    @Test("agent-send asks for maxconn with maxconn=auto or =only, which the other maxconn parameters need", arguments: [
        ("maxconn=auto\n", MaxconnRequest()),
        ("lag=7&maxconn=auto&maxconn_role=app\n", MaxconnRequest(clientRole: "app")),
        ("check_slots=4&maxconn=auto\n", MaxconnRequest(checkSlots: 4)),
        ("maxconn=only&maxconn_role=app\n", MaxconnRequest(alone: true, clientRole: "app")),
    ])
    func agentMaxconn(line: String, maxconn: MaxconnRequest) throws {
        let request = try #require(try agentRequest(line))
        #expect(request == CheckRequest(endpoint: .readOnly, requirements: Self.defaults, maxconn: maxconn))
        #expect(request.depth == .connectionSlots)
    }

    @Test("a maxconn parameter that does not parse, or comes without maxconn=, is refused", arguments: [
        ("maxconn=80\n", RequestError.invalidValue(parameter: "maxconn", value: "80", expected: "expected auto or only")),
        ("maxconn_role=app\n", .invalidValue(parameter: "maxconn_role", value: "app", expected: "only with maxconn=auto or maxconn=only")),
        ("check_slots=4\n", .invalidValue(parameter: "check_slots", value: "4", expected: "only with maxconn=auto or maxconn=only")),
        ("maxconn=auto&check_slots=-1\n", .invalidValue(parameter: "check_slots", value: "-1", expected: "expected a number of connections such as 5")),
        ("maxconn=auto&maxconn_role=\n", .invalidValue(parameter: "maxconn_role", value: "", expected: "expected a role name")),
        ("maxconn=auto&maxconn=auto\n", .repeatedParameter(name: "maxconn")),
    ])
    func badAgentMaxconn(line: String, error: RequestError) {
        #expect(throws: error) { try agentRequest(line) }
    }

    @Test("an HTTP check cannot ask for maxconn: it has no way to advertise it")
    func httpMaxconn() {
        #expect(throws: RequestError.unknownParameter(name: "maxconn")) {
            try CheckRequest.parse(target: "/read-only?maxconn=auto", defaults: Self.defaults)
        }
    }

    @Test("no agent-send at all asks nothing, so the agent answers its own /read-only question", arguments: [ReceivedRequest.End.askerClosed, .waitEnded])
    func silentAgent(end: ReceivedRequest.End) throws {
        #expect(try agentRequest("", end: end) == nil)
        #expect(Dialect.agent.question(configured: CheckRequest(endpoint: .primary), defaults: Self.defaults)
            == CheckRequest(endpoint: .readOnly, requirements: Self.defaults))
    }

    @Test("a bad or unfinished agent-send is refused, never read as another question", arguments: [
        ("lag=lots\n", ReceivedRequest.End.complete, RequestError.invalidValue(parameter: "lag", value: "lots", expected: "expected bytes such as 1048576, 16MB or 1GB")),
        ("lag=16", .waitEnded, .requestTimeout),
        ("lag=16", .askerClosed, .incompleteRequestLine),
        ("lag=16\u{e9}\n", .complete, .notASCII),
        (String(repeating: "x", count: 8_192), .limitReached, .headTooLarge),
    ])
    func badAgentSend(text: String, end: ReceivedRequest.End, error: RequestError) {
        #expect(throws: error) { try agentRequest(text, end: end) }
    }

    @Test("each dialect renders answers and refusals in its own form")
    func rendering() {
        let verdict = Verdict(unavailable: "too many connections")
        #expect(String(decoding: Dialect.agent.render(verdict, for: CheckRequest()), as: UTF8.self) == "down #too many connections\n")
        #expect(String(decoding: Dialect.http.render(verdict, for: CheckRequest()), as: UTF8.self).hasPrefix("HTTP/1.1 503 too many connections\r\n"))
        #expect(String(decoding: Dialect.agent.render(refusing: .notASCII, sent: []), as: UTF8.self) == "down #agent-send: request is not ASCII\n")
        #expect(String(decoding: Dialect.http.render(refusing: .notASCII, sent: []), as: UTF8.self).hasPrefix("HTTP/1.1 400 request is not ASCII\r\n"))
    }

    @Test("the HTTP dialect answers the command line's question when nothing is asked")
    func httpQuestion() {
        let configured = CheckRequest(endpoint: .replica, requirements: Self.defaults)
        #expect(Dialect.http.question(configured: configured, defaults: StandbyRequirements()) == configured)
    }
}
