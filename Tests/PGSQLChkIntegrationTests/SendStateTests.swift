import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `http-check send-state` (haproxy/haproxy.cfg) with the real HAProxy of
/// `scripts/stack.sh` sending the header and acting on the answers, against
/// a standby with real lag (replay paused while the primary writes): the
/// last usable standby kept in rotation (`keep_last_standby=1`), and the
/// rejoin threshold keeping a DOWN standby out (README, "Hysteresis: listen
/// to HAProxy"). The shipped standby check asks no limit, so each test
/// restarts HAProxy with one, and restarts it as shipped when it ends. The
/// lag is fixed while replay is paused, so the limits are chosen around it
/// rather than the lag steered around a limit.
///
/// The standbys' agent is sent the same lag limit with `keep_last_standby=1`
/// throughout, as the README advises: it sees no header, so without that it
/// would answer `down` past the limit and take the server DOWN at its first
/// probe, and UP or DOWN would not be the HTTP check's. With it, its weight
/// of 10% in HAProxy's stats shows that it too saw the lag past the limit.
@Suite("HAProxy's send-state header: the last usable standby kept, the rejoin threshold held", .serialized,
       .enabled(if: TestStack.isEnabled, TestStack.skipReason))
struct SendStateTests {
    let cluster: TestCluster
    let stack: TestStack

    init() throws {
        cluster = try TestCluster.required()
        stack = try TestStack.required()
    }

    static let lagTable = "send_state_lag"

    /// The lag limit of the keep_last_standby test: 8 MB, well under the
    /// lag that `rowsPerWrite` rows make (about 19 MB, measured).
    static let keepLimit: Int64 = 8 << 20

    static let rowsPerWrite = 300_000

    /// The agent's weight for a standby past its limit with `keep_last_standby=1`
    /// (`ready up 10%` of the configured `weight 100`).
    static let minimumWeight = "10"

    /// Restarts HAProxy with the standbys' HTTP check asking `GET /?lag=LIMIT`
    /// (plus `&keep_last_standby=1` when `keepLastStandby`) and their agent
    /// `lag=LIMIT&keep_last_standby=1`; stack.sh waits until both nodes'
    /// servers are UP.
    func restartHAProxy(limit: Int64, keepLastStandby: Bool) -> Bool {
        // sed's replacement reads `&` as the whole match: escaped.
        let query = "lag=\(limit)" + (keepLastStandby ? "\\&keep_last_standby=1" : "")
        let section = "/^backend pg_readonly_standbys/,/^$/"
        let edits = [
            "\(section)s|^(\\s*option httpchk)$|\\1 GET /?\(query)|",
            "\(section)s|agent-send \"[^\"]*\"|agent-send \"lag=\(limit)\\&keep_last_standby=1\\\\n\"|",
        ]
        return stack.script("restart-haproxy", environment: ["PGSQLCHK_HAPROXY_EDITS=" + edits.joined(separator: "\n")])
    }

    /// Marks the standby's server DOWN as `fall` failed checks would (health
    /// 0), through HAProxy's admin socket; its checks go on, now sending `DOWN`.
    func markDown(_ server: String) throws {
        try #require(stack.adminCommand("set server pg_readonly_standbys/\(server) health down") != nil, "no admin socket")
        try #require(stack.statsRow("pg_readonly_standbys", server)?["status"] == "DOWN", "\(stack.statsRow("pg_readonly_standbys", server) ?? [:])")
    }

    /// The standby check's answer to `target` on `node`'s check port, asked
    /// without HAProxy's header: status code and body.
    func checkAnswer(_ target: String, on node: Node) -> (status: String, body: String) {
        let reply = tcpExchange(port: stack.checkPort(of: node), request: "GET \(target) HTTP/1.0\r\n\r\n").map { String(decoding: $0, as: UTF8.self) } ?? ""
        let status = reply.split(separator: " ").dropFirst().first.map(String.init) ?? "no answer"
        let body = reply.firstRange(of: "\r\n\r\n").map { String(reply[$0.upperBound...]) } ?? ""
        return (status, body)
    }

    /// The lag `node`'s check measures (`lag_bytes` of its `/status`).
    func checkLag(on node: Node) throws -> Int64 {
        let body = checkAnswer("/status", on: node).body
        let field = try #require(body.firstRange(of: "\"lag_bytes\": "), "no lag_bytes in \(body)")
        return try #require(Int64(body[field.upperBound...].prefix { $0.isNumber }), "lag_bytes is not a number in \(body)")
    }

    /// `SELECT pg_is_in_recovery()` through the ReadOnly port: `t` when the
    /// read landed on a standby, `f` on the primary, else the error.
    func readOnlyRecovery() -> String {
        switch TestStack.through(stack.readOnlyPort, "SELECT pg_is_in_recovery()") {
        case .success(let value): value
        case .failure(let error): "failed: \(error)"
        }
    }

    /// HAProxy's log lines (since its last restart) where a check of
    /// `pg_readonly_standbys/server` failed.
    func failedCheckLines(_ server: String) -> [String] {
        TestStack.lines(of: stack.haproxyLog).filter { $0.hasPrefix("Health check for server pg_readonly_standbys/\(server) failed") }
    }

    /// Writes rows on the primary while the standby's replay is paused, until
    /// the check on the standby measures more than `atLeast` bytes of lag
    /// (once the standby has received all of it and the primary announced its
    /// end, which is what the check's lag is measured against); that lag.
    func produceLag(primary: Node, standby: Node, moreThan atLeast: Int64) throws -> Int64 {
        let primaryConnection = try #require(cluster.direct(primary))
        let standbyConnection = try #require(cluster.direct(standby))
        var lag: Int64 = 0
        for _ in 0..<4 where lag <= atLeast {
            _ = try primaryConnection.value("INSERT INTO \(Self.lagTable) SELECT g FROM generate_series(1, \(Self.rowsPerWrite)) g").get()
            let written = try primaryConnection.value("SELECT pg_current_wal_lsn()").get()
            let announced = stack.waitUntil(seconds: 10) {
                (try? standbyConnection.value("SELECT pg_last_wal_receive_lsn() >= '\(written)' AND latest_end_lsn >= '\(written)' FROM pg_stat_wal_receiver").get()) == "t"
            }
            try #require(announced, "the standby did not receive, or hear the end of, the WAL up to \(written)")
            lag = try checkLag(on: standby)
        }
        return lag
    }

    /// Pauses replay on `standby` and creates the table the lag is written
    /// to; `cleanUp` resumes replay, drops the table, and restarts HAProxy as
    /// shipped (stack.sh waits until both servers are UP again).
    func pauseReplay(primary: Node, standby: Node) throws {
        let primaryConnection = try #require(cluster.direct(primary))
        _ = try primaryConnection.value("SET client_min_messages = warning; DROP TABLE IF EXISTS \(Self.lagTable)").get()
        _ = try primaryConnection.value("CREATE TABLE \(Self.lagTable) (g int)").get()
        _ = try #require(cluster.direct(standby)).value("SELECT pg_wal_replay_pause()").get()
    }

    func cleanUp(primary: Node, standby: Node) {
        let resumed = cluster.direct(standby)?.value("SELECT pg_wal_replay_resume()")
        _ = cluster.direct(primary)?.value("DROP TABLE IF EXISTS \(Self.lagTable)")
        #expect((try? resumed?.get()) != nil, "could not resume replay on the standby: \(String(describing: resumed))")
        #expect(stack.script("restart-haproxy"), "HAProxy did not come back as shipped with both servers UP: \(stack.serverStates())")
    }

    /// Waits until `standby` has replayed everything `primary` has written.
    func waitForReplay(primary: Node, standby: Node) throws {
        let written = try #require(cluster.direct(primary)).value("SELECT pg_current_wal_lsn()").get()
        let standbyConnection = try #require(cluster.direct(standby))
        let replayed = stack.waitUntil(seconds: 10) {
            (try? standbyConnection.value("SELECT pg_last_wal_replay_lsn() >= '\(written)'").get()) == "t"
        }
        try #require(replayed, "the standby did not replay up to \(written)")
    }

    /// The server's stats row once its last check has an HTTP code. A stats
    /// read can land while a check runs, or after one that got no answer
    /// (check_code 0; seen once on a machine loaded by the namespace test
    /// beds): that says nothing of what the check answers, so the row of the
    /// next answered check is taken, waiting at most two intervals for it.
    private func answeredCheckRow(_ server: String, intervals: CheckIntervals) -> [String: String] {
        _ = stack.watch("pg_readonly_standbys", server, field: "check_code", seconds: 2 * intervals.inter + 1) {
            ($0["check_code"] ?? "0") != "0"
        }
        return stack.statsRow("pg_readonly_standbys", server) ?? [:]
    }

    @Test("the only usable standby past its lag limit stays UP with keep_last_standby=1 and keeps the reads; without it the same lag takes it DOWN")
    func keepLastStandby() throws {
        let (primary, standby) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        try #require(stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby)), "stats: \(stack.serverStates())")
        let server = TestStack.server(of: standby)
        let intervals = try #require(CheckIntervals(configuration: stack.directory + "/haproxy.cfg"))
        let limit = Self.keepLimit
        defer { cleanUp(primary: primary, standby: standby) }

        // 1. keep_last_standby=1: HAProxy's header says the standby is UP and
        // carries all of its backend's weight (the primary is DOWN there).
        try #require(restartHAProxy(limit: limit, keepLastStandby: true), "HAProxy did not restart: \(stack.serverStates())")
        try pauseReplay(primary: primary, standby: standby)
        let keptLag = try produceLag(primary: primary, standby: standby, moreThan: limit)
        try #require(keptLag > limit, "the lag produced (\(keptLag) bytes) is not past the limit \(limit)")
        // Longer than `fall` failed checks take: each in rotation every `inter`.
        let hold = intervals.fall * intervals.inter + 2 * intervals.inter
        let left = stack.watch("pg_readonly_standbys", server, seconds: hold) { $0["status"] != "UP" }
        let row = answeredCheckRow(server, intervals: intervals)
        let keptRead = readOnlyRecovery()
        print("send-state: kept: lag \(keptLag) bytes past the limit \(limit): \(left.seen.joined(separator: " -> ")) for \(left.seconds) s "
              + "(fall x inter = \(intervals.fall * intervals.inter) s), last check \(row["check_code"] ?? "?"), weight \(row["weight"] ?? "?"), "
              + "read through ReadOnly in recovery: \(keptRead)")
        #expect(!left.reached, "the kept standby left UP: \(left.seen)")
        #expect(left.seconds > intervals.fall * intervals.inter)
        // stack.sh empties HAProxy's log when it restarts it: every line is this run's.
        #expect(stack.downLines("pg_readonly_standbys", server) == 0, "\(TestStack.lines(of: stack.haproxyLog).filter { $0.contains(" is DOWN") })")
        #expect(failedCheckLines(server) == [])
        #expect(row["check_code"] == "206", "HAProxy's last answered check of the kept standby: \(row["check_code"] ?? "none") (\(row["check_status"] ?? "none"))")
        #expect(row["weight"] == Self.minimumWeight, "the agent's weight: \(row["weight"] ?? "none")")
        #expect(keptRead == "t", "a read through ReadOnly while the standby is kept")
        // The same request without HAProxy's header: past the limit, nothing kept.
        let bare = checkAnswer("/?lag=\(limit)&keep_last_standby=1", on: standby)
        #expect(bare.status == "503" && bare.body.hasPrefix("replication lag ") && bare.body.contains(" exceeds maximum "), "\(bare)")

        // 2. The same lag without keep_last_standby: the HTTP check takes it
        // DOWN after `fall` checks (the agent still answers ready at 10%).
        _ = try #require(cluster.direct(standby)).value("SELECT pg_wal_replay_resume()").get()
        try waitForReplay(primary: primary, standby: standby)
        try #require(restartHAProxy(limit: limit, keepLastStandby: false), "HAProxy did not restart: \(stack.serverStates())")
        _ = try #require(cluster.direct(standby)).value("SELECT pg_wal_replay_pause()").get()
        let droppedLag = try produceLag(primary: primary, standby: standby, moreThan: limit)
        try #require(droppedLag > limit, "the lag produced (\(droppedLag) bytes) is not past the limit \(limit)")
        let down = stack.watch("pg_readonly_standbys", server, seconds: intervals.downBound + 2) { $0["status"]?.hasPrefix("DOWN") == true }
        let droppedRead = readOnlyRecovery()
        let failures = failedCheckLines(server)
        print("send-state: not kept: lag \(droppedLag) bytes past the limit \(limit): \(down.seen.joined(separator: " -> ")) after \(down.seconds) s "
              + "(inter + (fall - 1) x fastinter = \(intervals.downBound) s), read through ReadOnly in recovery: \(droppedRead); \(failures.last ?? "no failed check")")
        #expect(down.reached, "the standby stayed in the ReadOnly pool past its limit: \(down.seen)")
        #expect(down.seen.last == "DOWN", "DOWN by the HTTP check, not the agent: \(down.seen)")
        // HAProxy's checks may see the lag before produceLag returns, never
        // after: the first failing check is at most one `inter` away.
        #expect(down.seconds <= intervals.downBound + 0.5)
        #expect(stack.downLines("pg_readonly_standbys", server) > 0)
        #expect(failures.count >= Int(intervals.fall) && failures.allSatisfy { $0.contains("Layer7 wrong status, code: 503") }, "\(failures)")
        #expect(droppedRead == "f", "a read through ReadOnly with the standby DOWN")
    }

    @Test("a DOWN standby whose lag is between 75% of the limit and the limit stays out; under 75% it comes UP")
    func rejoinThreshold() throws {
        let (primary, standby) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        try #require(stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby)), "stats: \(stack.serverStates())")
        let server = TestStack.server(of: standby)
        let intervals = try #require(CheckIntervals(configuration: stack.directory + "/haproxy.cfg"))
        defer { cleanUp(primary: primary, standby: standby) }

        try pauseReplay(primary: primary, standby: standby)
        let lag = try produceLag(primary: primary, standby: standby, moreThan: 1 << 20)
        // The lag midway between the two thresholds, so a little background
        // WAL cannot move it out of the band.
        let limit = lag * 8 / 7
        // HAProxy 2.6 starts a server UP one failed check from DOWN (`UP 1/3`
        // with fall 3, measured): its first check is held to the limit, so a
        // restart takes a standby in the band back in (stack.sh waits for
        // it). Then HAProxy marks it DOWN as its failed checks would.
        try #require(restartHAProxy(limit: limit, keepLastStandby: false), "HAProxy did not restart: \(stack.serverStates())")
        try markDown(server)
        let hold = intervals.fall * intervals.inter + 2 * intervals.inter
        let rose = stack.watch("pg_readonly_standbys", server, seconds: hold) { $0["status"] != "DOWN" }
        let row = answeredCheckRow(server, intervals: intervals)
        let heldRead = readOnlyRecovery()
        let heldLag = try checkLag(on: standby)
        print("send-state: between the thresholds: lag \(lag) bytes, limit \(limit), rejoin threshold \(limit * 3 / 4): "
              + "\(rose.seen.joined(separator: " -> ")) for \(rose.seconds) s (about \(Int(rose.seconds / intervals.downinter)) checks at downinter), "
              + "last check \(row["check_code"] ?? "?") (\(row["check_status"] ?? "?")), read through ReadOnly in recovery: \(heldRead)")
        #expect(!rose.reached, "the standby between the thresholds left DOWN: \(rose.seen)")
        #expect(row["check_code"] == "503", "HAProxy's last answered check of the held standby: \(row["check_code"] ?? "none") (\(row["check_status"] ?? "none"))")
        #expect(heldLag > limit * 3 / 4 && heldLag <= limit, "the lag left the band during the hold: \(heldLag) bytes")
        #expect(heldRead == "f", "a read through ReadOnly with the standby held out")
        // Without HAProxy's header the same check passes: the rejoin threshold held it.
        let bare = checkAnswer("/?lag=\(limit)", on: standby)
        #expect(bare.status == "206", "\(bare)")

        // The same lag under 75% of a larger limit: it rejoins.
        let rejoinLimit = lag * 8 / 5
        try #require(restartHAProxy(limit: rejoinLimit, keepLastStandby: false), "HAProxy did not restart: \(stack.serverStates())")
        try markDown(server)
        // Marked DOWN between two checks of an UP server: the next may be up
        // to `inter` away, then `rise - 1` more at fastinter.
        let rejoinBound = intervals.inter + (intervals.rise - 1) * intervals.fastinter
        let up = stack.watch("pg_readonly_standbys", server, seconds: rejoinBound + 2) { $0["status"] == "UP" }
        let rejoinedRead = readOnlyRecovery()
        let rejoinedLag = try checkLag(on: standby)
        print("send-state: under the threshold: lag \(rejoinedLag) bytes, limit \(rejoinLimit), rejoin threshold \(rejoinLimit * 3 / 4): "
              + "\(up.seen.joined(separator: " -> ")) after \(up.seconds) s (inter + (rise - 1) x fastinter = \(rejoinBound) s), "
              + "read through ReadOnly in recovery: \(rejoinedRead)")
        #expect(up.reached, "the standby under the rejoin threshold stayed out: \(up.seen)")
        #expect(up.seconds <= rejoinBound + 0.5)
        #expect(rejoinedLag >= lag && rejoinedLag <= rejoinLimit * 3 / 4, "the lag left the band under the threshold: \(rejoinedLag) bytes")
        #expect(rejoinedRead == "t", "a read through ReadOnly with the standby rejoined")
    }
}
