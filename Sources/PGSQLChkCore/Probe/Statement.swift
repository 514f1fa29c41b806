/// Every SQL statement pgsqlchk sends, by name: the name is what a failed
/// statement's 503 says (``ProbeFailure/queryFailed(_:detail:)``), and
/// `StatementTests` holds every one of ``allCases`` to the rules below, so a
/// statement added here cannot escape them. The types that read the rows
/// (``RoleProbe``, ``NodePosition``, ``StandbyIdentity``, ``Preflight``)
/// read them by column name.
///
/// Every statement is immune to the objects a role may create and to the
/// `search_path` it may be given (the CVE-2018-1058 pattern): every function
/// is schema-qualified, and every operator is written
/// `OPERATOR(pg_catalog.x)`, because an unqualified operator resolves to the
/// best-matching one anywhere on the path, and `public.*(numeric, integer)`
/// matches `extract(...) * 1000` better than the built-in one does.
/// `GREATEST`, `COALESCE`, `CASE`, `extract` and the casts to SQL's own types
/// are syntax that resolves in `pg_catalog` alone.
///
/// The texts are constants made once, on first use: nothing here costs a
/// check that does not send the statement.
enum Statement: String, CaseIterable, Sendable {
    /// `pg_is_in_recovery()` alone, for ``ProbeDepth/role``.
    case role = "role"
    /// The role and every replication signal, for ``ProbeDepth/replication``.
    case replication = "replication"
    /// ``replication`` and the connection slots, for the agent's `maxconn`;
    /// `$1` is the `maxconn_role`.
    case connectionSlots = "connection slots"
    /// Where the node stands in its cluster's history (``NodePosition``),
    /// for the stale-primary guard and the peers.
    case position = "position"
    /// ``position`` with, on a primary, its WAL senders: what `/synchronous`
    /// asks the peers.
    case standbyList = "standby list"
    /// ``standbyList`` with the node's WAL positions and its WAL receiver:
    /// what `/cluster` and `-o cluster` show of every node (``MemberDetails``).
    case member = "cluster member"
    /// How a standby's primary knows it (``StandbyIdentity``).
    case standbyIdentity = "standby identity"
    /// The login's role and privileges, for `--preflight`.
    case privileges = "privileges"

    /// The SQL text sent to the server.
    var sql: String {
        switch self {
        case .role: Self.roleSQL
        case .replication: Self.replicationSQL
        case .connectionSlots: Self.connectionSlotsSQL
        case .position: Self.positionSQL
        case .standbyList: Self.standbyListSQL
        case .member: Self.memberSQL
        case .standbyIdentity: Self.standbyIdentitySQL
        case .privileges: Self.privilegesSQL
        }
    }

    /// The classic check's statement. Planning the replication statement costs
    /// the server about a millisecond more per check (measured against a
    /// local primary), so checks that need no replication signal skip it.
    private static let roleSQL = "SELECT pg_catalog.pg_is_in_recovery() AS in_recovery"

    /// One statement, so one round trip, whatever the role. The
    /// recovery-only functions sit behind `CASE` because they raise errors on
    /// a primary. The replay delay is zero whenever everything received is
    /// replayed, so it cannot grow on an idle primary the way
    /// `now() - pg_last_xact_replay_timestamp()` alone does; and zero while
    /// the startup process waits for WAL (wait event `RecoveryWalStream`,
    /// PostgreSQL 15 to 18), which it does only once it has replayed every
    /// whole record it has: what it received beyond is the first part of a
    /// record the primary has not flushed the rest of yet (a large record,
    /// or one across a page boundary), which cannot be replayed, so the age
    /// of the last commit says nothing. Paused replay keeps the age whatever
    /// the startup process waits on (PostgreSQL 16 showed `RecoveryWalStream`
    /// while paused with a commit received), and so do
    /// `recovery_min_apply_delay` (`RecoveryApplyDelay`) and a busy startup
    /// process. The activity is scanned only
    /// then (a scalar subquery runs when its `CASE` branch is reached), and
    /// the wait event is NULL without `pg_read_all_stats`, which leaves the
    /// age too. Ages are floored
    /// at zero (`now()` is the statement's start, so a message that arrives
    /// during it, or a primary whose clock runs ahead, gives a negative age)
    /// by CASE, not GREATEST, which would turn an unknown (NULL) age into 0.
    /// Positions and lag are a standby's only: a promoted node keeps its last
    /// received and replayed positions, which no longer mean anything. The
    /// primary's position is the WAL end its sender announced in the last
    /// message the receiver took in (`latest_end_lsn`; the view's columns are
    /// NULL without `pg_read_all_stats`, and it is NULL until the first
    /// message of a new receiver); while it is NULL so is the lag, which
    /// `GREATEST` alone would make 0. `wal_receiver_timeout` comes from
    /// `current_setting`, not the `pg_settings` view, which builds a row for
    /// every setting: 0.14 ms a statement against 0.72 ms (pgbench, standby).
    /// Columns are read by name (``RoleProbe/Column``).
    private static let replicationSQL = "SELECT \(replicationColumns)\n\(replicationSource)"

    /// The replication statement's column list, over the sources `s` (the
    /// recovery functions) and `w` (`pg_stat_wal_receiver`): a live test
    /// runs it over rows of its own making.
    static let replicationColumns = """
        s.in_recovery,
          CASE WHEN s.in_recovery THEN pg_catalog.pg_is_wal_replay_paused() END AS replay_paused,
          CASE WHEN s.in_recovery THEN s.received END AS received_lsn,
          CASE WHEN s.in_recovery THEN s.replayed END AS replayed_lsn,
          CASE WHEN NOT s.in_recovery THEN pg_catalog.pg_current_wal_lsn() END AS current_lsn,
          CASE WHEN s.in_recovery AND s.received IS NOT NULL AND s.replayed IS NOT NULL
               THEN GREATEST(pg_catalog.pg_wal_lsn_diff(s.received, s.replayed), 0)::bigint END AS replay_backlog_bytes,
          CASE WHEN s.in_recovery THEN w.latest_end_lsn END AS primary_lsn,
          CASE WHEN s.in_recovery AND s.replayed IS NOT NULL AND w.latest_end_lsn IS NOT NULL
               THEN GREATEST(pg_catalog.pg_wal_lsn_diff(w.latest_end_lsn, s.replayed), 0)::bigint END AS behind_primary_bytes,
          CASE WHEN s.in_recovery
               THEN (extract(epoch FROM pg_catalog.current_setting('wal_receiver_timeout')::interval)
                       OPERATOR(pg_catalog.*) 1000)::bigint END AS receiver_timeout_ms,
          CASE WHEN NOT s.in_recovery OR s.received IS NULL THEN NULL
               WHEN s.received OPERATOR(pg_catalog.<=) s.replayed THEN 0
               WHEN (SELECT a.wait_event FROM pg_catalog.pg_stat_get_activity(NULL) a
                     WHERE a.backend_type OPERATOR(pg_catalog.=) 'startup') OPERATOR(pg_catalog.=) 'RecoveryWalStream'
                    AND NOT pg_catalog.pg_is_wal_replay_paused() THEN 0
               WHEN s.replay_age OPERATOR(pg_catalog.<) 0 THEN 0
               ELSE s.replay_age END AS replay_delay_ms,
          pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE') AS receiver_visible,
          w.status AS receiver_status,
          CASE WHEN w.receipt_age OPERATOR(pg_catalog.<) 0 THEN 0 ELSE w.receipt_age END AS receiver_silence_ms,
          CASE WHEN s.in_recovery THEN COALESCE(w.received_tli, (pg_catalog.pg_control_checkpoint()).timeline_id)
               ELSE ('x' OPERATOR(pg_catalog.||) pg_catalog.substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int
          END AS timeline
        """

    private static let replicationSource = """
        FROM (SELECT pg_catalog.pg_is_in_recovery() AS in_recovery,
                     pg_catalog.pg_last_wal_receive_lsn() AS received,
                     pg_catalog.pg_last_wal_replay_lsn() AS replayed,
                     (extract(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.pg_last_xact_replay_timestamp())
                        OPERATOR(pg_catalog.*) 1000)::bigint AS replay_age) s
          LEFT JOIN (SELECT status, received_tli, latest_end_lsn,
                            (extract(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) last_msg_receipt_time)
                               OPERATOR(pg_catalog.*) 1000)::bigint AS receipt_age
                     FROM pg_catalog.pg_stat_wal_receiver) w ON true
        """

    /// The replication statement with the connection slots that the agent's
    /// `maxconn` is made of (``ConnectionSlots``, read by
    /// ``RoleProbe/SlotsColumn``), so still one round trip;
    /// `$1` is the `maxconn_role` (may be NULL). Sessions are counted by
    /// client address, not for the asking HAProxy alone, so that one probe
    /// (and one result cache entry) serves every HAProxy.
    ///
    /// Settings come from `current_setting`, whose `missing_ok` form reads a
    /// setting the server does not have as NULL: `reserved_connections`
    /// (PostgreSQL 16) counts as 0 on 15. (`pg_settings` would build every
    /// setting's row for each lookup: with it the statement cost 3 ms more.)
    /// A client backend is what takes one of `max_connections`' slots
    /// (walsenders, autovacuum and background workers have their own). The
    /// check role's own sessions are left out, because the slots kept for
    /// the checks already cover them; a unix-socket session has no address
    /// and counts as elsewhere. Sessions are read from
    /// `pg_stat_get_activity`, the function under `pg_stat_activity`, and
    /// roles compared by oid, which spares planning the view's joins; the
    /// oids come from `pg_roles` by exact name, as the limits do
    /// (`to_regrole` would read `App` as `app` and reject `app.user`).
    /// Without `pg_read_all_stats` other roles' addresses read as NULL, so
    /// the counts are NULL then, never a guess.
    private static let connectionSlotsSQL = """
        SELECT \(replicationColumns),
          pg_catalog.current_setting('max_connections')::int AS max_connections,
          pg_catalog.current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections,
          COALESCE(pg_catalog.current_setting('reserved_connections', true)::int, 0) AS reserved_connections,
          l.check_role_limit,
          CASE WHEN pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE') THEN c.client_sessions END AS client_sessions,
          l.client_role_limit,
          CASE WHEN pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE') THEN c.client_role_sessions END AS client_role_sessions,
          CASE WHEN pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE') THEN c.sessions_by_address END AS sessions_by_address
        \(replicationSource)
          CROSS JOIN (SELECT pg_catalog.max(rolconnlimit) FILTER (WHERE rolname OPERATOR(pg_catalog.=) CURRENT_USER) AS check_role_limit,
                         pg_catalog.max(oid) FILTER (WHERE rolname OPERATOR(pg_catalog.=) CURRENT_USER) AS check_role,
                         pg_catalog.max(rolconnlimit) FILTER (WHERE rolname OPERATOR(pg_catalog.=) $1) AS client_role_limit,
                         pg_catalog.max(oid) FILTER (WHERE rolname OPERATOR(pg_catalog.=) $1) AS client_role
                  FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) CURRENT_USER OR rolname OPERATOR(pg_catalog.=) $1) l
          CROSS JOIN LATERAL (SELECT COALESCE(pg_catalog.sum(g.sessions), 0)::int AS client_sessions,
                         COALESCE(pg_catalog.sum(g.role_sessions), 0)::int AS client_role_sessions,
                         pg_catalog.string_agg(pg_catalog.host(g.addr) OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) g.sessions::text
                                                 OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) g.role_sessions::text, ',')
                           FILTER (WHERE g.addr IS NOT NULL) AS sessions_by_address
                  FROM (SELECT a.client_addr AS addr, pg_catalog.count(a.pid) AS sessions,
                               pg_catalog.count(a.pid) FILTER (WHERE a.usesysid OPERATOR(pg_catalog.=) l.client_role) AS role_sessions
                        FROM pg_catalog.pg_stat_get_activity(NULL) a
                        WHERE a.backend_type OPERATOR(pg_catalog.=) 'client backend'
                          AND a.usesysid OPERATOR(pg_catalog.<>) l.check_role
                        GROUP BY a.client_addr) g) c
        """

    /// What ``NodePosition`` reads: the same statement for the local node
    /// (after its own probe statement, with peers only) and for every peer. A standby's
    /// received timeline needs `pg_read_all_stats` (`pg_monitor`); without it
    /// the newest of the last restartpoint's and the minimum recovery point's
    /// timelines stands in, which can trail a timeline switch by up to
    /// `checkpoint_timeout`. `port` is readable by any role.
    private static let positionSQL = askingPosition(listingStandbys: false)

    /// ``position`` with, on a primary, its senders' sync states
    /// (``StreamingStandby/list(from:answering:)``; the slot a sender holds is the one
    /// whose `active_pid` is the sender's): what `/synchronous` asks the
    /// peers, and only it, since it scans the server's backends.
    private static let standbyListSQL = askingPosition(listingStandbys: true)

    /// ``standbyList`` with what the cluster view shows of a node: its WAL
    /// positions (a primary's current one, a standby's received and replayed
    /// ones; a promoted node keeps the last two, which no longer mean
    /// anything) and its WAL receiver's state, slot and `conninfo` (how its
    /// primary knows it, as ``standbyIdentity`` reads them; NULL without
    /// `pg_read_all_stats`). Only `/cluster` and `-o cluster` send it.
    private static let memberSQL = askingPosition(listingStandbys: true, describingMember: true)

    private static func askingPosition(listingStandbys: Bool, describingMember: Bool = false) -> String {
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
        \(standbys)\(describingMember ? ",\n" + memberColumns : "")
        FROM (SELECT pg_catalog.pg_is_in_recovery() AS in_recovery) s\(describingMember ? memberSource : "")
        """
    }

    /// The columns ``member`` adds, over `s` and the receiver `m`.
    private static let memberColumns = """
          CASE WHEN NOT s.in_recovery THEN pg_catalog.pg_current_wal_lsn() END AS current_lsn,
          CASE WHEN s.in_recovery THEN pg_catalog.pg_last_wal_receive_lsn() END AS received_lsn,
          CASE WHEN s.in_recovery THEN pg_catalog.pg_last_wal_replay_lsn() END AS replayed_lsn,
          pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE') AS receiver_visible,
          m.status AS receiver_status, m.slot_name AS slot_name, m.conninfo AS conninfo
        """

    private static let memberSource = "\n  LEFT JOIN pg_catalog.pg_stat_wal_receiver m ON true"

    /// What ``StandbyIdentity`` reads, on the standby's probe connection
    /// after the replication statement.
    private static let standbyIdentitySQL = """
        SELECT (pg_catalog.pg_control_system()).system_identifier AS system_identifier,
          w.slot_name AS slot_name, w.conninfo AS conninfo
        FROM (SELECT 1) one LEFT JOIN pg_catalog.pg_stat_wal_receiver w ON true
        """

    /// The privileges ``Preflight`` asks about, on the login's connection.
    private static let privilegesSQL = """
        SELECT r.rolname AS role, r.rolsuper AS superuser,
          pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE') AS reads_all_stats
        FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER
        """
}
