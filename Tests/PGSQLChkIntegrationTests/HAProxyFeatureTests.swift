import ParsedResponse
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What haproxy/haproxy.cfg promises beyond routing by role, on the stack of
/// `scripts/stack.sh`: the drain file drains a node (`http-check
/// disable-on-404`), and the agent (xinetd/pgsqlchk-agent) weights a standby
/// by its replication lag. Each test leaves one primary and one caught-up
/// standby, whichever node is which.
@Suite("HAProxy drain and agent-check with pgsqlchk", .serialized, .enabled(if: TestStack.isEnabled, TestStack.skipReason))
struct HAProxyFeatureTests {
    let cluster: TestCluster
    let stack: TestStack

    init() throws {
        cluster = try TestCluster.required()
        stack = try TestStack.required()
    }

    static let lagTable = "feature_lag"

    /// Creates `node`'s drain file and watches `proxy/server` until NOLB;
    /// the caller removes the file.
    func drain(_ node: Node, _ proxy: String, _ server: String) throws -> TestStack.Transition {
        let path = stack.maintenanceFile(of: node)
        let descriptor = open(path, O_WRONLY | O_CREAT, 0o644)
        try #require(descriptor >= 0, "could not create \(path)")
        close(descriptor)
        let drained = stack.watch(proxy, server, seconds: 5) { $0["status"] == "NOLB" }
        print("feature: drain node \(node.rawValue) in \(proxy): \(drained.seen.joined(separator: " -> ")) after \(drained.seconds) s")
        return drained
    }

    /// A keyword's value on the rendered ReadOnly server lines (`agent-inter`,
    /// `agent-send`), as written; the ReadWrite servers' agent asks otherwise.
    func standbyServerSetting(_ keyword: String) -> String? {
        let line = stack.serverLines(of: "pg_readonly_standbys").first { $0.contains("agent-check") && $0.contains(" \(keyword) ") }
        let words = line?.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init) ?? []
        return words.firstIndex(of: keyword).flatMap { $0 + 1 < words.count ? words[$0 + 1] : nil }
    }

    var agentInterval: Double {
        let text = standbyServerSetting("agent-inter") ?? "2s"
        if text.hasSuffix("ms") { return Double(text.dropLast(2)).map { $0 / 1000 } ?? 2 }
        return Double(text.dropLast()) ?? 2
    }

    /// The `lag=` limit of the rendered `agent-send` line, in bytes.
    func agentLagLimit() -> Int64? {
        guard let sent = standbyServerSetting("agent-send"), let range = sent.firstRange(of: "lag=") else { return nil }
        let value = sent[range.upperBound...].prefix { $0.isLetter || $0.isNumber }
        let digits = value.prefix { $0.isNumber }
        let units: [Substring: Int64] = ["": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30]
        guard let number = Int64(digits), let unit = units[value.dropFirst(digits.count)] else { return nil }
        return number * unit
    }

    @Test("the drain file on a standby: NOLB, new reads go to the primary, a held read session lives on; removed, reads return")
    func drainStandby() throws {
        let (primary, standby) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        try #require(stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby)), "stats: \(stack.serverStates())")
        let server = TestStack.server(of: standby)
        let (primaryPort, standbyPort) = (cluster.port(of: primary), cluster.port(of: standby))
        let intervals = try #require(CheckIntervals(configuration: stack.directory + "/haproxy.cfg"))
        let held = try ClientConnection.open(TestStack.clientConninfo(port: stack.readOnlyPort)).get()
        try #require(try held.value("SELECT inet_server_port()").get() == standbyPort)
        let downBefore = stack.downLines("pg_readonly_standbys", server)

        let file = stack.maintenanceFile(of: standby)
        defer { unlink(file) }
        let drained = try drain(standby, "pg_readonly_standbys", server)
        #expect(drained.reached)
        // The next check sees the file: one `inter` plus the check itself.
        #expect(drained.seconds <= intervals.inter + 0.5)
        let reads = (0..<5).map { _ in (try? TestStack.through(stack.readOnlyPort, "SELECT inet_server_port()").get()) ?? "failed" }
        #expect(reads == Array(repeating: primaryPort, count: 5), "new reads while drained: \(reads)")
        #expect(try held.value("SELECT inet_server_port()").get() == standbyPort, "the held session was cut")
        // The agent drains it too (admin state 8: forced drain), within one agent-inter.
        let agentDrained = stack.waitUntil(seconds: agentInterval + 1) {
            stack.serverState("pg_readonly_standbys", server)?["srv_admin_state"] == "8"
        }
        #expect(agentDrained, "\(stack.serverState("pg_readonly_standbys", server) ?? [:])")

        unlink(file)
        // UP needs both: a 2xx check, and the agent's `ready`.
        let back = stack.watch("pg_readonly_standbys", server, seconds: 5) { $0["status"] == "UP" }
        print("feature: undrain node \(standby.rawValue) in pg_readonly_standbys: \(back.seen.joined(separator: " -> ")) after \(back.seconds) s")
        #expect(back.reached)
        #expect(back.seconds <= max(intervals.inter, agentInterval) + 0.5)
        #expect(try TestStack.through(stack.readOnlyPort, "SELECT inet_server_port()").get() == standbyPort)
        #expect(try held.value("SELECT inet_server_port()").get() == standbyPort, "the held session was cut")
        #expect(stack.downLines("pg_readonly_standbys", server) == downBefore, "the drained standby went DOWN")
    }

    @Test("the drain file on the primary: NOLB, not DOWN, so no write session is cut; writes go on through the stick entry")
    func drainPrimary() throws {
        let (primary, standby) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        try cluster.prepareWriteTable(on: primary)
        try #require(stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby)), "stats: \(stack.serverStates())")
        let server = TestStack.server(of: primary)
        let primaryPort = cluster.port(of: primary)
        let held = try ClientConnection.open(TestStack.clientConninfo(port: stack.readWritePort)).get()
        let write = "INSERT INTO \(TestStack.writeTable) VALUES (inet_server_port()) RETURNING port"
        try #require(try held.value(write).get() == primaryPort)
        let downBefore = stack.downLines("pg_readwrite", server)

        let file = stack.maintenanceFile(of: primary)
        defer { unlink(file) }
        let drained = try drain(primary, "pg_readwrite", server)
        #expect(drained.reached)
        // The ReadOnly fallback tracks it, so reads cannot fall back to it either.
        #expect(stack.serverStates()["pg_readonly_primary/\(server)"] == "NOLB")
        #expect(try held.value(write).get() == primaryPort, "the held write session was cut")
        // A NOLB server still takes persistent sessions: the stick entry names it.
        #expect(try TestStack.write(through: stack.readWritePort).get() == primaryPort)

        unlink(file)
        let back = stack.watch("pg_readwrite", server, seconds: 5) { $0["status"] == "UP" }
        print("feature: undrain node \(primary.rawValue) in pg_readwrite: \(back.seen.joined(separator: " -> ")) after \(back.seconds) s")
        #expect(back.reached)
        #expect(try held.value(write).get() == primaryPort, "the held write session was cut")
        #expect(stack.downLines("pg_readwrite", server) == downBefore, "the drained primary went DOWN")
    }

    @Test("the agent weights a standby by its replay lag: 100 caught up, less with real lag, 100 again once replay resumes")
    func agentWeightFollowsLag() throws {
        let (primary, standby) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        try #require(stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby)), "stats: \(stack.serverStates())")
        let server = TestStack.server(of: standby)
        let limit = try #require(agentLagLimit(), "no agent-send \"lag=...\" on the rendered ReadOnly servers")
        let settle = 2 * agentInterval + 1
        let caughtUp = stack.watch("pg_readonly_standbys", server, field: "weight", seconds: settle) { $0["weight"] == "100" && $0["status"] == "UP" }
        try #require(caughtUp.reached, "before any lag: \(caughtUp.seen)")

        let primaryConnection = try #require(cluster.direct(primary))
        let standbyConnection = try #require(cluster.direct(standby))
        _ = try primaryConnection.value("SET client_min_messages = warning").get()
        _ = try primaryConnection.value("DROP TABLE IF EXISTS \(Self.lagTable)").get()
        defer {
            _ = standbyConnection.value("SELECT pg_wal_replay_resume()")
            _ = primaryConnection.value("DROP TABLE IF EXISTS \(Self.lagTable)")
        }
        _ = try standbyConnection.value("SELECT pg_wal_replay_pause()").get()

        /// Writes `rows` rows on the primary, waits until the standby has
        /// received all of it, and returns the standby's lag in bytes.
        func produceLag(rows: Int) throws -> Int64 {
            _ = try primaryConnection.value("INSERT INTO \(Self.lagTable) SELECT g FROM generate_series(1, \(rows)) g").get()
            let written = try primaryConnection.value("SELECT pg_current_wal_lsn()").get()
            let received = stack.waitUntil(seconds: 5) {
                (try? standbyConnection.value("SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '\(written)') >= 0").get()) == "t"
            }
            try #require(received, "the standby did not receive up to \(written)")
            return try #require(Int64(try standbyConnection.value("SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())").get()))
        }
        _ = try primaryConnection.value("CREATE TABLE \(Self.lagTable) (g int)").get()

        // 1. Real lag within the limit: the weight the agent's rule gives.
        let lag = try produceLag(rows: 300_000)
        let expected = max(10, 100 - 90 * min(lag, limit) / limit)
        // Within one point: background WAL (autovacuum) may add a little lag.
        let lowered = stack.watch("pg_readonly_standbys", server, field: "weight", seconds: settle) { row in
            row["weight"].flatMap { Int64($0) }.map { abs($0 - expected) <= 1 } ?? false
        }
        print("feature: agent: lag \(lag) bytes of \(limit): weights \(lowered.seen.joined(separator: " -> ")) after \(lowered.seconds) s (expected \(expected))")
        #expect(expected < 100, "the lag produced (\(lag) bytes) is too small to lower the weight")
        #expect(lowered.reached)
        #expect(stack.statsRow("pg_readonly_standbys", server)?["status"] == "UP")

        // 2. Past the limit the agent answers `down #reason` (HAProxy 2.6
        // ignores `down#reason`: the description must start a word of its
        // own), and the lagging standby leaves the pool.
        let bytesPerRow = max(1, lag / 300_000)
        let pastLimit = try produceLag(rows: Int((limit - lag) / bytesPerRow * 5 / 4))
        #expect(pastLimit > limit)
        let down = stack.watch("pg_readonly_standbys", server, seconds: settle) { $0["status"]?.hasPrefix("DOWN") == true }
        print("feature: agent: lag \(pastLimit) bytes of \(limit): \(down.seen.joined(separator: " -> ")); last agent answer: \(stack.statsRow("pg_readonly_standbys", server)?["last_agt"] ?? "?")")
        #expect(down.reached, "a standby past the agent's lag limit stayed in the ReadOnly pool")

        // 3. Replay resumes: the standby catches up and gets its full weight back.
        let resumed = monotonicSeconds()
        _ = try standbyConnection.value("SELECT pg_wal_replay_resume()").get()
        let restored = stack.watch("pg_readonly_standbys", server, field: "weight", seconds: settle + 3) { $0["weight"] == "100" && $0["status"] == "UP" }
        print("feature: agent: replay resumed, weights \(restored.seen.joined(separator: " -> ")) within \(monotonicSeconds() - resumed) s")
        #expect(restored.reached)
    }

    @Test("the agent's ready ends a drain set on the admin socket, unless the agent is disabled first, as haproxy.cfg warns")
    func agentOverridesAdminDrain() throws {
        let (primary, standby) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        try #require(stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby)), "stats: \(stack.serverStates())")
        let target = "pg_readonly_standbys/\(TestStack.server(of: standby))"
        func adminState() -> String? { stack.serverState("pg_readonly_standbys", TestStack.server(of: standby))?["srv_admin_state"] }
        defer {
            stack.adminCommand("set server \(target) state ready")
            stack.adminCommand("enable agent \(target)")
        }

        try #require(stack.adminCommand("set server \(target) state drain") != nil)
        #expect(adminState() == "8")
        let undone = stack.waitUntil(seconds: agentInterval + 1) { adminState() == "0" }
        #expect(undone, "an admin's drain outlived the agent's next ready")

        stack.adminCommand("disable agent \(target)")
        stack.adminCommand("set server \(target) state drain")
        usleep(UInt32((agentInterval + 1) * 1_000_000))
        #expect(adminState() == "8", "with the agent disabled, the admin's drain should hold")
        stack.adminCommand("set server \(target) state ready")
        stack.adminCommand("enable agent \(target)")
        #expect(stack.waitForStates([target: "UP"]))
    }

    @Test("a 503's reason reaches HAProxy: its stats page's last_chk and its log's info, from the status line's reason phrase")
    func failedCheckReason() throws {
        let (primary, standby) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        try #require(stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby)), "stats: \(stack.serverStates())")
        let server = TestStack.server(of: standby)
        try #require(cluster.script("pg_ctl", standby.rawValue, "stop", "-m", "fast"))
        defer {
            cluster.script("pg_ctl", standby.rawValue, "start", "-w")
            _ = stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby), seconds: 20)
        }
        // What the standby's check answers now, asked as HAProxy asks it.
        let reply = try #require(tcpExchange(port: stack.checkPort(of: standby), request: "OPTIONS / HTTP/1.0\r\n\r\n"))
        let answer = try #require(ParsedResponse(reply), "not one strict HTTP response: \(String(decoding: reply, as: UTF8.self))")
        try #require(answer.status == 503)
        #expect(answer.reason == answer.body)

        let seen = stack.watch("pg_readonly_standbys", server, field: "last_chk", seconds: 5) { $0["last_chk"] == answer.body }
        #expect(seen.reached, "last_chk went \(seen.seen)")
        let logged = stack.waitUntil(seconds: 5) {
            TestStack.lines(of: stack.haproxyLog).contains {
                $0.hasPrefix("Health check for server pg_readonly_standbys/\(server) failed") && $0.contains("code: 503, info: \"\(answer.body)\"")
            }
        }
        #expect(logged, "no log line with the reason \(answer.body)")
    }
}
