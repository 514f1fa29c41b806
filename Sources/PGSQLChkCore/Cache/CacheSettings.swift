/// How long a probe's outcome may answer other checks, and where it is kept
/// (README, "Result cache").
struct CacheSettings: Equatable, Sendable {
    /// Off unless the deployment turns it on: the cache needs a directory that
    /// only the check's user owns, which only the deployment can provide, and
    /// it adds up to one TTL to failover detection. The shipped samples turn
    /// it on with ``recommendedTTL``.
    static let defaultTTL = Milliseconds(0)

    /// What the samples use: one probe a second per node and question, and at
    /// most one second more before HAProxy sees a role change (README has the
    /// measurements and the trade-off against `inter`, `fastinter` and `fall`).
    static let recommendedTTL = Milliseconds(1_000)

    /// The longest TTL accepted: past a minute a cached role is a guess.
    static let maximumTTL = Milliseconds(60_000)

    /// A runtime directory: on tmpfs (no disk write per probe) and emptied
    /// at boot. xinetd needs it made for its user (README); systemd makes it
    /// with `RuntimeDirectory=pgsqlchk`.
    static let defaultDirectory = "/run/pgsqlchk"

    /// How long an outcome answers other checks; zero turns the cache off.
    var ttl = CacheSettings.defaultTTL

    /// Where entries and their locks live.
    var directory = CacheSettings.defaultDirectory

    /// Whether `--cache-ttl` was on the command line: a hand run uses the
    /// cache only then, because an admin wants the truth now.
    var ttlOnCommandLine = false

    var isEnabled: Bool { ttl.value > 0 }
}
