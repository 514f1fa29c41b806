/// One HTTP response as the checks must send it, parsed strictly: the only
/// response validator of the tests, used by the Swift suites directly and by
/// the shell suites (Tests/system) through `response-check`.
public struct ParsedResponse: Sendable {
    public let status: Int
    /// The status line's reason phrase ("OK", "Partial Content", ...).
    public let reason: String
    /// Header values by lower-cased name.
    public let headers: [String: String]
    /// The body, without one final line feed.
    public let body: String

    /// Parses `bytes` as exactly one HTTP/1.1 response; nil when anything is
    /// malformed (`problem(in:)` says what).
    public init?(_ bytes: [UInt8]) {
        guard case .success(let response) = Self.parse(bytes) else { return nil }
        self = response
    }

    private init(status: Int, reason: String, headers: [String: String], body: String) {
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
    }

    /// What is wrong with `bytes` as one response, or nil when nothing is.
    public static func problem(in bytes: [UInt8]) -> String? {
        if case .failure(let problem) = parse(bytes) { return problem.description }
        return nil
    }

    /// The rules: a status line `HTTP/1.1 CODE REASON`; header lines
    /// `Name: value` with a token for a name, printable ASCII for a value,
    /// and no name twice; CRLF line ends; a blank line; then exactly
    /// Content-Length bytes of body and nothing after them.
    public static func parse(_ bytes: [UInt8]) -> Result<ParsedResponse, MalformedResponse> {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let headEnd = text.firstRange(of: "\r\n\r\n") else { return .failure("no blank line (CRLF CRLF) ends the head") }
        let lines = text[..<headEnd.lowerBound].split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusLine = lines[0].split(separator: " ", maxSplits: 2)
        guard statusLine.count == 3, statusLine[0] == "HTTP/1.1", statusLine[1].count == 3, let status = Int(statusLine[1]) else {
            return .failure(MalformedResponse("status line \(String(reflecting: String(lines[0])))"))
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let separator = line.firstRange(of: ": "), isToken(line[..<separator.lowerBound]),
                  line[separator.upperBound...].utf8.allSatisfy({ (0x20...0x7e).contains($0) })
            else { return .failure(MalformedResponse("malformed header line \(String(reflecting: String(line)))")) }
            let name = line[..<separator.lowerBound].lowercased()
            guard headers[name] == nil else { return .failure(MalformedResponse("header \(name) twice")) }
            headers[name] = String(line[separator.upperBound...])
        }
        let body = String(text[headEnd.upperBound...])
        guard let length = headers["content-length"].flatMap(Int.init), length == body.utf8.count else {
            return .failure(MalformedResponse("Content-Length \(headers["content-length"] ?? "missing"), but \(body.utf8.count) bytes follow the head"))
        }
        return .success(ParsedResponse(status: status, reason: String(statusLine[2]), headers: headers,
                                       body: body.hasSuffix("\n") ? String(body.dropLast()) : body))
    }

    /// RFC 9110's token: the characters a header name may have.
    private static func isToken(_ name: Substring) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
                || "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

/// Why bytes are not one good response.
public struct MalformedResponse: Error, CustomStringConvertible, ExpressibleByStringLiteral {
    public let description: String

    public init(_ description: String) { self.description = description }
    public init(stringLiteral description: String) { self.description = description }
}
