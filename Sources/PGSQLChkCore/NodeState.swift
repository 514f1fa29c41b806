/// What one round trip to PostgreSQL found out about the node.
///
/// Optional values are unknown: not applicable to the role, or not visible to
/// the monitoring role (see ``WALReceiver/notVisible``).
public struct NodeState: Equatable, Sendable {
    /// `pg_is_in_recovery()`: true on a standby, false on a primary.
    public var inRecovery: Bool
    /// The server's version, as it announced it at login (`15.18`).
    public var serverVersion: String
    /// The timeline the node writes (primary) or receives (standby).
    public var timeline: Int?
    /// The primary's current WAL position (`pg_current_wal_lsn()`).
    public var walPosition: String?
    /// The last WAL position a standby received (`pg_last_wal_receive_lsn()`).
    public var receivedPosition: String?
    /// The last WAL position a standby replayed (`pg_last_wal_replay_lsn()`).
    public var replayedPosition: String?
    /// Bytes received but not yet replayed.
    public var lagBytes: Int64?
    /// How far replay trails the last change received; zero when caught up.
    public var replayDelay: Milliseconds?
    /// `pg_is_wal_replay_paused()`.
    public var replayPaused: Bool?
    /// The standby's WAL receiver, as far as the role can see it.
    public var receiver: WALReceiver

    public init(inRecovery: Bool, serverVersion: String = "", timeline: Int? = nil, walPosition: String? = nil,
                receivedPosition: String? = nil, replayedPosition: String? = nil, lagBytes: Int64? = nil,
                replayDelay: Milliseconds? = nil, replayPaused: Bool? = nil, receiver: WALReceiver = .notApplicable) {
        self.inRecovery = inRecovery
        self.serverVersion = serverVersion
        self.timeline = timeline
        self.walPosition = walPosition
        self.receivedPosition = receivedPosition
        self.replayedPosition = replayedPosition
        self.lagBytes = lagBytes
        self.replayDelay = replayDelay
        self.replayPaused = replayPaused
        self.receiver = receiver
    }

    /// `primary` or `standby`.
    public var role: String {
        inRecovery ? "standby" : "primary"
    }
}

/// A standby's WAL receiver (`pg_stat_wal_receiver`).
public enum WALReceiver: Equatable, Sendable {
    /// The node is a primary.
    case notApplicable
    /// The monitoring role lacks `pg_read_all_stats` (`pg_monitor` has it),
    /// so PostgreSQL hides the receiver's columns.
    case notVisible
    /// No receiver runs: disconnected from its primary, or restoring from archive.
    case stopped
    /// A receiver runs, in `status` (`streaming`, `waiting`, ...), last heard
    /// from its sender `silence` ago.
    case running(status: String, silence: Milliseconds?)

    /// The state as the JSON status and the reasons print it.
    public var status: String {
        switch self {
        case .notApplicable: "none"
        case .notVisible: "unknown"
        case .stopped: "stopped"
        case .running(let status, _): status
        }
    }
}
