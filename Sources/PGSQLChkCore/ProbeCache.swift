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

    /// The outcome and its age; the age is nil when the cache is off.
    func outcome(depth: ProbeDepth, maxconn: MaxconnRequest? = nil, before deadline: Deadline,
                 probe: () -> Result<NodeState, ProbeFailure>) -> (outcome: Result<NodeState, ProbeFailure>, age: Milliseconds?) {
        guard applies else { return (probe(), nil) }
        // A guarded probe carries its position and the peers' answers: the
        // peers list keys it apart from an unguarded probe of the same node.
        // Connection slots are counted for one client role, by address for
        // every HAProxy: an entry a role, whichever HAProxy asks.
        var key = CacheKey(configuration.connection, depth: depth, environment: CacheKey.processEnvironment(), user: geteuid())
            .adding("peers", configuration.peers.isEmpty ? nil : configuration.peers.map(\.description).joined(separator: ","))
        if depth == .connectionSlots {
            key = key.adding("maxconn_role", maxconn?.clientRole)
        }
        let answer = ResultCache(settings: configuration.cache, report: report).outcome(for: key, before: deadline, probe: probe)
        return (answer.outcome, answer.age)
    }
}
