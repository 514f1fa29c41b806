/// How much a check needs to know. The raw value names it in the result
/// cache's key: interpolating the case instead spelled it through the
/// runtime's reflection, over a million instructions a check.
enum ProbeDepth: String, Sendable {
    /// `pg_is_in_recovery()` alone: the classic check, the cheapest statement.
    case role
    /// The role and every replication signal (``Statement/replication``).
    case replication
    /// Every replication signal and, on a standby, how its primary knows it
    /// (``StandbyIdentity``): what `/synchronous` and `/asynchronous` need.
    case synchrony
    /// Every replication signal and the connection slots, for the agent's
    /// `maxconn` (``Statement/connectionSlots``).
    case connectionSlots
    /// Every replication signal, and this node's and every peer's
    /// ``MemberDetails`` (``Statement/member``): what `/cluster` and
    /// `-o cluster` show, and nothing else asks.
    case cluster

    /// What this node is asked for its ``NodePosition`` on its own
    /// connection, after the depth's statement: with `--peers` where the
    /// guard applies, and for the cluster view's row of this node.
    var positionStatement: Statement { self == .cluster ? .member : .position }

    /// What every peer is asked for its ``NodePosition``. Only
    /// `/synchronous` and `/asynchronous` ask a primary for its senders, and
    /// only the cluster view asks for WAL positions and receivers too: the
    /// guard's ordinary checks pay for neither.
    var peerStatement: Statement {
        switch self {
        case .synchrony: .standbyList
        case .cluster: .member
        case .role, .replication, .connectionSlots: .position
        }
    }
}

/// Asks the node for its role, and its replication state when needed, in one round trip.
///
/// The statements it sends, and why each is written as it is, are in
/// ``Statement``; this reads their rows.
enum RoleProbe {
    /// The columns ``Statement/connectionSlots`` adds to the replication statement's, by the names it gives them.
    enum SlotsColumn: String, CaseIterable {
        case maxConnections = "max_connections"
        case superuserReservedConnections = "superuser_reserved_connections"
        case reservedConnections = "reserved_connections"
        case checkRoleLimit = "check_role_limit"
        case clientSessions = "client_sessions"
        case clientRoleLimit = "client_role_limit"
        case clientRoleSessions = "client_role_sessions"
        case sessionsByAddress = "sessions_by_address"
    }

    /// The columns of ``Statement/replication``, by the names it gives them.
    enum Column: String, CaseIterable {
        case inRecovery = "in_recovery"
        case replayPaused = "replay_paused"
        case receivedPosition = "received_lsn"
        case replayedPosition = "replayed_lsn"
        case walPosition = "current_lsn"
        case replayBacklog = "replay_backlog_bytes"
        case primaryPosition = "primary_lsn"
        case behindPrimary = "behind_primary_bytes"
        case receiverTimeout = "receiver_timeout_ms"
        case replayDelay = "replay_delay_ms"
        case receiverVisible = "receiver_visible"
        case receiverStatus = "receiver_status"
        case receiverSilence = "receiver_silence_ms"
        case timeline = "timeline"
    }

    /// Connects with `settings`, asks what `depth` needs and closes, all
    /// before `deadline`; `entering` hears of each phase as it starts.
    ///
    /// With `position` (the stale-primary guard is on), the node is also
    /// asked its ``NodePosition`` on the same connection: a primary for the
    /// guard's comparison, a standby for its ``NodeIdentity``, which names
    /// the fence it may have to remove. A node without the guard is asked
    /// nothing more, but a standby at ``ProbeDepth/synchrony`` depth its
    /// ``StandbyIdentity``. At ``ProbeDepth/cluster`` depth the position is
    /// asked with ``Statement/member``, with or without the guard, for the
    /// node's own row of the cluster view.
    /// `maxconn` says whom the connection slots are counted for.
    static func run(_ settings: ConnectionSettings, depth: ProbeDepth, maxconn: MaxconnRequest? = nil, position asksPosition: Bool = false,
                    before deadline: Deadline,
                    entering: (CheckPhase) -> Void) -> Result<NodeState, ProbeFailure> {
        Result { () throws(ProbeFailure) -> NodeState in
            let connection = try PostgresConnection.connect(settings, before: deadline, entering: entering)
            entering(.querying)
            var state: NodeState
            switch depth {
            case .role:
                let row = try connection.firstRow(of: .role, before: deadline)
                guard let inRecovery = flag(try row.value(of: Column.inRecovery.rawValue)) else {
                    throw .queryFailed(row.statement, detail: "unexpected in_recovery in the answer: \(row.values)")
                }
                state = NodeState(inRecovery: inRecovery, serverVersion: connection.serverVersion,
                                  receiver: inRecovery ? .notVisible : .notApplicable)
            case .replication, .synchrony, .cluster:
                let row = try connection.firstRow(of: .replication, before: deadline)
                state = try nodeState(from: row, serverVersion: connection.serverVersion)
            case .connectionSlots:
                let row = try connection.firstRow(of: .connectionSlots, parameters: [maxconn?.clientRole], before: deadline)
                state = try nodeState(from: row, serverVersion: connection.serverVersion)
                state.connectionSlots = try connectionSlots(from: row)
            }
            if depth == .synchrony, state.inRecovery {
                state.identity = try StandbyIdentity(row: try connection.firstRow(of: .standbyIdentity, before: deadline))
            }
            // The cluster view shows this node even without peers.
            if asksPosition || depth == .cluster {
                let position = try NodePosition(row: try connection.firstRow(of: depth.positionStatement, before: deadline))
                state.position = position
                state.timeline = state.timeline ?? position.timeline
            }
            return state
        }
    }

    /// Reads the row ``Statement/replication`` returns, each column by its name.
    /// `in_recovery` must be `t` or `f`; any other column may be NULL (not
    /// visible to the role, or not applicable), and is then unknown, never
    /// assumed healthy. A missing column is a query failure.
    static func nodeState(from row: QueryRow, serverVersion: String) throws(ProbeFailure) -> NodeState {
        func value(_ column: Column) throws(ProbeFailure) -> String? { try row.value(of: column.rawValue) }
        guard let inRecovery = flag(try value(.inRecovery)) else {
            throw .queryFailed(row.statement, detail: "unexpected in_recovery in the answer: \(row.values)")
        }
        let receiverStatus = try value(.receiverStatus)
        let silence = try value(.receiverSilence).flatMap { Int($0) }.map(Milliseconds.init)
        let receiver: WALReceiver
        if !inRecovery {
            receiver = .notApplicable
        } else if flag(try value(.receiverVisible)) != true {
            receiver = .notVisible
        } else {
            receiver = receiverStatus.map { .running(status: $0, silence: silence) } ?? .stopped
        }
        return NodeState(
            inRecovery: inRecovery,
            serverVersion: serverVersion,
            timeline: try value(.timeline).flatMap { Int($0) },
            walPosition: try value(.walPosition),
            receivedPosition: try value(.receivedPosition),
            replayedPosition: try value(.replayedPosition),
            primaryPosition: try value(.primaryPosition),
            behindPrimaryBytes: try value(.behindPrimary).flatMap { Int64($0) },
            receiverTimeout: try value(.receiverTimeout).flatMap { Int($0) }.map(Milliseconds.init),
            replayBacklogBytes: try value(.replayBacklog).flatMap { Int64($0) },
            replayDelay: try value(.replayDelay).flatMap { Int($0) }.map(Milliseconds.init),
            replayPaused: flag(try value(.replayPaused)),
            receiver: receiver
        )
    }

    /// Reads the columns ``Statement/connectionSlots`` adds, each by its name. The settings
    /// and the check role's limit are always there; a missing one, or a
    /// number that does not parse, is a query failure.
    static func connectionSlots(from row: QueryRow) throws(ProbeFailure) -> ConnectionSlots {
        func number(_ column: SlotsColumn) throws(ProbeFailure) -> Int? {
            guard let text = try row.value(of: column.rawValue) else { return nil }
            guard let value = Int(text) else { throw .queryFailed(row.statement, detail: "unexpected \(column.rawValue): \(text)") }
            return value
        }
        func required(_ column: SlotsColumn) throws(ProbeFailure) -> Int {
            guard let value = try number(column) else { throw .queryFailed(row.statement, detail: "no \(column.rawValue) in the answer") }
            return value
        }
        return ConnectionSlots(
            maxConnections: try required(.maxConnections),
            superuserReservedConnections: try required(.superuserReservedConnections),
            reservedConnections: try required(.reservedConnections),
            checkRoleLimit: try required(.checkRoleLimit),
            clientSessions: try number(.clientSessions),
            clientRoleLimit: try number(.clientRoleLimit),
            clientRoleSessions: try number(.clientRoleSessions),
            byAddress: try AddressSessions.list(from: try row.value(of: SlotsColumn.sessionsByAddress.rawValue), answering: row.statement)
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
