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
    /// The primary's WAL end as the standby's receiver last heard it
    /// (`pg_stat_wal_receiver.latest_end_lsn`).
    var primaryPosition: String?
    /// Bytes between ``primaryPosition`` and the replay position, whatever
    /// the receiver's state; ``lagBytes`` says when to believe it.
    var behindPrimaryBytes: Int64?
    /// `wal_receiver_timeout`: how long the receiver waits on a silent sender
    /// before it gives the connection up; zero when it never does.
    var receiverTimeout: Milliseconds?
    /// Bytes received but not yet replayed (`replay_backlog=`).
    var replayBacklogBytes: Int64?
    /// How far replay trails the last change received; zero when caught up.
    var replayDelay: Milliseconds?
    /// `pg_is_wal_replay_paused()`.
    var replayPaused: Bool?
    /// The standby's WAL receiver, as far as the role can see it.
    var receiver = WALReceiver.notApplicable
    /// The primary's position for the stale-primary guard; asked only on a
    /// primary, and only when `--peers` is set.
    var position: NodePosition?
    /// How the primary knows this standby, for `/synchronous` and
    /// `/asynchronous`; asked only on a standby, and only for them.
    var identity: StandbyIdentity?
    /// What each of `--peers` said when this probe asked them: on a primary
    /// for the stale-primary guard, on a standby for `/synchronous` and
    /// `/asynchronous`; nil when they were not asked. Part of the probe's
    /// outcome, so that the result cache shares the peers' answers too.
    var peers: [PeerReport]?
    /// The connection slots, counted for the agent's `maxconn=auto` only.
    var connectionSlots: ConnectionSlots?

    /// How far this standby is behind the primary, in bytes of WAL it has not
    /// replayed (`lag=`, Patroni's meaning). Known only while the WAL receiver
    /// streams and has heard from the primary within `wal_receiver_timeout`:
    /// a receiver that stopped, or whose sender has been silent so long that
    /// the receiver itself would give up, says nothing about where the
    /// primary is now, and an unknown lag never passes.
    var lagBytes: Int64? {
        guard inRecovery, case .running(status: "streaming", let silence) = receiver, let behind = behindPrimaryBytes else { return nil }
        if let timeout = receiverTimeout, timeout.value > 0 {
            guard let silence, silence <= timeout else { return nil }
        }
        return behind
    }

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
