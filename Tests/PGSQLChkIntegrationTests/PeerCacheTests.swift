import ParsedResponse
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The peers' answers are part of the probe's outcome, so the result cache
/// shares them: a storm of checks on a guarded primary costs each peer one
/// connection a TTL.
extension StalePrimaryGuardTests {
    /// Sessions `node` has ended in database postgres since its start
    /// (`pg_stat_database.sessions`), once the count has held still for
    /// half a second: a backend reports its session when it exits, just
    /// after its client has gone. Read from template1, so that reading
    /// never counts itself.
    func endedSessions(on node: GuardNode) throws -> Int {
        var last = -1
        for _ in 0..<20 {
            usleep(500_000)
            let now = try #require(Int(try cluster.query(node, "SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'",
                                                                  database: "template1")))
            if now == last { return now }
            last = now
        }
        return last
    }

    @Test("with the result cache, twenty checks of a guarded primary cost a peer one connection; without it, twenty")
    func peersShareTheCache() throws {
        try cluster.reset()
        let cacheDirectory = cluster.runDirectory + "/guard-cache"
        mkdir(cacheDirectory, 0o700)
        let checks = 20

        let start = try endedSessions(on: .standby2)
        for _ in 0..<checks {
            let answer = try response(cluster.check(.primary, options: ["--cache-ttl", "30s", "--cache-dir", cacheDirectory]))
            #expect(answer.status == 200)
        }
        let cached = try endedSessions(on: .standby2) - start
        for _ in 0..<checks {
            #expect(try response(cluster.check(.primary)).status == 200)
        }
        let uncached = try endedSessions(on: .standby2) - start - cached
        #expect(cached == 1, "peer connections for \(checks) cached checks")
        #expect(uncached == checks, "peer connections for \(checks) checks without the cache")
    }
}
