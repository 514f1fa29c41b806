#if canImport(Glibc)
import Glibc
#endif
import ParsedResponse
@testable import PGSQLChkCore
import Testing

extension LiveServers {
    /// Role endpoints, lag-aware standbys, the drain file, the agent protocol and
    /// the human and JSON views, against the real primary and standby. The lag
    /// tests pause replay and stop the primary for a moment.
    @Suite("Endpoints and standby signals against a real primary and standby")
    struct EndpointTests {
        let cluster: TestCluster

        init() throws { cluster = try TestCluster.required() }

        func ask(_ request: String, node: Node, user: String = "pgsqlchk", options: [String] = []) -> ChildResult {
            Child.run([TestCluster.binary, "-h", cluster.socketDirectory, "-p", cluster.port(of: node), "-U", user, "-d", "postgres"] + options,
                      input: .socket(request: request, hangUp: false))
        }

        func get(_ target: String, node: Node, user: String = "pgsqlchk", options: [String] = []) throws -> ParsedResponse {
            let result = ask("GET \(target) HTTP/1.1\r\nHost: test\r\n\r\n", node: node, user: user, options: options)
            return try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
        }

        @Test("each endpoint answers each role", arguments: [
            ("/", Node.primary, 200, "primary"), ("/", .standby, 206, "standby"),
            ("/primary", .primary, 200, "primary"), ("/primary", .standby, 503, "not the primary: standby"),
            ("/read-write", .primary, 200, "primary"), ("/master", .standby, 503, "not the primary: standby"),
            ("/leader", .primary, 200, "primary"),
            ("/replica", .primary, 503, "not a standby: primary"), ("/replica", .standby, 200, "standby"),
            ("/standby", .standby, 200, "standby"),
            ("/read-only", .primary, 200, "primary"), ("/read-only", .standby, 200, "standby"),
            ("/health", .primary, 200, "primary"), ("/health", .standby, 200, "standby"),
            ("/replica?lag=16MB", .standby, 200, "standby"),
        ])
        func endpointByRole(target: String, node: Node, status: Int, body: String) throws {
            let response = try get(target, node: node)
            #expect(response.status == status)
            #expect(response.body == body)
            #expect(response.headers["x-pgsqlchk-role"] == (node == .primary ? "primary" : "standby"))
            // Only checks that ask for replication signals learn the timeline.
            #expect((response.headers["x-pgsqlchk-timeline"].flatMap { Int($0) } != nil) == target.contains("?"))
        }

        @Test("/status and Accept: application/json answer the JSON document")
        func json() throws {
            let status = try get("/status", node: .standby)
            #expect(status.status == 200)
            #expect(status.headers["content-type"] == "application/json")
            #expect(status.body.hasPrefix("{\"status\": 200, \"role\": \"standby\", \"in_recovery\": true, \"timeline\": "))
            // Not 0: a record the primary flushed a moment ago may still be
            // on its way (seen on a fresh PostgreSQL 18 cluster); the lag
            // tests check the value.
            let lag = status.body.firstRange(of: "\"lag_bytes\": ").map { status.body[$0.upperBound...].prefix { $0.isNumber } }
            #expect(lag.flatMap { Int($0) } != nil, "lag_bytes is not a number in \(status.body)")
            let result = ask("GET /primary HTTP/1.1\r\nAccept: application/json\r\n\r\n", node: .standby)
            let response = try #require(ParsedResponse(result.output))
            #expect(response.status == 503)
            #expect(response.body.hasSuffix("\"reason\": \"not the primary: standby\"}"))
        }

        @Test("HEAD gets the status and headers, no body")
        func head() throws {
            let result = ask("HEAD /primary HTTP/1.1\r\n\r\n", node: .primary)
            #expect(result.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(result.text.hasSuffix("Connection: close\r\n\r\n"))
            #expect(result.text.contains("Content-Length: 8\r\n"))
        }

        @Test("malformed, unknown and oversized requests get a clear 4xx and never touch the database", arguments: [
            ("DELETE / HTTP/1.1\r\n\r\n", 405, "method \"DELETE\" not allowed; use GET, HEAD or OPTIONS"),
            ("GET /slave HTTP/1.1\r\n\r\n", 400, "unknown endpoint \"/slave\"; try /, /primary, /replica, /read-only, /health, /status, /liveness, /readiness, /synchronous, /asynchronous, /metrics or /cluster"),
            ("GET /replica?lag=garbage HTTP/1.1\r\n\r\n", 400, "invalid lag \"garbage\": expected bytes such as 1048576, 16MB or 1GB"),
            ("garbage\r\n\r\n", 400, "malformed request line; expected e.g. GET /replica HTTP/1.1"),
            ("GET /" + String(repeating: "a", count: 9_000) + " HTTP/1.1\r\n\r\n", 400, "request head too large"),
        ])
        func refusedRequests(request: String, status: Int, reason: String) throws {
            let result = ask(request, node: .primary, user: "no_such_role")
            let response = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            #expect(response.status == status)
            #expect(response.body == reason)
            #expect(result.status == 4)
        }

        @Test("the drain file answers 404 maintenance until it is removed")
        func drainFile() throws {
            let flag = cluster.runDirectory + "/maintenance-test"
            let options = ["-m", flag]
            #expect(try get("/", node: .primary, options: options).status == 200)
            let file = try #require(fopen(flag, "w"))
            fclose(file)
            let drained = try get("/", node: .primary, options: options)
            #expect(drained.status == 404)
            #expect(drained.body == "maintenance")
            #expect(try get("/status", node: .primary, options: options).body.contains("\"maintenance\": true"))
            #expect(try get("/health", node: .primary, options: options).status == 200)
            unlink(flag)
            #expect(try get("/", node: .primary, options: options).status == 200)
        }

        @Test("the agent protocol answers one line, with agent-send read as parameters", arguments: [
            ("", Node.primary, "ready up 100%\n"),
            ("lag=16MB\n", .standby, "ready up 100%\n"),
            ("replication_state=streaming\n", .standby, "ready up 100%\n"),
            ("lag=lots\n", .standby, "down #agent-send: invalid lag \"lots\": expected bytes such as 1048576, 16MB or 1GB\n"),
        ])
        func agent(sent: String, node: Node, reply: String) {
            let result = ask(sent, node: node, options: ["--agent"])
            #expect(result.text == reply)
        }

        @Test("a role without pg_monitor cannot see the WAL receiver, so lag and streaming are unknown and never pass", arguments: [
            ("replication_state=streaming\n", "down #replication state not visible to the monitoring role (grant pg_monitor)\n"),
            ("lag=16MB\n", "down #replication lag unknown (not visible to the monitoring role; grant pg_monitor)\n"),
            ("replay_backlog=16MB\n", "ready up 100%\n"),
        ])
        func withoutMonitor(sent: String, reply: String) {
            #expect(ask(sent, node: .standby, user: "filler", options: ["--agent"]).text == reply)
        }

        @Test("maxconn_role names a role exactly: an upper-case, dotted name's limit and sessions are its own, never folded or refused")
        func maxconnRoleExactName() throws {
            let superuser = try #require(cluster.direct(.primary))
            _ = try superuser.value("""
                DO $$ BEGIN CREATE ROLE "Maxconn.Role" LOGIN CONNECTION LIMIT 4;
                EXCEPTION WHEN duplicate_object THEN NULL; END $$
                """).get()
            // The role's WAL must be replayed before the next test reads the
            // standby's lag as 0.
            let written = try superuser.value("SELECT pg_catalog.pg_current_wal_lsn()").get()
            try #require(cluster.waitFor(.standby, "SELECT pg_catalog.pg_last_wal_replay_lsn() >= '\(written)'"), "replay never caught up")
            // Two sessions of it over the unix socket: never this check's peer.
            let held = ClientFlood(count: 2, conninfo: "host=\(cluster.socketDirectory) port=\(cluster.primaryPort) user=Maxconn.Role dbname=postgres")
            held.drive(seconds: 3, untilSettled: true)
            try #require(held.connected == 2, "could not hold two sessions as \"Maxconn.Role\"")
            // check_slots=0 leaves the node's share well above the role's 4 - 2.
            let reply = ask("maxconn=auto&maxconn_role=Maxconn.Role&check_slots=0\n", node: .primary, options: ["--agent"]).text
            #expect(reply == "ready up 100% maxconn:2\n")
        }

        @Test("by hand, a summary line or the JSON document")
        func handOutputs() {
            let summary = Child.run([TestCluster.binary, "-h", cluster.socketDirectory, "-p", cluster.standbyPort, "-U", "pgsqlchk", "-d", "postgres",
                                     "-o", "summary"], input: .null)
            #expect(summary.text.hasPrefix("standby, timeline "))
            #expect(summary.text.contains(", PostgreSQL 1"))
            #expect(summary.text.hasSuffix("lag 0 bytes, WAL receiver streaming\n"))
            #expect(summary.status == 1)
            let json = Child.run([TestCluster.binary, "-h", cluster.socketDirectory, "-p", cluster.primaryPort, "-U", "pgsqlchk", "-d", "postgres",
                                  "-o", "json", "-e", "/replica"], input: .null)
            #expect(json.text.hasPrefix("{\"status\": 503, \"role\": \"primary\""))
            #expect(json.status == 2)
        }

        @Test("real lag trips the byte and delay limits, both ways, and an idle primary never looks like lag")
        func lag() throws {
            try #require(cluster.sql(.standby, "SELECT pg_catalog.pg_wal_replay_pause()") != nil)
            var resumed = false
            defer { if !resumed { _ = cluster.sql(.standby, "SELECT pg_catalog.pg_wal_replay_resume()") } }
            try #require(cluster.sql(.primary, "CREATE TABLE IF NOT EXISTS lag_test AS SELECT g FROM generate_series(1, 200000) g; "
                                     + "INSERT INTO lag_test SELECT g FROM generate_series(1, 100000) g") != nil)
            let target = try #require(cluster.sql(.primary, "SELECT pg_catalog.pg_current_wal_lsn()"))
            try #require(cluster.waitFor(.standby, "SELECT pg_catalog.pg_last_wal_receive_lsn() >= '\(target)'"), "the standby never received the WAL")

            let lagging = try get("/replica?lag=1MB", node: .standby)
            #expect(lagging.status == 503)
            #expect(lagging.body.hasPrefix("replication lag "))
            #expect(lagging.body.hasSuffix(" exceeds maximum 1 MB"))
            #expect(try get("/replica?lag=1GB", node: .standby).status == 200)
            #expect(try get("/", node: .standby, options: ["--max-lag=1MB"]).status == 503)
            usleep(1_200_000)
            let delayed = try get("/read-only?replay_delay=1s", node: .standby)
            #expect(delayed.status == 503)
            #expect(delayed.body.hasPrefix("replay delay "))
            #expect(try get("/status", node: .standby).body.contains("\"replay_paused\": true"))

            try #require(cluster.sql(.standby, "SELECT pg_catalog.pg_wal_replay_resume()") != nil)
            resumed = true
            try #require(cluster.waitFor(.standby, "SELECT pg_catalog.pg_last_wal_replay_lsn() >= '\(target)'"), "replay never caught up")
            #expect(try get("/replica?lag=1MB", node: .standby).status == 200)
            usleep(1_200_000)
            // Nothing left to replay: the delay is zero however old the last replayed change.
            #expect(try get("/replica?replay_delay=1s&lag=1MB", node: .standby).status == 200)
            _ = cluster.sql(.primary, "DROP TABLE lag_test")
        }

        @Test("lag is measured against the primary: with the receiver stopped while the primary writes on it is unknown, where the replay backlog sees nothing")
        func lagAgainstThePrimary() throws {
            let conninfo = try #require(cluster.sql(.standby, "SHOW primary_conninfo"))
            let restore = "ALTER SYSTEM SET primary_conninfo = '" + conninfo.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'"
            try #require(cluster.sql(.standby, "ALTER SYSTEM SET primary_conninfo = ''") != nil)
            defer {
                _ = cluster.sql(.standby, restore)
                _ = cluster.sql(.standby, "SELECT pg_catalog.pg_reload_conf()")
                _ = cluster.waitFor(.standby, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_wal_receiver WHERE status = 'streaming')")
            }
            _ = cluster.sql(.standby, "SELECT pg_catalog.pg_reload_conf()")
            try #require(cluster.waitFor(.standby, "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_wal_receiver)"), "the receiver never stopped")
            try #require(cluster.sql(.primary, "CREATE TABLE lag_unseen AS SELECT g FROM generate_series(1, 50000) g; DROP TABLE lag_unseen") != nil)

            let lag = try get("/replica?lag=1GB", node: .standby)
            #expect(lag.status == 503)
            #expect(lag.body == "replication lag unknown (WAL receiver not running)")
            #expect(try get("/replica?replay_backlog=1GB", node: .standby).status == 200)
        }

        @Test("an unknown primary position is an unknown lag, never 0: the probe's own columns on the standby, over a receiver row without latest_end_lsn",
              arguments: [("NULL", "unknown"), ("'0/3000200'", "184"), ("'0/3000100'", "0")])
        func lagOfUnknownPrimaryPosition(primaryPosition: String, behind: String) throws {
            // A new receiver has no latest_end_lsn until its first message:
            // a moment too short to catch, so the row is made here.
            let probed = "SELECT \(Statement.replicationColumns)\n"
                + "FROM (VALUES (true, '0/3000148'::pg_lsn, '0/3000148'::pg_lsn, 0::bigint)) s(in_recovery, received, replayed, replay_age)\n"
                + "LEFT JOIN (VALUES ('streaming'::text, 1, \(primaryPosition)::pg_lsn, 0::bigint)) w(status, received_tli, latest_end_lsn, receipt_age) ON true"
            let found = cluster.sql(.standby, "SELECT COALESCE(behind_primary_bytes::text, 'unknown') FROM (\(probed)) q")
            #expect(found == behind)
        }

        @Test("a standby that has replayed every whole record it has is not delayed, however old its last commit; paused replay still is")
        func replayDelayOfAPartialRecord() throws {
            // A commit to date replay by, replayed, then older than the limit.
            try #require(cluster.sql(.primary, "SELECT pg_catalog.txid_current()") != nil)
            let committed = try #require(cluster.sql(.primary, "SELECT pg_catalog.pg_current_wal_lsn()"))
            try #require(cluster.waitFor(.standby, "SELECT pg_catalog.pg_last_wal_replay_lsn() >= '\(committed)'"), "replay never caught up")
            usleep(1_500_000)
            // A 1 MB record whose first pages the WAL writer flushes (and the
            // sender sends) while its end waits 4 s for the transaction's end.
            let partial = "BEGIN; SELECT pg_catalog.pg_logical_emit_message(false, 'pgsqlchk', repeat('x', 1000000)); SELECT pg_catalog.pg_sleep(4); COMMIT"
            let script = TestCluster.repository + "/scripts/cluster.sh"
            _ = Child.run(["/bin/bash", "-c", "bash \"$0\" psql primary -c \"$1\" >/dev/null 2>&1 &", script, partial], input: .null,
                          environment: Child.projectEnvironment())
            try #require(cluster.waitFor(.standby, "SELECT pg_catalog.pg_last_wal_receive_lsn() > pg_catalog.pg_last_wal_replay_lsn()"),
                         "the standby never received part of the record")
            let caughtUp = try get("/replica?replay_delay=1s", node: .standby)
            #expect(caughtUp.status == 200, "\(caughtUp.body)")
            #expect(try get("/status", node: .standby).body.contains("\"replay_delay_seconds\": 0,"))
            try #require(cluster.waitFor(.standby, "SELECT pg_catalog.pg_last_wal_receive_lsn() = pg_catalog.pg_last_wal_replay_lsn()"),
                         "the record never completed")

            try #require(cluster.sql(.standby, "SELECT pg_catalog.pg_wal_replay_pause()") != nil)
            defer { _ = cluster.sql(.standby, "SELECT pg_catalog.pg_wal_replay_resume()") }
            try #require(cluster.waitFor(.standby, "SELECT pg_catalog.pg_get_wal_replay_pause_state() = 'paused'"))
            try #require(cluster.sql(.primary, "SELECT pg_catalog.txid_current()") != nil)
            let unreplayed = try #require(cluster.sql(.primary, "SELECT pg_catalog.pg_current_wal_lsn()"))
            try #require(cluster.waitFor(.standby, "SELECT pg_catalog.pg_last_wal_receive_lsn() >= '\(unreplayed)'"), "the standby never received the commit")
            // The delay is the age of the last commit replayed, the one that
            // ended the record above, moments before the pause: older than
            // the limit once this much has passed.
            usleep(1_200_000)
            let paused = try get("/replica?replay_delay=1s", node: .standby)
            #expect(paused.status == 503)
            #expect(paused.body.hasPrefix("replay delay ") && paused.body.hasSuffix("s exceeds maximum 1s"), "\(paused.body)")
        }

        @Test("a role that can read pg_stat_wal_receiver sees the receiver stop when the primary goes")
        func receiverState() throws {
            let streaming = try get("/replica?replication_state=streaming", node: .standby, user: "postgres")
            #expect(streaming.status == 200)
            try #require(cluster.script("pg_ctl", "primary", "stop", "-m", "fast"))
            defer {
                cluster.script("pg_ctl", "primary", "start", "-w")
                _ = cluster.waitFor(.standby, "SELECT status = 'streaming' FROM pg_catalog.pg_stat_wal_receiver")
            }
            #expect(cluster.waitFor(.standby, "SELECT count(*) = 0 OR bool_and(status <> 'streaming') FROM pg_catalog.pg_stat_wal_receiver"))
            let stopped = try get("/replica?replication_state=streaming", node: .standby, user: "postgres")
            #expect(stopped.status == 503)
            #expect(stopped.body.hasPrefix("WAL receiver "))
            #expect(try get("/replica", node: .standby, user: "postgres").status == 200)
        }
    }
}

extension TestCluster {
    /// Runs `sql` as postgres on `node` with the real psql; its unaligned
    /// output, or nil when psql failed.
    func sql(_ node: Node, _ sql: String) -> String? {
        let result = Child.run(["/bin/bash", TestCluster.repository + "/scripts/cluster.sh", "psql", node.rawValue, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                               input: .null, environment: Child.projectEnvironment())
        guard result.status == 0 else { return nil }
        return String(result.text.split(separator: "\n").last ?? "")
    }

    /// Polls `query` (which returns one boolean) on `node` until it is true, for up to ten seconds.
    func waitFor(_ node: Node, _ query: String) -> Bool {
        let giveUp = monotonicSeconds() + 10
        while monotonicSeconds() < giveUp {
            if sql(node, query) == "t" { return true }
            usleep(100_000)
        }
        return false
    }
}
