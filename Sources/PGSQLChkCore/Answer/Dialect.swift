/// The protocol a check connection speaks: HTTP for `check`, HAProxy's
/// agent protocol for `agent-check`. It decides how a request ends, how it is
/// read, and how answers are written; everything else is one pipeline
/// (``HealthCheck``).
enum Dialect: Sendable {
    /// An HTTP/1.x request head in, one complete HTTP response out.
    case http
    /// An optional `agent-send` line in (a query string such as
    /// `lag=64MB` or `maxconn=auto`), one agent reply line out (``AgentReply``).
    case agent

    /// Whether `bytes` hold a whole request.
    func isComplete(_ bytes: [UInt8]) -> Bool {
        switch self {
        case .http: HTTPRequestParser.isHeadComplete(bytes)
        case .agent: bytes.contains(10)
        }
    }

    /// The request `received` asks, with `defaults` as its limits; nil when
    /// the asker asked nothing, so the check answers its own ``question(configured:defaults:)``.
    func request(from received: ReceivedRequest, defaults: StandbyRequirements) throws(RequestError) -> CheckRequest? {
        switch self {
        case .http:
            return try HTTPRequestParser.parse(received, defaults: defaults)
        case .agent:
            guard let lineEnd = received.bytes.firstIndex(of: 10) else {
                switch received.end {
                case .limitReached: throw .headTooLarge
                case _ where received.bytes.isEmpty: return nil
                case .waitEnded: throw .requestTimeout
                case .complete, .askerClosed: throw .incompleteRequestLine
                }
            }
            var line = received.bytes[..<lineEnd]
            if line.last == 13 { line = line.dropLast() }
            guard line.allSatisfy({ $0 < 0x80 }) else { throw .notASCII }
            return try CheckRequest(endpoint: .readOnly, query: Substring(String(decoding: line, as: UTF8.self)), defaults: defaults,
                                    acceptsMaxconn: true)
        }
    }

    /// The question answered when the asker asks none: the command line's
    /// `--endpoint` for HTTP; `/read-only` with the default limits for the
    /// agent, whose answer is always the `/read-only` verdict.
    func question(configured: CheckRequest, defaults: StandbyRequirements) -> CheckRequest {
        switch self {
        case .http: configured
        case .agent: CheckRequest(endpoint: .readOnly, requirements: defaults)
        }
    }

    /// The bytes that answer `request` with `verdict`.
    func render(_ verdict: Verdict, for request: CheckRequest) -> [UInt8] {
        switch self {
        case .http: HTTPResponse.render(verdict, format: request.format, omitsBody: request.omitsBody)
        case .agent: Array(AgentReply.line(for: verdict).utf8)
        }
    }

    /// The bytes that refuse a request that cannot be answered as asked.
    func render(refusing error: RequestError, sent: [UInt8]) -> [UInt8] {
        switch self {
        case .http: HTTPResponse.render(Verdict(refusing: error))
        case .agent: Array(AgentReply.line(refusing: error, sent: sent).utf8)
        }
    }
}
