/// Everything one check needs to know before it starts.
struct Configuration: Equatable, Sendable {
    /// The default deadline for the whole check, connect to last byte written.
    ///
    /// HAProxy's `timeout check` defaults to `inter` (2 s); answering a little
    /// before it lets HAProxy read our 503 and its reason instead of logging a
    /// bare "Layer7 timeout".
    static let defaultTimeout = Milliseconds(1_500)

    /// The longest deadline accepted, so a typo cannot park a checker for hours.
    static let maximumTimeout = Milliseconds(3_600_000)

    /// Names this program in `pg_stat_activity` unless the user sets
    /// `application_name` (libpq: `fallback_application_name`).
    static let applicationName = "pgsqlchk"

    /// Where an admin drops a file to take the node out of rotation. It
    /// survives a reboot on purpose: a node under maintenance stays drained
    /// until the admin says otherwise.
    static let defaultMaintenanceFile = "/etc/pgsqlchk/maintenance"

    /// Where the stale-primary guard keeps its fence (``FenceFile``): state
    /// that must survive a reboot, as the FHS's /var/lib is for.
    static let defaultStateDirectory = "/var/lib/pgsqlchk"

    /// What the command line says about the connection.
    var connection = ConnectionSettings()

    /// The budget for the whole check.
    var timeout = Configuration.defaultTimeout

    /// The limits a standby must meet unless a request sets its own.
    var requirements = StandbyRequirements()

    /// The question asked when the peer sends none (a hand run, a plain TCP
    /// check): `--endpoint` read on top of ``requirements``.
    var question = CheckRequest()

    /// The drain file's path.
    var maintenanceFile = Configuration.defaultMaintenanceFile

    /// How a hand run prints the answer; a check connection always gets its dialect's.
    var output = OutputFormat.http

    /// HTTP, or HAProxy's agent-check protocol.
    var dialect = Dialect.http

    /// Every node of the cluster, this one included (`--peers`); empty turns
    /// the stale-primary guard off.
    var peers: [PeerAddress] = []

    /// How many nodes a primary must reach to answer 200 (`--quorum`); nil,
    /// the default, keeps a lone primary serving.
    var quorum: Quorum?

    /// The directory of the guard's fence files, one a node, which every
    /// node and cluster on a host may share.
    var stateDirectory = Configuration.defaultStateDirectory

    /// The result cache's TTL and directory.
    var cache = CacheSettings()
}

/// How a hand run prints its answer.
enum OutputFormat: String, CaseIterable, Sendable {
    /// Exactly what a check connection would receive: the HTTP response, or
    /// the agent's line.
    case http
    /// One line: `primary, timeline 3, PostgreSQL 15.18`.
    case summary
    /// The JSON status document.
    case json
    /// The cluster view as a table, one row per `--peers` node (``ClusterDocument``).
    case cluster
    /// Nothing: the exit status is the answer (`--probe`, for Kubernetes
    /// `exec` probes).
    case none
}
