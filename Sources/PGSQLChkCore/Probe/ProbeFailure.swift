/// Why the node's role could not be verified.
///
/// Each case carries the full libpq message (`detail`) for the diagnostics
/// channel; only ``reason`` ever reaches the HTTP body.
enum ProbeFailure: Error, Equatable, Sendable {
    /// Nothing accepted the connection: refused, no socket file, host unreachable.
    case noResponse(detail: String)
    /// TLS could not be set up as the settings require (``TLSProblem``).
    case tlsFailed(TLSProblem, detail: String)
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
    case timedOut(phase: CheckPhase)
    /// Connected, but a statement failed or answered something unexpected.
    case queryFailed(Statement, detail: String)
    /// libpq itself could not be loaded (`dlopen` of `libpq.so.5`); no server was asked.
    case libraryMissing(detail: String)

    /// What went wrong with TLS, each pointing the operator somewhere else.
    enum TLSProblem: String, CaseIterable, Sendable {
        /// `sslmode=require` (or stricter) against a server without `ssl = on`.
        case serverWithoutTLS = "server does not support SSL, but sslmode requires it"
        /// `verify-ca` / `verify-full`: the chain or the host name did not verify.
        case certificateRejected = "server certificate verification failed"
        /// A root certificate, client certificate or key file is missing or unreadable.
        case localFiles = "SSL certificate or key file problem"
        /// Anything else in the handshake.
        case handshake = "SSL handshake failed"
    }

    /// Whether the server answered at all, if only to refuse: what
    /// pg_isready calls "rejecting" rather than "no response". A server that
    /// is starting up, full or refusing our login is alive; restarting it
    /// (a Kubernetes liveness probe's remedy) would only make things worse.
    var provesServerResponds: Bool {
        switch self {
        case .authenticationFailed, .authorizationFailed, .tooManyConnections, .notAcceptingConnections, .connectionRejected,
             .queryFailed, .tlsFailed(.serverWithoutTLS, _):
            true
        case .noResponse, .tlsFailed, .misconfigured, .timedOut, .libraryMissing:
            false
        }
    }

    /// The short reason written in the 503 body.
    var reason: String {
        switch self {
        case .noResponse: "no response from server"
        case .tlsFailed(let problem, _): problem.rawValue
        case .authenticationFailed: "authentication failed (check pgsqlchk's role and pg_hba.conf)"
        case .authorizationFailed: "not authorized (check the database name and CONNECT privilege)"
        case .tooManyConnections: "too many connections"
        case .notAcceptingConnections: "server is not accepting connections (starting up or shutting down)"
        case .connectionRejected(let sqlstate, _): "connection rejected (SQLSTATE \(sqlstate))"
        case .misconfigured: "invalid connection settings"
        case .timedOut(let phase): "timeout while \(phase.rawValue)"
        case .queryFailed(let statement, _): "\(statement.rawValue) query failed"
        case .libraryMissing: "libpq could not be loaded"
        }
    }

    /// The libpq message or other detail for the diagnostics channel.
    var detail: String {
        switch self {
        case .noResponse(let detail), .tlsFailed(_, let detail), .authenticationFailed(let detail), .authorizationFailed(let detail),
             .tooManyConnections(let detail), .notAcceptingConnections(let detail),
             .connectionRejected(_, let detail), .misconfigured(let detail), .queryFailed(_, let detail),
             .libraryMissing(let detail):
            detail
        case .timedOut(let phase):
            "deadline passed while \(phase.rawValue)"
        }
    }
}

/// Turns a failed connection attempt into a ``ProbeFailure``.
///
/// The server's SQLSTATE is the reliable signal: its message text follows the
/// server's `lc_messages`, the code does not. libpq only prints the code when the
/// connection's error verbosity is `PQERRORS_VERBOSE`, as `FATAL:  53300: ...`,
/// which is why the connection sets it before talking to the server. TLS
/// failures happen on the client's side and carry no SQLSTATE; libpq's own
/// messages for them are in English whatever the locale of the check.
enum ConnectionFailureClassifier {
    /// - Parameters:
    ///   - message: `PQerrorMessage` of the failed connection.
    ///   - needsPassword: `PQconnectionNeedsPassword`: the server asked for a
    ///     password and none was available.
    static func classify(message: String, needsPassword: Bool) -> ProbeFailure {
        let detail = Text.oneLine(message)
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
        if let problem = tlsProblem(in: message) {
            return .tlsFailed(problem, detail: detail)
        }
        // libpq (14+) prefixes every failure of a connection attempt with the
        // server it tried; option errors are found before any attempt is made.
        let attemptMarkers = ["connection to server", "could not translate host name"]
        if attemptMarkers.contains(where: { message.containsText($0) }) {
            return .noResponse(detail: detail)
        }
        return .misconfigured(detail: detail)
    }

    /// The TLS problem libpq's message names, if any (libpq's `fe-secure-openssl.c`
    /// and `fe-connect.c` wordings).
    static func tlsProblem(in message: String) -> ProbeFailure.TLSProblem? {
        let markers: [(String, ProbeFailure.TLSProblem)] = [
            ("server does not support SSL", .serverWithoutTLS),
            ("certificate verify failed", .certificateRejected),
            ("does not match host name", .certificateRejected),
            ("server certificate for", .certificateRejected),
            ("root certificate file", .localFiles),
            ("could not read root certificate", .localFiles),
            ("certificate present, but not private key", .localFiles),
            ("could not open certificate file", .localFiles),
            ("could not load private key", .localFiles),
            ("private key file", .localFiles),
            ("SSL error", .handshake),
            ("SSL SYSCALL error", .handshake),
            ("could not establish SSL", .handshake),
        ]
        return markers.first { message.containsText($0.0) }?.1
    }

    /// The first SQLSTATE printed in a verbose libpq message (`SEVERITY:  XXXXX: text`).
    static func sqlstate(in message: String) -> String? {
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
}
