/// The HTTP statuses pgsqlchk answers with.
enum HTTPStatus: Int, Sendable {
    case ok = 200
    case partialContent = 206
    case badRequest = 400
    case notFound = 404
    case methodNotAllowed = 405
    case requestTimeout = 408
    case serviceUnavailable = 503

    /// The reason phrase from RFC 9110; a response carries it for 200 and
    /// 206 (``HTTPResponse/reasonPhrase(of:)``).
    var reasonPhrase: String {
        switch self {
        case .ok: "OK"
        case .partialContent: "Partial Content"
        case .badRequest: "Bad Request"
        case .notFound: "Not Found"
        case .methodNotAllowed: "Method Not Allowed"
        case .requestTimeout: "Request Timeout"
        case .serviceUnavailable: "Service Unavailable"
        }
    }
}

extension Verdict {
    /// HTTP's status for the verdict's answer.
    var status: HTTPStatus {
        switch answer {
        case .serves: .ok
        case .servesReads: .partialContent
        case .behindButKept, .unavailable: .serviceUnavailable
        case .drained: .notFound
        case .refused(let error): error.status
        }
    }
}

/// Renders a complete HTTP/1.1 response, ready for a single `write()`.
///
/// Strict parsers (HAProxy 2.2+ checks, curl) get everything they need to know
/// where the response ends without waiting for the connection to close: a
/// computed `Content-Length`, `Connection: close` and CRLF line ends.
enum HTTPResponse {
    /// The bytes of the response to `verdict`.
    ///
    /// The body is the verdict's line plus a newline (so it reads well on a
    /// terminal and under curl), the JSON status document, or Prometheus's
    /// text format, as `format` says. With
    /// `omitsBody` (HEAD) the headers still announce the body's length.
    /// `X-PGSQLChk-Role` and `X-PGSQLChk-Timeline` help debugging from
    /// HAProxy's logs or `curl -I`; they never carry error text.
    static func render(_ verdict: Verdict, format: BodyFormat = .text, omitsBody: Bool = false) -> [UInt8] {
        let body: [UInt8]
        let contentType: String
        switch format {
        case .text:
            (body, contentType) = (Array((verdict.body + "\n").utf8), "text/plain; charset=utf-8")
        case .json:
            (body, contentType) = (Array((StatusDocument.json(of: verdict) + "\n").utf8), "application/json")
        case .prometheus:
            (body, contentType) = (Array(MetricsDocument.text(of: verdict).utf8), MetricsDocument.contentType)
        case .cluster:
            (body, contentType) = (Array((ClusterDocument.json(of: verdict) + "\n").utf8), "application/json")
        }
        var head = "HTTP/1.1 \(verdict.status.rawValue) \(reasonPhrase(of: verdict))\r\n"
            + "Content-Type: \(contentType)\r\n"
            + "Content-Length: \(body.count)\r\n"
        if verdict.status == .methodNotAllowed {
            head += "Allow: GET, HEAD, OPTIONS\r\n"
        }
        if let state = verdict.state {
            head += "X-PGSQLChk-Role: \(state.role)\r\n"
            if let timeline = state.timeline { head += "X-PGSQLChk-Timeline: \(timeline)\r\n" }
        }
        if let age = verdict.age { head += "X-PGSQLChk-Age: \(age.value)\r\n" }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8) + (omitsBody ? [] : body)
    }

    /// Most bytes of a reason phrase: what HAProxy keeps of it as a
    /// check's description (`HCHK_DESC_LEN` 128 with its NUL, in 2.6 to 3.x;
    /// `set_server_check_status`, src/check.c).
    static let reasonPhraseLimit = 127

    /// The status line's reason phrase: RFC 9110's for 200 and 206; for any
    /// other status, the verdict's own line, because HAProxy reports a
    /// failed check by the reason phrase alone (`info:` in `option
    /// log-health-checks`, `last_chk` on its stats page), never by the body.
    /// Kept to RFC 9112's grammar (`HTAB / SP / VCHAR / obs-text`) as
    /// printable ASCII: anything else becomes `?`; cut to
    /// ``reasonPhraseLimit`` bytes, ending in `...` when cut.
    static func reasonPhrase(of verdict: Verdict) -> String {
        guard verdict.status != .ok, verdict.status != .partialContent, !verdict.body.isEmpty else { return verdict.status.reasonPhrase }
        // The usual reason is short printable ASCII already: kept as it is,
        // without building it again a character at a time.
        if verdict.body.utf8.count <= reasonPhraseLimit, verdict.body.utf8.allSatisfy({ (0x20..<0x7f).contains($0) }) { return verdict.body }
        let printable = verdict.body.unicodeScalars.map { (0x20..<0x7f).contains($0.value) ? Character($0) : "?" }
        guard printable.count > reasonPhraseLimit else { return String(printable) }
        return String(printable.prefix(reasonPhraseLimit - 3)) + "..."
    }
}
