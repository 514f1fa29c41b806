/// What the cluster view shows of a node beyond its ``NodePosition``: its WAL
/// positions and its WAL receiver, from the same row (``Statement/member``),
/// so that every node costs one round trip.
struct MemberDetails: Equatable, Sendable {
    /// A primary's `pg_current_wal_lsn()`.
    var walPosition: String?
    /// A standby's `pg_last_wal_receive_lsn()`.
    var receivedPosition: String?
    /// A standby's `pg_last_wal_replay_lsn()`.
    var replayedPosition: String?
    /// Its WAL receiver, as far as the monitoring role can see it.
    var receiver: WALReceiver
    /// How its primary knows it, when it is a standby.
    var identity: StandbyIdentity?

    /// Reads the columns ``Statement/member`` adds, by name, for a node
    /// that is in recovery or not.
    init(row: QueryRow, inRecovery: Bool) throws(ProbeFailure) {
        walPosition = try row.value(of: "current_lsn")
        receivedPosition = try row.value(of: "received_lsn")
        replayedPosition = try row.value(of: "replayed_lsn")
        let status = try row.value(of: "receiver_status")
        if !inRecovery {
            receiver = .notApplicable
        } else if try row.value(of: "receiver_visible") != "t" {
            receiver = .notVisible
        } else {
            receiver = status.map { .running(status: $0, silence: nil) } ?? .stopped
        }
        identity = inRecovery ? try StandbyIdentity(row: row) : nil
    }

    init(walPosition: String? = nil, receivedPosition: String? = nil, replayedPosition: String? = nil,
         receiver: WALReceiver, identity: StandbyIdentity? = nil) {
        self.walPosition = walPosition
        self.receivedPosition = receivedPosition
        self.replayedPosition = replayedPosition
        self.receiver = receiver
        self.identity = identity
    }
}
