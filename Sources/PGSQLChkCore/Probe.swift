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

    /// The backstop's answer: the deadline passed while libpq blocked on its own.
    public static let backstopTimeout = ProbeFailure.timedOut(phase: "waiting for libpq")

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

/// How much a check needs to know.
public enum ProbeDepth: Sendable {
    /// `pg_is_in_recovery()` alone: the classic check, the cheapest statement.
    case role
    /// The role and every replication signal (``RoleProbe/replicationQuery``).
    case replication
}

/// Asks the node for its role, and its replication state when needed, in one round trip.
public enum RoleProbe {
    /// The classic check's statement. Planning the replication statement costs
    /// the server about a millisecond more per check (measured against a
    /// local primary), so checks that need no replication signal skip it.
    public static let roleQuery = "SELECT pg_catalog.pg_is_in_recovery()"

    /// One statement, so one round trip, whatever the role. Functions are
    /// schema-qualified so that a `search_path` the role is given cannot put
    /// others in their place (GREATEST and COALESCE are syntax); the
    /// recovery-only functions sit behind `CASE` because they raise errors on
    /// a primary. The replay delay is zero whenever everything received is
    /// replayed, so it cannot grow on an idle primary the way
    /// `now() - pg_last_xact_replay_timestamp()` alone does. Ages are floored
    /// at zero (`now()` is the statement's start, so a message that arrives
    /// during it, or a primary whose clock runs ahead, gives a negative age)
    /// by CASE, not GREATEST, which would turn an unknown (NULL) age into 0.
    /// Positions and lag are a standby's only: a promoted node keeps its last
    /// received and replayed positions, which no longer mean anything.
    public static let replicationQuery = """
        SELECT s.in_recovery,
          CASE WHEN s.in_recovery THEN pg_catalog.pg_is_wal_replay_paused() END,
          CASE WHEN s.in_recovery THEN s.received END,
          CASE WHEN s.in_recovery THEN s.replayed END,
          CASE WHEN NOT s.in_recovery THEN pg_catalog.pg_current_wal_lsn() END,
          CASE WHEN s.in_recovery AND s.received IS NOT NULL AND s.replayed IS NOT NULL
               THEN GREATEST(pg_catalog.pg_wal_lsn_diff(s.received, s.replayed), 0)::bigint END,
          CASE WHEN NOT s.in_recovery OR s.received IS NULL THEN NULL
               WHEN s.received <= s.replayed THEN 0
               WHEN s.replay_age < 0 THEN 0
               ELSE s.replay_age END,
          pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE'),
          w.status,
          CASE WHEN w.receipt_age < 0 THEN 0 ELSE w.receipt_age END,
          CASE WHEN s.in_recovery THEN COALESCE(w.received_tli, (pg_catalog.pg_control_checkpoint()).timeline_id)
               ELSE ('x' || pg_catalog.substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int END
        FROM (SELECT pg_catalog.pg_is_in_recovery() AS in_recovery,
                     pg_catalog.pg_last_wal_receive_lsn() AS received,
                     pg_catalog.pg_last_wal_replay_lsn() AS replayed,
                     (extract(epoch FROM pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp()) * 1000)::bigint AS replay_age) s
          LEFT JOIN (SELECT status, received_tli,
                            (extract(epoch FROM pg_catalog.now() - last_msg_receipt_time) * 1000)::bigint AS receipt_age
                     FROM pg_catalog.pg_stat_wal_receiver) w ON true
        """

    /// Connects with `configuration`, asks what `depth` needs and closes, all before `deadline`.
    public static func run(_ configuration: Configuration, depth: ProbeDepth, before deadline: Deadline) -> Result<NodeState, ProbeFailure> {
        Result { () throws(ProbeFailure) -> NodeState in
            let connection = try PostgresConnection.connect(configuration.connection, before: deadline)
            switch depth {
            case .role:
                let row = try connection.firstRow(of: roleQuery, before: deadline)
                guard row.count == 1, let inRecovery = flag(row[0]) else {
                    throw .queryFailed(detail: "unexpected answer to the role query: \(row)")
                }
                return NodeState(inRecovery: inRecovery, serverVersion: connection.serverVersion,
                                 receiver: inRecovery ? .notVisible : .notApplicable)
            case .replication:
                let row = try connection.firstRow(of: replicationQuery, before: deadline)
                return try nodeState(from: row, serverVersion: connection.serverVersion)
            }
        }
    }

    /// Reads the row ``replicationQuery`` returns. The role column must be `t` or `f`;
    /// any other column may be NULL (not visible to the role, or not
    /// applicable), and is then unknown, never assumed healthy.
    public static func nodeState(from row: [String?], serverVersion: String) throws(ProbeFailure) -> NodeState {
        guard row.count == 11, let inRecovery = flag(row[0]) else {
            throw .queryFailed(detail: "unexpected answer to the role query: \(row)")
        }
        let receiverVisible = flag(row[7]) ?? false
        return NodeState(
            inRecovery: inRecovery,
            serverVersion: serverVersion,
            timeline: row[10].flatMap { Int($0) },
            walPosition: row[4],
            receivedPosition: row[2],
            replayedPosition: row[3],
            lagBytes: row[5].flatMap { Int64($0) },
            replayDelay: row[6].flatMap { Int($0) }.map(Milliseconds.init),
            replayPaused: flag(row[1]),
            receiver: !inRecovery ? .notApplicable
                : !receiverVisible ? .notVisible
                : row[8].map { .running(status: $0, silence: row[9].flatMap { Int($0) }.map(Milliseconds.init)) } ?? .stopped
        )
    }

    private static func flag(_ text: String?) -> Bool? {
        switch text {
        case "t"?: true
        case "f"?: false
        default: nil
        }
    }
}
