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

    /// The statement that asks for a position: the same for the local node
    /// (after its role query, with peers only) and for every peer.
    ///
    /// Every function is schema-qualified, as in ``RoleProbe``. A standby's
    /// received timeline needs `pg_read_all_stats` (`pg_monitor`); without it
    /// the newest of the last restartpoint's and the minimum recovery point's
    /// timelines stands in, which can trail a timeline switch by up to
    /// `checkpoint_timeout`. `port` is readable by any role.
    static let query = statement(listingStandbys: false)

    /// ``query`` with, on a primary, its senders' sync states
    /// (``StreamingStandby/list(from:)``; the slot a sender holds is the one
    /// whose `active_pid` is the sender's): what `/synchronous` asks the
    /// peers, and only it, since it scans the server's backends.
    static let queryListingStandbys = statement(listingStandbys: true)

    private static func statement(listingStandbys: Bool) -> String {
        let standbys = listingStandbys ? """
          CASE WHEN NOT s.in_recovery THEN
            (SELECT pg_catalog.string_agg(COALESCE(r.sync_state, '') OPERATOR(pg_catalog.||) pg_catalog.chr(31)
                                          OPERATOR(pg_catalog.||) COALESCE(l.slot_name::text, '') OPERATOR(pg_catalog.||) pg_catalog.chr(31)
                                          OPERATOR(pg_catalog.||) COALESCE(r.application_name, ''), pg_catalog.chr(30))
             FROM pg_catalog.pg_stat_replication r
               LEFT JOIN pg_catalog.pg_replication_slots l ON l.active_pid OPERATOR(pg_catalog.=) r.pid)
          END AS standbys
        """ : "  NULL::text AS standbys"
        return """
        SELECT s.in_recovery,
          CASE WHEN s.in_recovery
               THEN COALESCE((SELECT w.received_tli FROM pg_catalog.pg_stat_wal_receiver w),
                             GREATEST((pg_catalog.pg_control_checkpoint()).timeline_id,
                                      (pg_catalog.pg_control_recovery()).min_recovery_end_timeline))
               ELSE ('x' OPERATOR(pg_catalog.||) pg_catalog.substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int
          END AS timeline,
          (pg_catalog.pg_control_system()).system_identifier AS system_identifier,
          extract(epoch FROM pg_catalog.pg_postmaster_start_time())::text AS started_at,
          pg_catalog.current_setting('port') AS port,
        \(standbys)
        FROM (SELECT pg_catalog.pg_is_in_recovery() AS in_recovery) s
        """
    }

    /// Reads the row ``query`` returns, by column name; anything missing or
    /// malformed is a query failure, never a guess.
    init(row: QueryRow) throws(ProbeFailure) {
        let role = try row.value(of: "in_recovery")
        guard role == "t" || role == "f" else { throw .queryFailed(detail: "unexpected role in the guard's answer: \(row.values)") }
        guard let timeline = try row.value(of: "timeline").flatMap({ Int($0) }), timeline > 0,
              let system = try row.value(of: "system_identifier"), !system.isEmpty, system.allSatisfy(\.isASCIIDigit),
              let started = try row.value(of: "started_at"), !started.isEmpty,
              let port = try row.value(of: "port"), !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCIIDigit)
        else { throw .queryFailed(detail: "incomplete answer to the guard's query: \(row.values)") }
        self.init(inRecovery: role == "t", timeline: timeline, systemIdentifier: system, startedAt: started, port: port,
                  standbys: try StreamingStandby.list(from: try row.value(of: "standbys")))
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
