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

    /// `node`'s own fence file in `directory` (its state directory unless
    /// given): named by the cluster's system identifier and the node's port.
    func fencePath(of node: GuardNode, in directory: String? = nil) throws -> String {
        let system = try query(node, "SELECT system_identifier FROM pg_catalog.pg_control_system()")
        return (directory ?? stateDirectory(of: node)) + "/fence-\(system)-\(ports[node]!)"
    }

    /// The state directory every node and the unrelated cluster share.
    var sharedStateDirectory: String { "\(runDirectory)/guard-state-shared" }

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
    func check(_ node: GuardNode, request: String = "OPTIONS / HTTP/1.0\r\n\r\n", options: [String] = [],
               stateDirectory directory: String? = nil) -> ChildResult {
        check(port: ports[node]!, request: request, options: options, stateDirectory: directory ?? stateDirectory(of: node))
    }

    /// The check of the postmaster on `port` in the socket directory, with
    /// this cluster's `--peers`.
    func check(port: String, request: String, options: [String] = [], stateDirectory directory: String,
               environment: [String] = []) -> ChildResult {
        Child.run(command(port: port, stateDirectory: directory) + options, input: .socket(request: request, hangUp: false),
                  environment: environment)
    }

    /// The check's command line for the postmaster on `port`.
    func command(port: String, stateDirectory directory: String, user: String = "pgsqlchk") -> [String] {
        [TestCluster.binary, "-h", socketDirectory, "-p", port, "-U", user, "-d", "postgres", "--peers", peers, "--state-dir", directory]
    }

    @discardableResult
    func script(_ arguments: String...) -> Bool {
        Child.run(["/bin/bash", TestCluster.repository + "/scripts/cluster.sh"] + arguments, input: .null,
                  environment: Child.projectEnvironment()).status == 0
    }

    /// `sql`'s output on `node`, unaligned and tuples only, as the superuser.
    func query(_ node: GuardNode, _ sql: String, database: String = "postgres") throws -> String {
        try query(named: node.rawValue, sql, database: database)
    }

    /// `sql`'s output on the node cluster.sh calls `name` (`other` too).
    func query(named name: String, _ sql: String, database: String = "postgres") throws -> String {
        let result = Child.run(["/bin/bash", TestCluster.repository + "/scripts/cluster.sh", "psql", name,
                                "-d", database, "-At", "-c", sql],
                               input: .null, environment: Child.projectEnvironment())
        try #require(result.status == 0, "psql on \(name) failed: \(result.text)")
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

    /// Writes `text` to the file `name` in the run directory, made with
    /// `mode`; returns its path.
    func writeFile(_ name: String, mode: mode_t, _ text: String) throws -> String {
        let path = "\(runDirectory)/\(name)"
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
        try #require(file >= 0, "cannot create \(path): errno \(errno)")
        defer { close(file) }
        try #require(write(file, text, text.utf8.count) == text.utf8.count, "cannot write \(path)")
        return path
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
        #expect(access(try cluster.fencePath(of: .primary), F_OK) == 0)
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
        #expect(access(try cluster.fencePath(of: .primary), F_OK) != 0, "the fence is gone once the node is a standby")
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
        #expect(access(try cluster.fencePath(of: .standby), F_OK) != 0, "two primaries on one timeline are not fenced: an admin chooses")

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
        let path = try cluster.fencePath(of: .primary)
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = write(file, "fenced?\n", 8)
        close(file)
        let corrupt = try response(cluster.check(.primary))
        #expect(corrupt.status == 503)
        #expect(corrupt.body == "fence file \(path) is corrupt: expected \"pgsqlchk-fence 1\" and 5 lines; treated as fenced")

        let clearing = [TestCluster.binary, "--clear-fence", "-h", cluster.socketDirectory, "-p", cluster.ports[.primary]!, "-U", "pgsqlchk",
                        "-d", "postgres", "--state-dir", cluster.stateDirectory(of: .primary)]
        let cleared = Child.run(clearing, input: .null)
        #expect(cleared.status == 0)
        #expect(cleared.text == "removed the fence file \(path)\n")
        #expect(try response(cluster.check(.primary)).status == 200)

        // A node that cannot be asked who it is has nothing removed: the files are listed.
        close(open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644))
        try cluster.stop(.primary)
        let unreachable = Child.run(clearing, input: .null)
        #expect(unreachable.status == 2)
        #expect(unreachable.text.contains("could not ask the node which fence file is its own: no response from server"))
        #expect(unreachable.text.contains("nothing removed; fence files in \(cluster.stateDirectory(of: .primary)) (remove this node's with rm):\n  \(path): "))
        #expect(access(path, F_OK) == 0)
    }

    @Test("nodes and clusters sharing one state directory never remove or defeat each other's fence: the stale primary stays fenced")
    func sharedStateDirectory() throws {
        try cluster.reset()
        try #require(cluster.script("start-other"), "cluster.sh start-other failed")
        let shared = cluster.sharedStateDirectory
        mkdir(shared, 0o755)
        let otherPort = try cluster.query(named: "other", "SHOW port")
        try #require(try cluster.query(named: "other", "SELECT system_identifier FROM pg_catalog.pg_control_system()")
            != (try cluster.query(.primary, "SELECT system_identifier FROM pg_catalog.pg_control_system()")), "not two clusters")
        let newer = cluster.address(of: .standby)
        try cluster.stop(.primary)
        try cluster.promote(.standby)
        try cluster.start(.primary)
        #expect(try response(cluster.check(.primary, stateDirectory: shared)).status == 503)
        let fence = try cluster.fencePath(of: .primary, in: shared)
        try #require(access(fence, F_OK) == 0, "the stale primary's check wrote no fence at \(fence)")

        let requests = ["OPTIONS / HTTP/1.0", "GET /primary HTTP/1.0", "GET /replica HTTP/1.0", "GET /health HTTP/1.0",
                        "GET /liveness HTTP/1.0", "GET /status HTTP/1.0", "GET /metrics HTTP/1.0"].map { $0 + "\r\n\r\n" }
        let neighbours: [(String, String)] = [("the other cluster's primary", otherPort), ("the new primary", cluster.ports[.standby]!),
                                              ("the standby", cluster.ports[.standby2]!)]
        for request in requests {
            for (name, port) in neighbours {
                let answer = cluster.check(port: port, request: request, stateDirectory: shared)
                #expect(answer.status != nil, "\(name)'s check did not finish")
                #expect(access(fence, F_OK) == 0, "\(name)'s check of \(request.prefix { $0 != "\r" }) removed the fence")
            }
        }
        #expect(try response(cluster.check(.standby, stateDirectory: shared)).status == 200, "the new primary serves")

        // With every newer node gone only the fence can tell: the stale primary stays 503.
        try cluster.stop(.standby)
        try cluster.stop(.standby2)
        let fenced = try response(cluster.check(.primary, stateDirectory: shared))
        #expect(fenced.status == 503)
        #expect(fenced.body == "stale primary (fenced): \(newer) was primary on timeline 2, this node is primary on timeline 1")
        #expect(access(fence, F_OK) == 0)
    }

    @Test("peers that refuse the login show in /status, the summary and /metrics, while the primary keeps serving")
    func refusedPeers() throws {
        try cluster.reset()
        // pgsqlchk_pw logs in with scram-sha-256: the right password over the
        // socket, a wrong one over TCP, where the peers are asked.
        let password = "guard-\(getpid())-\(monotonicSeconds())"
        _ = try cluster.query(.primary, "ALTER ROLE pgsqlchk_pw PASSWORD '\(password)'")
        try cluster.await(.standby, "SELECT count(*) FROM pg_catalog.pg_authid WHERE rolname = 'pgsqlchk_pw' AND rolpassword LIKE 'SCRAM%'",
                          prints: "1")
        let passwordFile = try cluster.writeFile("guard-pgpass", mode: 0o600,
                                                 "\(cluster.socketDirectory):*:*:pgsqlchk_pw:\(password)\n127.0.0.1:*:*:pgsqlchk_pw:wrong\n")
        defer { unlink(passwordFile) }
        let command = cluster.command(port: cluster.ports[.primary]!, stateDirectory: cluster.stateDirectory(of: .primary), user: "pgsqlchk_pw")
        let environment = ["PGPASSFILE=\(passwordFile)"]
        func ask(_ request: String) -> ChildResult {
            Child.run(command, input: .socket(request: request + "\r\n\r\n", hangUp: false), environment: environment)
        }
        let refused = ProbeReasons.authenticationFailed

        #expect(try response(ask("OPTIONS / HTTP/1.0")).status == 200, "peers that cannot be asked prove nothing")
        let status = try response(ask("GET /status HTTP/1.0"))
        #expect(status.status == 200)
        #expect(status.body.contains("\"peers_asked\": 3, \"peers_unreachable\": {\"\(refused)\": 3}"), "\(status.body)")
        let metrics = try response(ask("GET /metrics HTTP/1.0"))
        #expect(metrics.body.contains("pgsqlchk_peers_unreachable{reason=\"\(refused)\"} 3"), "\(metrics.body)")
        let summary = Child.run(command + ["-o", "summary"], input: .null, environment: environment)
        #expect(summary.status == 0)
        #expect(summary.text.contains("127.0.0.1:\(cluster.ports[.standby]!) unreachable (\(refused))"), "\(summary.text)")
        #expect(summary.text.contains("stale-primary guard could not ask any of its 3 peers: it cannot see a newer primary"), "\(summary.text)")
    }

    @Test("a peer whose name never resolves costs at most the peers' share: /, /health and /liveness answer 200 in time")
    func unresolvablePeer() throws {
        try cluster.reset()
        // A nameserver that takes every query and never answers, which the
        // check's real resolver is pointed at by a resolv.conf bind-mounted
        // in a mount namespace of its own.
        let nameserver = "127.0.0.86"
        let silent = try SilentNameserver(address: nameserver)
        defer { silent.close() }
        let resolvConf = try cluster.writeFile("guard-resolv.conf", mode: 0o644, "nameserver \(nameserver)\noptions timeout:5 attempts:2\n")
        defer { unlink(resolvConf) }
        let stuck = "stuck-peer.pgsqlchk.test:5432"
        var command = cluster.command(port: cluster.ports[.primary]!, stateDirectory: cluster.stateDirectory(of: .primary))
        command[command.firstIndex(of: "--peers")! + 1] = "\(stuck),\(cluster.peers)"
        let isolated = ["/usr/bin/unshare", "--mount", "--", "/bin/sh", "-c", "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"",
                        resolvConf] + command + ["-t", "\(Self.deadline)"]

        for request in ["OPTIONS / HTTP/1.0", "GET /health HTTP/1.0", "GET /liveness HTTP/1.0", "GET /status HTTP/1.0"] {
            let result = Child.run(isolated, input: .socket(request: request + "\r\n\r\n", hangUp: false))
            let answer = try response(result)
            #expect(answer.status == 200, "\(request): \(answer.body)")
            #expect(result.seconds < Self.deadline + Self.margin, "\(request) took \(result.seconds) s")
            if request.hasPrefix("GET /status") {
                #expect(answer.body.contains("{\"peer\": \"\(stuck)\", \"standing\": \"unreachable\""), "\(answer.body)")
                #expect(answer.body.contains("\"problem\": \"timeout while looking up the server's host name\""), "\(answer.body)")
                #expect(answer.body.contains("\"peer\": \"\(cluster.address(of: .standby))\", \"standing\": \"consistent\""), "\(answer.body)")
            }
        }
    }
}

/// The reasons the check writes, as the tests expect them verbatim.
enum ProbeReasons {
    static let authenticationFailed = "authentication failed (check pgsqlchk's role and pg_hba.conf)"
}

/// A DNS server that reads queries on UDP and TCP port 53 of `address` and
/// never answers: a resolver pointed at it waits its whole timeout.
struct SilentNameserver {
    let descriptors: [Int32]

    init(address: String) throws {
        var bound: [Int32] = []
        for type in [SOCK_DGRAM, SOCK_STREAM] {
            let descriptor = socket(AF_INET, Int32(type.rawValue), 0)
            var one: Int32 = 1
            setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = in_port_t(53).bigEndian
            inet_pton(AF_INET, address, &socketAddress.sin_addr)
            let result = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            try #require(result == 0, "cannot bind \(address):53: errno \(errno)")
            if type == SOCK_STREAM { listen(descriptor, 16) }
            bound.append(descriptor)
        }
        descriptors = bound
    }

    func close() { descriptors.forEach { _ = Glibc.close($0) } }
}
