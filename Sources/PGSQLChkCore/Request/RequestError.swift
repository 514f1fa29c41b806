/// A request that cannot be answered as asked: a 4xx, never a database question.
enum RequestError: Error, Equatable, Sendable {
    /// The path names no endpoint.
    case unknownEndpoint(path: String)
    /// A query parameter pgsqlchk does not know.
    case unknownParameter(name: String)
    /// A query parameter given more than once.
    case repeatedParameter(name: String)
    /// A parameter whose value does not parse; `expected` says what would.
    case invalidValue(parameter: String, value: String, expected: String)
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8 once decoded.
    case invalidPercentEncoding(text: String)
    /// A method other than GET, HEAD and OPTIONS.
    case methodNotAllowed(method: String)
    /// A request line that is not `METHOD TARGET HTTP/1.x`.
    case malformedRequestLine
    /// A header line without a name and a colon.
    case malformedHeader
    /// Bytes outside ASCII.
    case notASCII
    /// The asker stopped sending before the request line ended.
    case incompleteRequestLine
    /// No end of the request head within ``CheckSocket/requestLimit`` bytes.
    case headTooLarge
    /// The request had begun but not ended when the deadline left no more time to wait.
    case requestTimeout

    /// 405 for a method, 408 for a request that did not arrive in time, 400 for everything else.
    var status: HTTPStatus {
        switch self {
        case .methodNotAllowed: .methodNotAllowed
        case .requestTimeout: .requestTimeout
        default: .badRequest
        }
    }

    /// One line saying what is wrong, quoting the asker's text printably.
    var reason: String {
        switch self {
        case .unknownEndpoint(let path):
            "unknown endpoint \(Text.quoted(path)); try \(Endpoint.choices)"
        case .unknownParameter(let name):
            "unknown parameter \(Text.quoted(name)); try \(Text.alternatives(StandbyRequirements.parameters))"
        case .repeatedParameter(let name):
            "parameter \(Text.quoted(name)) given twice"
        case .invalidValue(let parameter, let value, let expected):
            "invalid \(parameter) \(Text.quoted(value)): \(expected)"
        case .invalidPercentEncoding(let text):
            "invalid percent-encoding in \(Text.quoted(text))"
        case .methodNotAllowed(let method):
            "method \(Text.quoted(method)) not allowed; use GET, HEAD or OPTIONS"
        case .malformedRequestLine:
            "malformed request line; expected e.g. GET /replica HTTP/1.1"
        case .malformedHeader:
            "malformed header line"
        case .notASCII:
            "request is not ASCII"
        case .incompleteRequestLine:
            "incomplete request line"
        case .headTooLarge:
            "request head too large"
        case .requestTimeout:
            "request incomplete when the deadline left no time to wait for the rest"
        }
    }
}
