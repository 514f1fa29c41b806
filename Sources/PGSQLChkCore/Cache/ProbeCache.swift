#if canImport(Glibc)
import Glibc
#endif

/// The one place ``HealthCheck`` asks for a probe's outcome: through the
/// ``ResultCache`` when it applies to this check, straight from the probe
/// otherwise.
///
/// The cache applies to a check connection when its TTL is not zero. A hand
/// run probes afresh unless `--cache-ttl` is on its own command line (an
/// inherited `PGSQLCHK_CACHE_TTL` does not count), because an admin wants the
/// truth now.
struct ProbeCache {
    let configuration: Configuration
    let mode: Mode
    let report: (String) -> Void

    var applies: Bool {
        guard configuration.cache.isEnabled else { return false }
        return mode == .checkConnection || configuration.cache.ttlOnCommandLine
    }

    /// Whether a check of `depth` goes through the cache: not the cluster
    /// view, which people read a request at a time, and whose nodes' WAL
    /// positions and receivers an entry does not keep.
    func shares(_ depth: ProbeDepth) -> Bool {
        applies && depth != .cluster
    }

    /// The outcome, its age (nil when the cache is off, or could not be
    /// used) and how long the probe that found it took.
    func outcome(depth: ProbeDepth, maxconn: MaxconnRequest? = nil, before deadline: Deadline,
                 probe: () -> Result<NodeState, ProbeFailure>) -> ResultCache.Answer {
        guard shares(depth) else { return ResultCache.probing(probe, age: nil).answer }
        // A guarded probe carries its position and the peers' answers: the
        // peers list keys it apart from an unguarded probe of the same node,
        // and the deadline too, because a peer that did not answer in time
        // within a short one would have within another (HealthCheck's
        // peersDeadline is a share of it). Connection slots are counted for
        // one client role, by address for every HAProxy: an entry a role,
        // whichever HAProxy asks.
        var key = CacheKey(configuration.connection, depth: depth, environment: CacheKey.processEnvironment(), user: geteuid())
            .adding("peers", configuration.peers.isEmpty ? nil : configuration.peers.map(\.description).joined(separator: ","))
        if !configuration.peers.isEmpty {
            key = key.adding("timeout", configuration.timeout.description)
        }
        if depth == .connectionSlots {
            key = key.adding("maxconn_role", maxconn?.clientRole)
        }
        return ResultCache(settings: configuration.cache, report: report).outcome(for: key, before: deadline, probe: probe)
    }
}
