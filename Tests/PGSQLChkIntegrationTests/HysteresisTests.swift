import ParsedResponse
import Testing

extension LiveServers {
    /// HAProxy's `http-check send-state` header against a standby with real
    /// lag: replay paused on the standby while the primary writes.
    @Suite("HAProxy's send-state against a standby with real lag")
    struct HysteresisTests {
        let cluster: TestCluster

        init() throws { cluster = try TestCluster.required() }

        /// What HAProxy 2.6 sends (captured from it), with `state` and `weight` filled in.
        static func serverState(_ state: String, weight: String) -> String {
            "x-haproxy-server-state: \(state); address=127.0.0.1; port=5432; name=pg_readonly_standbys/pg2; node=lb1; weight=\(weight); scur=0/0; qcur=0\r\n"
        }

        func get(_ target: String, header: String = "") throws -> ParsedResponse {
            let result = Child.run([TestCluster.binary, "-h", cluster.socketDirectory, "-p", cluster.standbyPort, "-U", "pgsqlchk", "-d", "postgres"],
                                   input: .socket(request: "GET \(target) HTTP/1.0\r\n\(header)\r\n", hangUp: false))
            return try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
        }

        /// The lag the check itself measures, from its `/status` document.
        func measuredLag() throws -> Int64 {
            let body = try get("/status").body
            let field = try #require(body.firstRange(of: "\"lag_bytes\": "), "no lag_bytes in \(body)")
            return try #require(Int64(body[field.upperBound...].prefix { $0.isNumber }), "lag_bytes is not a number in \(body)")
        }

        @Test("a lag between 75% of the limit and the limit: 206 while HAProxy has the standby UP, 503 with the rejoin reason while DOWN, 206 without the header")
        func betweenTheThresholds() throws {
            try #require(cluster.sql(.standby, "SELECT pg_catalog.pg_wal_replay_pause()") != nil)
            defer {
                _ = cluster.sql(.standby, "SELECT pg_catalog.pg_wal_replay_resume()")
                _ = cluster.sql(.primary, "DROP TABLE IF EXISTS hysteresis_lag")
            }
            try #require(cluster.sql(.primary, "CREATE TABLE hysteresis_lag AS SELECT g FROM generate_series(1, 300000) g") != nil)
            let written = try #require(cluster.sql(.primary, "SELECT pg_catalog.pg_current_wal_lsn()"))
            try #require(cluster.waitFor(.standby, "SELECT pg_catalog.pg_last_wal_receive_lsn() >= '\(written)'"), "the standby never received the WAL")
            try #require(cluster.waitFor(.standby, "SELECT latest_end_lsn >= '\(written)' FROM pg_catalog.pg_stat_wal_receiver"),
                         "the receiver never heard the primary's WAL end")
            let lag = try measuredLag()
            try #require(lag > 1 << 20, "too little lag to test with: \(lag) bytes")
            // Midway between the two thresholds (75% and 100% of the limit),
            // so a little background WAL cannot move it out of the band.
            let limit = lag * 8 / 7
            let threshold = limit * 3 / 4
            print("hysteresis: lag \(lag) bytes, limit \(limit), rejoin threshold \(threshold)")

            let up = try get("/?lag=\(limit)", header: Self.serverState("UP", weight: "100/200"))
            #expect(up.status == 206)
            #expect(up.body == "standby")
            let goingDown = try get("/replica?lag=\(limit)", header: Self.serverState("UP 1/3", weight: "100/200"))
            #expect(goingDown.status == 200)
            let down = try get("/?lag=\(limit)", header: Self.serverState("DOWN", weight: "100/0"))
            #expect(down.status == 503)
            #expect(down.body.hasPrefix("replication lag "))
            #expect(down.body.contains(" exceeds the rejoin threshold "))
            #expect(down.body.contains(" (75% of "))
            #expect(down.body.hasSuffix(") while HAProxy has it DOWN"), "\(down.body)")
            #expect(try get("/?lag=\(limit)", header: Self.serverState("DOWN 1/2", weight: "100/0")).status == 503)
            #expect(try get("/?lag=\(limit)&rejoin=100%25", header: Self.serverState("DOWN", weight: "100/0")).status == 206)
            #expect(try get("/?lag=\(limit)").status == 206)
            // A header that does not parse is as good as none: never a 400.
            let malformed = try get("/?lag=\(limit)", header: "X-Haproxy-Server-State: MAINT\r\n")
            #expect(malformed.status == 206)

            // Past the limit: 503 whatever HAProxy says, unless this is the
            // last usable standby and keep_last_standby=1 asks to keep it.
            let below = lag / 2
            #expect(try get("/?lag=\(below)", header: Self.serverState("UP", weight: "100/200")).status == 503)
            let kept = try get("/?lag=\(below)&keep_last_standby=1", header: Self.serverState("UP", weight: "100/100"))
            #expect(kept.status == 206)
            #expect(kept.body.hasSuffix(", kept as the only usable server of pg_readonly_standbys/pg2"), "\(kept.body)")
            #expect(try get("/?lag=\(below)&keep_last_standby=1", header: Self.serverState("UP", weight: "100/200")).status == 503)
            let agent = Child.run([TestCluster.binary, "--agent", "-h", cluster.socketDirectory, "-p", cluster.standbyPort, "-U", "pgsqlchk", "-d", "postgres"],
                                  input: .socket(request: "lag=\(below)&keep_last_standby=1\n", hangUp: false))
            #expect(agent.text == "ready up 10%\n")
        }
    }
}
