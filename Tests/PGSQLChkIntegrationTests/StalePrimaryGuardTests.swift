import ParsedResponse
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The three-node cluster `scripts/cluster.sh start-three` starts: a primary
/// and two streaming standbys. The guard's tests promote, stop and rebuild
/// nodes, so each starts from a fresh cluster, and the suite runs on its own
/// run directory and ports, apart from every other live suite.
struct GuardCluster {
    let socketDirectory: String
    let runDirectory: String
    let ports: [GuardNode: String]

    static let contract = EnvironmentContract(
        names: ["PGSQLCHK_SOCKET_DIR", "PGSQLCHK_PRIMARY_PORT", "PGSQLCHK_STANDBY_PORT", "PGSQLCHK_STANDBY2_PORT", "PGSQLCHK_RUN_DIR"],
        source: "scripts/cluster.sh start-three, then . $PGSQLCHK_RUN_DIR/env")

    static func required() throws(LiveEnvironmentError) -> GuardCluster {
        let values = try contract.values()
        let cluster = GuardCluster(
            socketDirectory: values["PGSQLCHK_SOCKET_DIR"]!, runDirectory: values["PGSQLCHK_RUN_DIR"]!,
            ports: [.primary: values["PGSQLCHK_PRIMARY_PORT"]!, .standby: values["PGSQLCHK_STANDBY_PORT"]!,
                    .standby2: values["PGSQLCHK_STANDBY2_PORT"]!])
        // Each test starts its own cluster (reset), so that one test's
        // promotions and stops never reach the next.
        return cluster
    }

    /// The same `--peers` list every node is given, itself included.
    var peers: String { GuardNode.allCases.map { "127.0.0.1:\(ports[$0]!)" }.joined(separator: ",") }

    func address(of node: GuardNode) -> String { "127.0.0.1:\(ports[node]!)" }

    func stateDirectory(of node: GuardNode) -> String { "\(runDirectory)/guard-state-\(node.rawValue)" }

    func fencePath(of node: GuardNode) -> String { stateDirectory(of: node) + "/fence" }

    /// A fresh primary and two streaming standbys, with empty state directories.
    func reset() throws {
        try #require(script("stop"), "cluster.sh stop failed")
        try #require(script("start-three"), "cluster.sh start-three failed")
        for node in GuardNode.allCases where !(postmasterPID(of: node).map(processIsRunning) ?? false) {
            throw LiveEnvironmentError.serverNotRunning("no \(node.rawValue) postmaster running in \(runDirectory) after start-three")
        }
        for node in GuardNode.allCases { mkdir(stateDirectory(of: node), 0o755) }
    }

    /// `node`'s check with the guard on, as a super-server would run it.
    func check(_ node: GuardNode, request: String = "OPTIONS / HTTP/1.0\r\n\r\n", options: [String] = []) -> ChildResult {
        Child.run([TestCluster.binary, "-h", socketDirectory, "-p", ports[node]!, "-U", "pgsqlchk", "-d", "postgres",
                   "--peers", peers, "--state-dir", stateDirectory(of: node)] + options,
                  input: .socket(request: request, hangUp: false))
    }

    @discardableResult
    func script(_ arguments: String...) -> Bool {
        Child.run(["/bin/bash", TestCluster.repository + "/scripts/cluster.sh"] + arguments, input: .null,
                  environment: Child.projectEnvironment()).status == 0
    }

    /// `sql`'s output on `node`, unaligned and tuples only, as the superuser.
    func query(_ node: GuardNode, _ sql: String) throws -> String {
        let result = Child.run(["/bin/bash", TestCluster.repository + "/scripts/cluster.sh", "psql", node.rawValue, "-At", "-c", sql],
                               input: .null, environment: Child.projectEnvironment())
        try #require(result.status == 0, "psql on \(node.rawValue) failed: \(result.text)")
        var text = result.text
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// Polls `sql` on `node` until it prints `expected`, for up to 10 s.
    func await(_ node: GuardNode, _ sql: String, prints expected: String) throws {
        for _ in 0..<100 {
            if try query(node, sql) == expected { return }
            usleep(100_000)
        }
        Issue.record("\(sql) on \(node.rawValue) never printed \(expected); last: \(try query(node, sql))")
    }

    func stop(_ node: GuardNode) throws { try #require(script("pg_ctl", node.rawValue, "stop", "-m", "immediate", "-w")) }
    func start(_ node: GuardNode) throws { try #require(script("pg_ctl", node.rawValue, "start", "-w")) }
    func promote(_ node: GuardNode) throws { try #require(script("pg_ctl", node.rawValue, "promote", "-w")) }

    func postmasterPID(of node: GuardNode) -> pid_t? {
        pidFile("\(runDirectory)/\(node.rawValue)/postmaster.pid")
    }
}

/// The cluster's nodes by their directory names; roles change under the tests.
enum GuardNode: String, CaseIterable {
    case primary, standby, standby2
}

@Suite("Stale-primary guard and synchronous standbys against a real three-node cluster", .serialized,
       .enabled(if: GuardCluster.contract.isEnabled, GuardCluster.contract.skipReason))
struct StalePrimaryGuardTests {
    let cluster: GuardCluster
    /// The deadline the timing test gives the check, and the slack for
    /// process start and exit on a loaded two-core machine.
    static let deadline = 1.0
    static let margin = 0.35

    init() throws { cluster = try GuardCluster.required() }

    func response(_ result: ChildResult) throws -> ParsedResponse {
        try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
    }

    @Test("after a failover the old primary, restarted as a primary, is 503 at its first check and stays fenced until rebuilt as a standby")
    func failover() throws {
        try cluster.reset()
        let newer = cluster.address(of: .standby)
        try cluster.stop(.primary)
        try cluster.promote(.standby)
        try cluster.start(.primary)

        let first = try response(cluster.check(.primary))
        #expect(first.status == 503)
        #expect(first.body == "stale primary: \(newer) is primary on timeline 2, this node is primary on timeline 1")
        let agent = cluster.check(.primary, request: "\n", options: ["--agent"])
        #expect(agent.text == "down #stale primary (fenced): \(newer) was primary on timeline 2, this node is primary on timeline 1\n")
        #expect(access(cluster.fencePath(of: .primary), F_OK) == 0)
        #expect(try response(cluster.check(.standby)).status == 200, "the new primary keeps serving")

        try cluster.stop(.standby)
        let fenced = try response(cluster.check(.primary))
        #expect(fenced.status == 503, "the newer primary died: the old one stays fenced")
        #expect(fenced.body == "stale primary (fenced): \(newer) was primary on timeline 2, this node is primary on timeline 1")

        try cluster.start(.standby)
        try #require(cluster.script("rebuild-standby", "primary", "standby"))
        let rejoined = try response(cluster.check(.primary))
        #expect(rejoined.status == 206)
        #expect(rejoined.body == "standby")
        #expect(access(cluster.fencePath(of: .primary), F_OK) != 0, "the fence is gone once the node is a standby")
        #expect(try response(cluster.check(.standby)).status == 200)
    }

    @Test("two standbys promoted from one primary both answer 503 with the reason, and the old primary is stale")
    func twoPrimaries() throws {
        try cluster.reset()
        try cluster.promote(.standby)
        try cluster.promote(.standby2)
        let one = try response(cluster.check(.standby))
        let other = try response(cluster.check(.standby2))
        #expect(one.status == 503)
        #expect(one.body == "two primaries on timeline 2: this node and \(cluster.address(of: .standby2)); stop or rewind one")
        #expect(other.status == 503)
        #expect(other.body == "two primaries on timeline 2: this node and \(cluster.address(of: .standby)); stop or rewind one")
        let old = try response(cluster.check(.primary))
        #expect(old.status == 503)
        #expect(old.body.hasPrefix("stale primary: "))
        #expect(access(cluster.fencePath(of: .standby), F_OK) != 0, "two primaries on one timeline are not fenced: an admin chooses")

        try cluster.stop(.standby2)
        #expect(try response(cluster.check(.standby)).status == 200, "once the admin stops one, the other serves")
    }

    @Test("a frozen peer costs at most its share of the deadline, and proves nothing")
    func frozenPeer() throws {
        try cluster.reset()
        let pid = try #require(cluster.postmasterPID(of: .standby))
        kill(pid, SIGSTOP)
        defer { kill(pid, SIGCONT) }
        let result = cluster.check(.primary, request: "GET /status HTTP/1.0\r\n\r\n", options: ["-t", "\(Self.deadline)"])
        let status = try response(result)
        #expect(status.status == 200)
        #expect(result.seconds < Self.deadline + Self.margin)
        #expect(status.body.contains("{\"peer\": \"\(cluster.address(of: .standby))\", \"standing\": \"unreachable\""))
        #expect(status.body.contains("\"problem\": \"timeout while "))
        let routed = cluster.check(.primary, options: ["-t", "\(Self.deadline)"])
        #expect(try response(routed).status == 200)
        #expect(routed.seconds < Self.deadline + Self.margin)
    }

    @Test("a lone primary whose peers are all down answers 200 and lists them")
    func lonePrimary() throws {
        try cluster.reset()
        try cluster.stop(.standby)
        try cluster.stop(.standby2)
        #expect(try response(cluster.check(.primary)).status == 200)
        let status = try response(cluster.check(.primary, request: "GET /status HTTP/1.0\r\n\r\n"))
        #expect(status.body.contains("\"decision\": \"serving\""))
        #expect(status.body.contains("{\"peer\": \"\(cluster.address(of: .standby2))\", \"standing\": \"unreachable\""))
    }

    @Test("a corrupt fence file is a 503 that names it, until --clear-fence removes it")
    func corruptFence() throws {
        try cluster.reset()
        let path = cluster.fencePath(of: .primary)
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = write(file, "fenced?\n", 8)
        close(file)
        let corrupt = try response(cluster.check(.primary))
        #expect(corrupt.status == 503)
        #expect(corrupt.body == "fence file \(path) is corrupt: expected \"pgsqlchk-fence 1\" and 5 lines; treated as fenced")

        let cleared = Child.run([TestCluster.binary, "--clear-fence", "--state-dir", cluster.stateDirectory(of: .primary)], input: .null)
        #expect(cleared.status == 0)
        #expect(cleared.text == "removed the fence file \(path)\n")
        #expect(try response(cluster.check(.primary)).status == 200)
    }
}
