/// What one round trip to PostgreSQL found out about the node.
public struct NodeState: Equatable, Sendable {
    /// `pg_is_in_recovery()`: true on a standby, false on a primary.
    public var inRecovery: Bool

    public init(inRecovery: Bool) {
        self.inRecovery = inRecovery
    }
}

/// Why the node's role could not be verified.
///
/// Each case carries the full libpq message (`detail`) for the diagnostics
/// channel; only ``reason`` ever reaches the HTTP body.
public enum ProbeFailure: Error, Equatable, Sendable {
    /// Nothing accepted the connection: refused, no socket file, host unreachable.
    case noResponse(detail: String)
    /// The server refused our credentials (SQLSTATE class 28, or a password was needed).
    case authenticationFailed(detail: String)
    /// Logged in is not allowed here: no such database, or no CONNECT privilege.
    case authorizationFailed(detail: String)
    /// Every connection slot is taken (SQLSTATE 53300).
    case tooManyConnections(detail: String)
    /// Starting up, shutting down or in crash recovery (SQLSTATE 57P03 and kin).
    case notAcceptingConnections(detail: String)
    /// The server said no for another reason, named by its SQLSTATE.
    case connectionRejected(sqlstate: String, detail: String)
    /// The connection settings themselves are invalid; no server was asked.
    case misconfigured(detail: String)
    /// The deadline passed before the answer was known.
    case timedOut(phase: String)
    /// Connected, but the role query failed or answered something unexpected.
    case queryFailed(detail: String)

    /// The short reason written in the 503 body.
    public var reason: String {
        switch self {
        case .noResponse: "no response from server"
        case .authenticationFailed: "authentication failed (check pgsqlchk's role and pg_hba.conf)"
        case .authorizationFailed: "not authorized (check the database name and CONNECT privilege)"
        case .tooManyConnections: "too many connections"
        case .notAcceptingConnections: "server is not accepting connections (starting up or shutting down)"
        case .connectionRejected(let sqlstate, _): "connection rejected (SQLSTATE \(sqlstate))"
        case .misconfigured: "invalid connection settings"
        case .timedOut(let phase): "timeout while \(phase)"
        case .queryFailed: "role query failed"
        }
    }

    /// The libpq message or other detail for the diagnostics channel.
    public var detail: String {
        switch self {
        case .noResponse(let detail), .authenticationFailed(let detail), .authorizationFailed(let detail),
             .tooManyConnections(let detail), .notAcceptingConnections(let detail),
             .connectionRejected(_, let detail), .misconfigured(let detail), .queryFailed(let detail):
            detail
        case .timedOut(let phase):
            "deadline passed while \(phase)"
        }
    }
}

/// Turns a failed connection attempt into a ``ProbeFailure``.
///
/// The server's SQLSTATE is the reliable signal: its message text follows the
/// server's `lc_messages`, the code does not. libpq only prints the code when the
/// connection's error verbosity is `PQERRORS_VERBOSE`, as `FATAL:  53300: ...`,
/// which is why the connection sets it before talking to the server.
public enum ConnectionFailureClassifier {
    /// - Parameters:
    ///   - message: `PQerrorMessage` of the failed connection.
    ///   - needsPassword: `PQconnectionNeedsPassword`: the server asked for a
    ///     password and none was available.
    public static func classify(message: String, needsPassword: Bool) -> ProbeFailure {
        let detail = trimmed(message)
        if needsPassword {
            return .authenticationFailed(detail: detail)
        }
        if let sqlstate = sqlstate(in: message) {
            switch sqlstate {
            case "53300":
                return .tooManyConnections(detail: detail)
            case "57P03", "57P01", "57P02":
                return .notAcceptingConnections(detail: detail)
            case "3D000", "42501":
                return .authorizationFailed(detail: detail)
            case _ where sqlstate.hasPrefix("28"):
                return .authenticationFailed(detail: detail)
            default:
                return .connectionRejected(sqlstate: sqlstate, detail: detail)
            }
        }
        // libpq (14+) prefixes every failure of a connection attempt with the
        // server it tried; option errors are found before any attempt is made.
        let attemptMarkers = ["connection to server", "could not translate host name"]
        if attemptMarkers.contains(where: { message.containsText($0) }) {
            return .noResponse(detail: detail)
        }
        return .misconfigured(detail: detail)
    }

    /// The first SQLSTATE printed in a verbose libpq message (`SEVERITY:  XXXXX: text`).
    public static func sqlstate(in message: String) -> String? {
        let severities = ["FATAL:  ", "ERROR:  ", "PANIC:  "]
        for line in message.split(separator: "\n") {
            for severity in severities {
                guard let start = line.indexAfter(severity) else { continue }
                let code = line[start...].prefix(6)
                if code.count == 6, code.last == ":",
                   code.dropLast().allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) }) {
                    return String(code.dropLast())
                }
            }
        }
        return nil
    }

    static func trimmed(_ message: String) -> String {
        String(message.split(whereSeparator: \.isNewline).joined(separator: " ").prefix(2_000))
    }
}

extension StringProtocol {
    /// The index just past the first occurrence of `marker`, if any.
    func indexAfter(_ marker: String) -> Index? {
        var start = startIndex
        while start < endIndex {
            if self[start...].hasPrefix(marker) {
                return index(start, offsetBy: marker.count)
            }
            start = index(after: start)
        }
        return nil
    }

    /// Whether `marker` occurs anywhere (without Foundation's `contains`).
    func containsText(_ marker: String) -> Bool {
        indexAfter(marker) != nil
    }
}

/// Asks the node for its role in one round trip.
public enum RoleProbe {
    /// Schema-qualified so a hostile `search_path` cannot redefine it.
    public static let query = "SELECT pg_catalog.pg_is_in_recovery()"

    /// Connects with `configuration`, asks ``query`` and closes, all before `deadline`.
    public static func run(_ configuration: Configuration, before deadline: Deadline) -> Result<NodeState, ProbeFailure> {
        Result { () throws(ProbeFailure) -> NodeState in
            let connection = try PostgresConnection.connect(configuration.libpqParameters, before: deadline)
            return try nodeState(from: connection.firstRow(of: query, before: deadline))
        }
    }

    /// Reads the row ``query`` returns; anything but one `t` or `f` is a failure.
    public static func nodeState(from row: [String?]) throws(ProbeFailure) -> NodeState {
        switch row.count == 1 ? row[0] : nil {
        case "t"?: return NodeState(inRecovery: true)
        case "f"?: return NodeState(inRecovery: false)
        default: throw .queryFailed(detail: "unexpected answer to the role query: \(row)")
        }
    }
}
