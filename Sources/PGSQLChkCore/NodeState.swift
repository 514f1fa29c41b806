/// What one round trip to PostgreSQL found out about the node.
///
/// Optional values are unknown: not applicable to the role, or not visible to
/// the monitoring role (see ``WALReceiver/notVisible``).
struct NodeState: Equatable, Sendable {
    /// `pg_is_in_recovery()`: true on a standby, false on a primary.
    var inRecovery: Bool
    /// The server's version, as it announced it at login (`15.18`).
    var serverVersion = ""
    /// The timeline the node writes (primary) or receives (standby).
    var timeline: Int?
    /// The primary's current WAL position (`pg_current_wal_lsn()`).
    var walPosition: String?
    /// The last WAL position a standby received (`pg_last_wal_receive_lsn()`).
    var receivedPosition: String?
    /// The last WAL position a standby replayed (`pg_last_wal_replay_lsn()`).
    var replayedPosition: String?
    /// Bytes received but not yet replayed.
    var lagBytes: Int64?
    /// How far replay trails the last change received; zero when caught up.
    var replayDelay: Milliseconds?
    /// `pg_is_wal_replay_paused()`.
    var replayPaused: Bool?
    /// The standby's WAL receiver, as far as the role can see it.
    var receiver = WALReceiver.notApplicable
    /// The primary's position for the stale-primary guard; asked only on a
    /// primary, and only when `--peers` is set.
    var position: NodePosition?

    /// `primary` or `standby`.
    var role: String {
        inRecovery ? "standby" : "primary"
    }
}

/// A standby's WAL receiver (`pg_stat_wal_receiver`).
enum WALReceiver: Equatable, Sendable {
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
    var status: String {
        switch self {
        case .notApplicable: "none"
        case .notVisible: "unknown"
        case .stopped: "stopped"
        case .running(let status, _): status
        }
    }
}
