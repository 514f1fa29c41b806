/// The HTTP statuses pgsqlchk answers with.
public enum HTTPStatus: Int, Sendable {
    case ok = 200
    case partialContent = 206
    case serviceUnavailable = 503

    /// The reason phrase from RFC 9110.
    public var reasonPhrase: String {
        switch self {
        case .ok: "OK"
        case .partialContent: "Partial Content"
        case .serviceUnavailable: "Service Unavailable"
        }
    }
}

/// Renders a complete HTTP/1.1 response, ready for a single `write()`.
///
/// Strict parsers (HAProxy 2.2+ checks, curl) get everything they need to know
/// where the response ends without waiting for the connection to close: a
/// computed `Content-Length`, `Connection: close` and CRLF line ends.
public enum HTTPResponse {
    /// The bytes of a response whose body is `text` plus a newline, so it reads
    /// well on a terminal and under `curl`.
    public static func render(_ verdict: Verdict) -> [UInt8] {
        let body = Array((verdict.body + "\n").utf8)
        let head = "HTTP/1.1 \(verdict.status.rawValue) \(verdict.status.reasonPhrase)\r\n"
            + "Content-Type: text/plain; charset=utf-8\r\n"
            + "Content-Length: \(body.count)\r\n"
            + "Connection: close\r\n"
            + "\r\n"
        return Array(head.utf8) + body
    }
}
