/// Which node a server is, for as long as it lives: what names its fence
/// file (``FenceFile``).
///
/// The system identifier tells clusters apart (every `initdb` draws a new
/// one, every standby cloned from a node inherits it); the port tells apart
/// the nodes of one cluster on one host, since two postmasters on a host
/// cannot listen on one port (a TCP port, or a socket file in a shared
/// directory). Both survive a restart, a promotion and a rebuild from a base
/// backup of the same cluster, which is what lets a node's own check find its
/// fence again.
struct NodeIdentity: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// `pg_control_system().system_identifier`, decimal digits.
    var systemIdentifier: String
    /// `current_setting('port')`, decimal digits.
    var port: String

    /// `system identifier 7714142357752938336, port 5432`, for the log.
    var description: String { "system identifier \(systemIdentifier), port \(port)" }
}

/// Where a server stands in its cluster's history, as the stale-primary
/// guard compares servers: its role, its timeline, the cluster it belongs to,
/// and which postmaster answered.
struct NodePosition: Equatable, Sendable {
    /// `pg_is_in_recovery()`.
    var inRecovery: Bool
    /// A primary's timeline; a standby's received timeline, or the newest its
    /// control file knows when the WAL receiver is not visible or not running.
    var timeline: Int
    /// `pg_control_system().system_identifier`: the same on a primary and every
    /// standby cloned from it, different for any other `initdb`.
    var systemIdentifier: String
    /// `pg_postmaster_start_time()` as seconds since the epoch, to the
    /// microsecond: with the system identifier, names one running server.
    var startedAt: String
    /// `current_setting('port')`: with the system identifier, names the node
    /// (``NodeIdentity``), whoever asks it.
    var port: String
    /// A primary's WAL senders (`pg_stat_replication`), for `/synchronous`
    /// and `/asynchronous` on its standbys; empty on a standby.
    var standbys: [StreamingStandby] = []
    /// Its WAL positions and receiver, for the cluster view; asked only by
    /// ``Statement/member``.
    var member: MemberDetails?

    /// `primary` or `standby`.
    var role: String { inRecovery ? "standby" : "primary" }

    /// The node that answered.
    var node: NodeIdentity { NodeIdentity(systemIdentifier: systemIdentifier, port: port) }

    /// Whether `other` is this very server, reached under another name (the
    /// same `--peers` list is given to every node, so each finds itself in it).
    ///
    /// Addresses cannot tell: the local check may use the socket directory,
    /// a peer an address, a VIP or a NAT. Two postmasters of one cluster that
    /// started in the same microsecond can.
    func isSameServer(as other: NodePosition) -> Bool {
        systemIdentifier == other.systemIdentifier && startedAt == other.startedAt
    }

    /// Reads the row ``Statement/position`` (or ``Statement/standbyList``, ``Statement/member``) returns, by column name; anything missing or
    /// malformed is a query failure, never a guess.
    init(row: QueryRow) throws(ProbeFailure) {
        let role = try row.value(of: "in_recovery")
        guard role == "t" || role == "f" else { throw .queryFailed(row.statement, detail: "unexpected in_recovery in the answer: \(row.values)") }
        guard let timeline = try row.value(of: "timeline").flatMap({ Int($0) }), timeline > 0,
              let system = try row.value(of: "system_identifier"), !system.isEmpty, system.allSatisfy(\.isASCIIDigit),
              let started = try row.value(of: "started_at"), !started.isEmpty,
              let port = try row.value(of: "port"), !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCIIDigit)
        else { throw .queryFailed(row.statement, detail: "incomplete answer: \(row.values)") }
        self.init(inRecovery: role == "t", timeline: timeline, systemIdentifier: system, startedAt: started, port: port,
                  standbys: try StreamingStandby.list(from: try row.value(of: "standbys"), answering: row.statement))
        if row.statement == .member { member = try MemberDetails(row: row, inRecovery: inRecovery) }
    }

    init(inRecovery: Bool, timeline: Int, systemIdentifier: String, startedAt: String, port: String,
         standbys: [StreamingStandby] = []) {
        self.inRecovery = inRecovery
        self.timeline = timeline
        self.systemIdentifier = systemIdentifier
        self.startedAt = startedAt
        self.port = port
        self.standbys = standbys
    }
}
