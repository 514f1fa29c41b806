/// The questions pgsqlchk answers, named as Patroni's REST API names them so
/// that HAProxy configurations written for Patroni carry over.
enum Endpoint: String, CaseIterable, Sendable {
    /// `/`: 200 primary, 206 standby (the classic answer HAProxy's default
    /// `OPTIONS /` check gets).
    case role = "/"
    /// `/primary` and its aliases: 200 only on a primary.
    case primary = "/primary"
    /// `/replica`, `/standby`: 200 only on a standby that meets the requirements.
    case replica = "/replica"
    /// `/read-only`: 200 on a primary or on a standby that meets the requirements.
    case readOnly = "/read-only"
    /// `/health`: 200 when PostgreSQL answers, whatever its role.
    case health = "/health"
    /// `/status`: the node's state as JSON, 200 when PostgreSQL answers.
    case status = "/status"
    /// `/liveness` (Kubernetes): 200 while the server responds at all, even to
    /// refuse the login (starting up, too many connections), as pg_isready
    /// counts "rejecting" apart from "no response".
    case liveness = "/liveness"
    /// `/readiness` (Kubernetes): 200 when the node can serve its role: the
    /// primary, or a streaming standby that meets the requirements.
    case readiness = "/readiness"
    /// `/synchronous`, `/sync`: 200 only on a standby that the primary
    /// counts for synchronous commit, asked through `--peers`.
    case synchronous = "/synchronous"
    /// `/asynchronous`, `/async`: 200 only on a standby the primary streams
    /// to without waiting for it (or through another standby).
    case asynchronous = "/asynchronous"
    /// `/metrics`: the node's state in Prometheus's text format, 200 whenever
    /// the check ran (`pgsqlchk_up` says whether PostgreSQL answered).
    case metrics = "/metrics"
    /// `/cluster`: every node of `--peers` as JSON (``ClusterDocument``),
    /// 200 when PostgreSQL answers, as `/status`.
    case cluster = "/cluster"

    /// Every path accepted, aliases included.
    static let paths: [(path: String, endpoint: Endpoint)] = [
        ("/", .role),
        ("/primary", .primary), ("/read-write", .primary), ("/master", .primary), ("/leader", .primary),
        ("/replica", .replica), ("/standby", .replica),
        ("/read-only", .readOnly),
        ("/health", .health),
        ("/status", .status),
        ("/liveness", .liveness),
        ("/readiness", .readiness),
        ("/synchronous", .synchronous), ("/sync", .synchronous),
        ("/asynchronous", .asynchronous), ("/async", .asynchronous),
        ("/metrics", .metrics),
        ("/cluster", .cluster),
    ]

    /// The endpoint a request path names, aliases included; nil for any other path.
    init?(path: String) {
        guard let match = Endpoint.paths.first(where: { $0.path == path }) else { return nil }
        self = match.endpoint
    }

    /// `/, /primary, /replica, ..., /metrics or /cluster`: the endpoints
    /// without their aliases, for a reason line.
    static let choices = Text.alternatives(allCases.map(\.rawValue))

    /// Whether the answer depends on what the primary says of this standby,
    /// so that a standby's check asks its peers.
    var asksPrimary: Bool { self == .synchronous || self == .asynchronous }

    /// Whether the answer routes traffic, so that the drain file and the
    /// stale-primary guard apply. `/health`, `/status`, `/liveness`,
    /// `/metrics` and `/cluster` report; they do not route.
    var routes: Bool {
        switch self {
        case .role, .primary, .replica, .readOnly, .readiness, .synchronous, .asynchronous: true
        case .health, .status, .liveness, .metrics, .cluster: false
        }
    }
}
