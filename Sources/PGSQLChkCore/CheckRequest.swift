/// What a check asks: which question, with which limits, in which form.
public struct CheckRequest: Equatable, Sendable {
    /// The question: which role or condition to answer for.
    public var endpoint: Endpoint
    /// The limits a standby must meet to count as serving.
    public var requirements: StandbyRequirements
    /// HEAD: the same status and headers, no body.
    public var omitsBody: Bool
    /// The peer asked for JSON (`Accept: application/json`, or `/status`).
    public var wantsJSON: Bool

    public init(endpoint: Endpoint = .role, requirements: StandbyRequirements = StandbyRequirements(), omitsBody: Bool = false, wantsJSON: Bool = false) {
        self.endpoint = endpoint
        self.requirements = requirements
        self.omitsBody = omitsBody
        self.wantsJSON = wantsJSON
    }
}

extension CheckRequest {
    /// Whether answering needs more than the role: a JSON document, or a
    /// standby limit on an endpoint that checks standby limits.
    public var depth: ProbeDepth {
        switch endpoint {
        case .status:
            return .replication
        case .role, .replica, .readOnly:
            return wantsJSON || requirements != StandbyRequirements() ? .replication : .role
        case .primary, .health:
            return wantsJSON ? .replication : .role
        }
    }
}

/// The questions pgsqlchk answers, named as Patroni's REST API names them so
/// that HAProxy configurations written for Patroni carry over.
public enum Endpoint: String, CaseIterable, Sendable {
    /// `/`: 200 primary, 206 standby (the classic answer HAProxy's default
    /// `OPTIONS /` check gets).
    case role = "/"
    /// `/primary` and its aliases: 200 only on a primary.
    case primary = "/primary"
    /// `/replica`, `/standby`: 200 only on a standby that meets the requirements.
    case replica = "/replica"
    /// `/read-only`: 200 on a primary or on a standby that meets the requirements.
    case readOnly = "/read-only"
    /// `/health`: 200 when PostgreSQL answers, whatever its role.
    case health = "/health"
    /// `/status`: the node's state as JSON, 200 when PostgreSQL answers.
    case status = "/status"

    /// Every path accepted, aliases included.
    public static let paths: [(path: String, endpoint: Endpoint)] = [
        ("/", .role),
        ("/primary", .primary), ("/read-write", .primary), ("/master", .primary), ("/leader", .primary),
        ("/replica", .replica), ("/standby", .replica),
        ("/read-only", .readOnly),
        ("/health", .health),
        ("/status", .status),
    ]

    /// The endpoint a request path names, aliases included; nil for any other path.
    public init?(path: String) {
        guard let match = Endpoint.paths.first(where: { $0.path == path }) else { return nil }
        self = match.endpoint
    }

    /// Whether the drain file takes the node out of this endpoint's answers.
    /// `/health` and `/status` report; they do not route.
    public var honoursMaintenance: Bool {
        self != .health && self != .status
    }
}

/// What a standby must show before it is trusted with reads.
///
/// Each limit is off unless set (command line, environment or request), so a
/// check that asks for nothing answers as the classic pgsqlchk did.
public struct StandbyRequirements: Equatable, Sendable {
    /// Most bytes of received WAL not yet replayed (`lag=`).
    public var maximumLagBytes: Int64?
    /// Most time the standby's replay may trail the last change it received
    /// (`replay_delay=`); zero whenever everything received is replayed.
    public var maximumReplayDelay: Milliseconds?
    /// The WAL receiver must be streaming (`replication_state=streaming`).
    public var requiresStreaming: Bool

    public init(maximumLagBytes: Int64? = nil, maximumReplayDelay: Milliseconds? = nil, requiresStreaming: Bool = false) {
        self.maximumLagBytes = maximumLagBytes
        self.maximumReplayDelay = maximumReplayDelay
        self.requiresStreaming = requiresStreaming
    }
}

/// A request that cannot be answered as asked: a 4xx, never a database question.
public enum RequestError: Error, Equatable, Sendable {
    /// The path names no endpoint.
    case unknownEndpoint(path: String)
    /// A query parameter pgsqlchk does not know.
    case unknownParameter(name: String)
    /// A query parameter given more than once.
    case repeatedParameter(name: String)
    /// A parameter whose value does not parse; `expected` says what would.
    case invalidValue(parameter: String, value: String, expected: String)
    /// A method other than GET, HEAD and OPTIONS.
    case methodNotAllowed(method: String)
    /// A request line that is not `METHOD TARGET HTTP/1.x`.
    case malformedRequestLine
    /// A header line without a name and a colon.
    case malformedHeader
    /// Bytes outside ASCII.
    case notASCII
    /// The request line never ended.
    case incompleteRequestLine
    /// No end of the request head within ``CheckPeer/requestLimit`` bytes.
    case headTooLarge

    /// 405 for a method, 400 for everything else.
    public var status: HTTPStatus {
        if case .methodNotAllowed = self { return .methodNotAllowed }
        return .badRequest
    }

    /// One line saying what is wrong, quoting the peer's text printably.
    public var reason: String {
        switch self {
        case .unknownEndpoint(let path):
            "unknown endpoint \(CheckRequest.printable(path)); try /, /primary, /replica, /read-only, /health or /status"
        case .unknownParameter(let name):
            "unknown parameter \(CheckRequest.printable(name)); try lag, replay_delay or replication_state"
        case .repeatedParameter(let name):
            "parameter \(CheckRequest.printable(name)) given twice"
        case .invalidValue(let parameter, let value, let expected):
            "invalid \(parameter) \(CheckRequest.printable(value)): \(expected)"
        case .methodNotAllowed(let method):
            "method \(CheckRequest.printable(method)) not allowed; use GET, HEAD or OPTIONS"
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
        }
    }
}

extension CheckRequest {
    /// Parses a request target such as `/replica?lag=16MB&replication_state=streaming`
    /// on top of `defaults` (the command line's and environment's limits).
    ///
    /// A value that does not parse is an error naming the parameter: a typo
    /// must never switch a check off.
    public static func parse(target: String, defaults: StandbyRequirements) throws(RequestError) -> CheckRequest {
        let pathEnd = target.firstIndex(where: { $0 == "?" || $0 == "#" }) ?? target.endIndex
        let path = String(target[..<pathEnd])
        guard let endpoint = Endpoint(path: path) else {
            throw .unknownEndpoint(path: path)
        }
        var request = CheckRequest(endpoint: endpoint, requirements: defaults, wantsJSON: endpoint == .status)
        guard pathEnd < target.endIndex, target[pathEnd] == "?" else { return request }
        var seen: [Substring] = []
        for pair in target[target.index(after: pathEnd)...].split(separator: "&") {
            let name = pair.prefix { $0 != "=" }
            let value = String(pair.dropFirst(name.count + 1))
            guard !seen.contains(name) else {
                throw .repeatedParameter(name: String(name))
            }
            seen.append(name)
            try request.requirements.apply(parameter: String(name), value: value)
        }
        return request
    }

    /// Quotes text from the peer for a reason line, keeping it short and printable.
    static func printable(_ text: String) -> String {
        let visible = text.unicodeScalars.prefix(64).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7f ? Character($0) : "?" }
        return "\"" + String(visible) + (text.unicodeScalars.count > 64 ? "...\"" : "\"")
    }
}

extension StandbyRequirements {
    /// Sets one limit from its query parameter (`lag`, `replay_delay`,
    /// `replication_state`).
    public mutating func apply(parameter name: String, value: String) throws(RequestError) {
        switch name {
        case "lag":
            guard let bytes = ByteCount.parse(value) else {
                throw .invalidValue(parameter: name, value: value, expected: "expected bytes such as 1048576, 16MB or 1GB")
            }
            maximumLagBytes = bytes
        case "replay_delay":
            guard let delay = Milliseconds(duration: value) else {
                throw .invalidValue(parameter: name, value: value, expected: "expected a duration such as 30s, 500ms or 2min")
            }
            maximumReplayDelay = delay
        case "replication_state":
            guard value == "streaming" else {
                throw .invalidValue(parameter: name, value: value, expected: "only streaming is supported")
            }
            requiresStreaming = true
        default:
            throw .unknownParameter(name: name)
        }
    }
}

/// Byte counts written as PostgreSQL writes memory sizes: `1048576`, `16kB`,
/// `64MB`, `1GB`, `1TB` (powers of 1024; unit letters in any case).
public enum ByteCount {
    static let units: [(suffix: String, factor: Int64)] = [
        ("tb", 1 << 40), ("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10), ("b", 1),
    ]

    /// The byte count `text` spells, or nil: no sign, no fraction, no space
    /// before the unit, and nothing that overflows.
    public static func parse(_ text: String) -> Int64? {
        let digits = text.prefix(while: \.isASCIIDigit)
        let unit = text.dropFirst(digits.count).lowercased()
        guard !digits.isEmpty, digits.count <= 15, let number = Int64(digits) else { return nil }
        if unit.isEmpty { return number }
        guard let factor = units.first(where: { $0.suffix == unit })?.factor else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: factor)
        return overflow ? nil : product
    }

    /// `48 MB`, `512 kB`, `100 bytes`: the largest unit that divides evenly
    /// enough to read at a glance (one decimal).
    public static func describe(_ bytes: Int64) -> String {
        for (suffix, factor) in units where factor > 1 && bytes >= factor {
            let tenths = (bytes * 10 + factor / 2) / factor
            let label = suffix == "kb" ? "kB" : suffix.uppercased()
            return tenths % 10 == 0 ? "\(tenths / 10) \(label)" : "\(tenths / 10).\(tenths % 10) \(label)"
        }
        return "\(bytes) bytes"
    }
}

extension Milliseconds {
    /// Parses a duration: seconds by default, or with `ms`, `s` or `min`
    /// (`30`, `1.5s`, `500ms`, `2min`).
    public init?(duration text: String) {
        let number = text.prefix { $0.isASCIIDigit || $0 == "." }
        let unit = text.dropFirst(number.count)
        switch unit {
        case "ms":
            guard !number.isEmpty, number.allSatisfy(\.isASCIIDigit), number.count <= 9, let value = Int(number) else { return nil }
            self.init(value)
        case "", "s":
            self.init(seconds: String(number))
        case "min":
            guard let seconds = Milliseconds(seconds: String(number)) else { return nil }
            self.init(seconds.value * 60)
        default:
            return nil
        }
    }
}

/// Reads the HTTP request head HAProxy (or curl, or a person with nc) sent.
public enum HTTPRequestParser {
    /// Parses `head` into a ``CheckRequest``, with `fallback`'s limits as defaults.
    ///
    /// No bytes at all is `fallback` (the command line's question, by default
    /// the classic role check), so plain TCP probes keep working. Anything else
    /// must be one HTTP/1.x request line (`GET`, `HEAD` or `OPTIONS`), then
    /// well-formed header lines.
    public static func parse(head: [UInt8], fallback: CheckRequest) throws(RequestError) -> CheckRequest {
        guard !head.isEmpty else { return fallback }
        let defaults = fallback.requirements
        guard head.allSatisfy({ $0 < 0x80 }) else { throw .notASCII }
        // Split bytes, not Characters: CR LF is a single Character in Swift.
        let lines = head.split(separator: 10, omittingEmptySubsequences: false)
            .map { String(decoding: $0.last == 13 ? $0.dropLast() : $0, as: UTF8.self) }
        // No line end at all: the peer stopped, or sent more than we read.
        guard lines.count > 1 else {
            throw head.count >= CheckPeer.requestLimit ? .headTooLarge : .incompleteRequestLine
        }
        let requestLine = lines[0].split(separator: " ", omittingEmptySubsequences: false)
        guard requestLine.count == 3, requestLine[2] == "HTTP/1.1" || requestLine[2] == "HTTP/1.0" else {
            throw .malformedRequestLine
        }
        let method = requestLine[0]
        guard ["GET", "HEAD", "OPTIONS"].contains(method) else {
            throw .methodNotAllowed(method: String(method))
        }
        let target = method == "OPTIONS" && requestLine[1] == "*" ? "/" : String(requestLine[1])
        var request = try CheckRequest.parse(target: target, defaults: defaults)
        request.omitsBody = method == "HEAD"
        for line in lines.dropFirst() {
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex, !line[..<colon].contains(" ") else {
                throw .malformedHeader
            }
            if line[..<colon].lowercased() == "accept", line[line.index(after: colon)...].lowercased().containsText("application/json") {
                request.wantsJSON = true
            }
        }
        return request
    }
}
