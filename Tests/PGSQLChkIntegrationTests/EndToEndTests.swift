import ParsedResponse
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The check path as deployed: HAProxy (from haproxy/haproxy.cfg) asks a
/// super-server, which runs the release binary per check, against the real
/// primary and standby of `scripts/cluster.sh`. The super-server is xinetd
/// (from xinetd/pgsqlchk), or with `PGSQLCHK_SUPERVISOR=systemd`
/// `systemd-socket-activate --inetd --accept` (as systemd/pgsqlchk.socket and
/// pgsqlchk@.service run it).
@Suite("HAProxy + super-server + pgsqlchk end to end", .serialized, .enabled(if: TestStack.isEnabled, TestStack.skipReason))
struct EndToEndTests {
    let cluster: TestCluster
    let stack: TestStack

    init() throws {
        cluster = try TestCluster.required()
        stack = try TestStack.required()
    }

    @Test("psql through 5000 writes on the primary, through 5001 reads a standby; the stats agree")
    func routing() throws {
        let (primary, standby) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        try cluster.prepareWriteTable(on: primary)
        #expect(stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby)), "stats: \(stack.serverStates())")

        let binary = cluster.postgresBinaries + "/psql"
        func run(_ port: String, _ sql: String) -> ChildResult {
            Child.run([binary, "-X", "-At", "-h", "127.0.0.1", "-p", port, "-U", "app", "-d", "postgres", "-c", sql], input: .null)
        }
        let written = run(stack.readWritePort, "INSERT INTO \(TestStack.writeTable) VALUES (inet_server_port()) RETURNING port, (SELECT pg_is_in_recovery())")
        #expect(written.status == 0, "\(written.text)")
        #expect(written.text.hasPrefix("\(cluster.port(of: primary))|f"), "\(written.text)")
        let read = run(stack.readOnlyPort, "SELECT inet_server_port(), pg_is_in_recovery()")
        #expect(read.status == 0, "\(read.text)")
        #expect(read.text.hasPrefix("\(cluster.port(of: standby))|t"), "\(read.text)")
        let readOnlyWrite = run(stack.readOnlyPort, "CREATE TABLE e2e_on_a_standby (x int)")
        #expect(readOnlyWrite.status != 0 && readOnlyWrite.text.contains("read-only"), "\(readOnlyWrite.text)")
    }

    @Test("clients holding every slot they may leave the primary UP, its sessions alive and its check 200")
    func exhaustedClientSlots() throws {
        let (primary, standby) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        #expect(stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby)))
        let downLinesBefore = TestStack.lines(of: stack.haproxyLog).filter { $0.contains(" is DOWN") }.count

        // Through HAProxy until its per-server maxconn, then straight to the
        // primary until the role's CONNECTION LIMIT refuses.
        var held: [ClientConnection] = []
        let throughHAProxy = stack.statsRows().first { $0["# pxname"] == "pg_readwrite" && $0["svname"] == TestStack.server(of: primary) }?["slim"].flatMap { Int($0) }
        let maxconn = try #require(throughHAProxy, "no maxconn on the ReadWrite server")
        for _ in 0..<maxconn {
            held.append(try ClientConnection.open(TestStack.clientConninfo(port: stack.readWritePort)).get())
        }
        var refusal: ConnectionError?
        for _ in 0..<40 {
            switch ClientConnection.open("host=\(cluster.socketDirectory) port=\(cluster.port(of: primary)) user=app dbname=postgres") {
            case .success(let connection): held.append(connection)
            case .failure(let error): refusal = error
            }
            if refusal != nil { break }
        }
        print("e2e: app holds \(held.count) connections (\(maxconn) through HAProxy); the next one: \(refusal?.message ?? "none")")
        #expect(refusal?.message.contains("too many connections for role \"app\"") == true, "\(refusal?.message ?? "no refusal")")

        // Long enough for fall checks at the slowest interval.
        let intervals = try #require(CheckIntervals(configuration: stack.directory + "/haproxy.cfg"))
        usleep(UInt32((intervals.downBound + 0.5) * 1_000_000))
        let check = tcpExchange(port: stack.checkPort(of: primary), request: "OPTIONS / HTTP/1.0\r\n\r\n")
        let response = try #require(check.flatMap { ParsedResponse($0) }, "no strict HTTP answer from the check port")
        #expect(response.status == 200)
        #expect(stack.serverStates()["pg_readwrite/\(TestStack.server(of: primary))"] == "UP")
        #expect(TestStack.lines(of: stack.haproxyLog).filter { $0.contains(" is DOWN") }.count == downLinesBefore)
        #expect(held.allSatisfy { (try? $0.value("SELECT 1").get()) == "1" }, "a held session was cut")
    }

    @Test("failover, rejoin as a standby, and a second primary: writes always reach exactly one server")
    func failoverStory() throws {
        let (old, new) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        let (oldServer, newServer) = (TestStack.server(of: old), TestStack.server(of: new))
        let (oldPort, newPort) = (cluster.port(of: old), cluster.port(of: new))
        try cluster.prepareWriteTable(on: old)
        try #require(stack.waitForStates(TestStack.healthyStates(primary: old, standby: new)))
        try #require(try TestStack.write(through: stack.readWritePort).get() == oldPort)
        let intervals = try #require(CheckIntervals(configuration: stack.directory + "/haproxy.cfg"))

        // 1. Failover: the primary dies, the standby is promoted at once.
        let stopped = monotonicSeconds()
        try #require(cluster.script("pg_ctl", old.rawValue, "stop", "-m", "immediate"))
        try #require(cluster.script("pg_ctl", new.rawValue, "promote", "-w"))
        let promoted = monotonicSeconds() - stopped
        var attempts = 0
        var lastError = ""
        var writtenOn: String?
        while monotonicSeconds() - stopped < 15, writtenOn == nil {
            attempts += 1
            switch TestStack.write(through: stack.readWritePort) {
            case .success(let port): writtenOn = port
            case .failure(let error):
                lastError = error.message
                usleep(50_000)
            }
        }
        let firstWrite = monotonicSeconds() - stopped
        // HAProxy's own bound: the old server DOWN and the new one UP, the
        // latter counted from the promotion; half a second for the checks
        // themselves and the client's last attempt.
        let bound = max(intervals.downBound, promoted + intervals.upBound) + 0.5
        print("e2e: failover: promoted after \(promoted) s, first write through HAProxy after \(firstWrite) s, \(attempts) attempts, bound \(bound) s; last error: \(lastError)")
        #expect(writtenOn == newPort)
        #expect(firstWrite <= bound)
        #expect(stack.waitForStates(["pg_readwrite/\(oldServer)": "DOWN", "pg_readwrite/\(newServer)": "UP",
                               "pg_readonly_standbys/\(oldServer)": "DOWN", "pg_readonly_standbys/\(newServer)": "DOWN"]))
        // No standby left: reads fall back to the server that takes the writes.
        #expect(try TestStack.through(stack.readOnlyPort, "SELECT inet_server_port()").get() == newPort)

        // 2. Rejoin: the old primary comes back as a standby of the new one.
        let rebuilding = monotonicSeconds()
        try #require(cluster.script("rebuild-standby", old.rawValue, new.rawValue))
        #expect(stack.waitForStates(["pg_readonly_standbys/\(oldServer)": "UP", "pg_readwrite/\(oldServer)": "DOWN"]), "stats: \(stack.serverStates())")
        print("e2e: rejoin: old primary rebuilt and UP in ReadOnly after \(monotonicSeconds() - rebuilding) s")
        for _ in 0..<10 {
            #expect(try TestStack.through(stack.readOnlyPort, "SELECT inet_server_port()").get() == oldPort)
            #expect(try TestStack.write(through: stack.readWritePort).get() == newPort)
        }

        // 3. Split brain: the old primary is promoted again, a second primary.
        try #require(cluster.script("pg_ctl", old.rawValue, "promote", "-w"))
        // Until the ReadOnly checks see it answer 200 `fall` times, the
        // promoted node still takes reads as a standby.
        let bothUp = stack.waitForStates(["pg_readwrite/\(oldServer)": "UP", "pg_readwrite/\(newServer)": "UP",
                                    "pg_readonly_standbys/\(oldServer)": "DOWN"])
        #expect(bothUp, "stats: \(stack.serverStates())")
        var servers: [String: Int] = [:]
        for _ in 0..<30 {
            let port = try TestStack.write(through: stack.readWritePort).get()
            servers[port, default: 0] += 1
        }
        let reads = try TestStack.through(stack.readOnlyPort, "SELECT inet_server_port()").get()
        print("e2e: split brain: 30 writes through HAProxy went to \(servers); a read went to \(reads)")
        #expect(servers == [newPort: 30])
        #expect(reads == newPort)

        // Leave one primary and one streaming standby for whatever runs next.
        try #require(cluster.script("rebuild-standby", old.rawValue, new.rawValue))
        #expect(stack.waitForStates(TestStack.healthyStates(primary: new, standby: old)), "stats: \(stack.serverStates())")
    }

    /// The checks of the HTTP check ports as their super-server logs them:
    /// xinetd's `START: pgsqlchk pid=N` and `EXIT: pgsqlchk status=S pid=N`
    /// (log_on_success in the rendered config), or systemd-socket-activate's
    /// `Spawned ... as PID N.` and `Child N died with code S`.
    struct CheckLog {
        let paths: [String]
        let isXinetd: Bool

        init(stack: TestStack) {
            isXinetd = TestStack.supervisor == "xinetd"
            let prefix = stack.directory + (isXinetd ? "/xinetd-" : "/activator-")
            paths = [prefix + "primary.log", prefix + "standby.log"]
        }

        func lines() -> [String] { paths.flatMap { TestStack.lines(of: $0) } }

        private static func words(_ line: String) -> [Substring] {
            line.split(whereSeparator: { $0 == " " || $0 == "\n" })
        }

        private static func field(_ name: String, of line: String) -> String? {
            words(line).first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
        }

        /// The pid of a check this line says was started.
        func startedPID(_ line: String) -> String? {
            if isXinetd { return line.contains(": START: pgsqlchk") ? Self.field("pid", of: line) : nil }
            guard line.hasPrefix("Spawned "), let last = Self.words(line).last, last.hasSuffix(".") else { return nil }
            return String(last.dropLast())
        }

        /// The pid and exit status of a check this line says ended.
        func exit(_ line: String) -> (pid: String, status: String)? {
            if isXinetd {
                guard line.contains(": EXIT: pgsqlchk"), let pid = Self.field("pid", of: line) else { return nil }
                return (pid, Self.field("status", of: line) ?? "?")
            }
            let words = Self.words(line)
            guard line.hasPrefix("Child "), words.count == 6, words[2] == "died" else { return nil }
            return (String(words[1]), String(words[5]))
        }

        /// A connection the super-server refused or failed to serve.
        func isRefusal(_ line: String) -> Bool {
            isXinetd ? line.contains("FAIL:") : line.lowercased().contains("fail")
        }
    }

    @Test("hundreds of HAProxy checks: no check error, every checker process exits")
    func manyChecks() throws {
        let (primary, standby) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        let checkLog = CheckLog(stack: stack)
        func logLines() -> [String] { checkLog.lines() }
        let before = Set(logLines())
        let interval = "100ms"
        try #require(stack.script("restart-haproxy", environment: ["PGSQLCHK_HAPROXY_INTER=\(interval)"]))
        defer { stack.script("restart-haproxy") }
        #expect(stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby)))
        let started = monotonicSeconds()
        usleep(12_000_000)
        let haproxyLines = TestStack.lines(of: stack.haproxyLog)
        let states = stack.serverStates()
        let inFlight = runningCheckers()
        let startedPIDs = logLines().filter { !before.contains($0) }.compactMap { checkLog.startedPID($0) }
        let elapsed = monotonicSeconds() - started
        // Longer than a check may live (its deadline, then HAProxy's timeout check).
        usleep(3_000_000)

        let exits = logLines().filter { !before.contains($0) }.compactMap { checkLog.exit($0) }
        let exitStatus = Dictionary(exits.map { ($0.pid, $0.status) }, uniquingKeysWith: { first, _ in first })
        let statusCounts = Dictionary(grouping: startedPIDs.compactMap { exitStatus[$0] }, by: { $0 }).mapValues(\.count)
        let errorKinds = ["Layer7 invalid response", "Socket error", "Connection reset", "Layer4", "Layer6", "timeout"]
        let errors = haproxyLines.filter { line in line.contains("Health check") && errorKinds.contains { line.contains($0) } }
        let refusals = logLines().filter { !before.contains($0) && checkLog.isRefusal($0) }
        print("e2e: \(TestStack.supervisor): \(startedPIDs.count) checks in \(elapsed) s at inter \(interval); exit statuses \(statusCounts); HAProxy check errors: \(errors.count); refusals: \(refusals.count); in flight at the end: \(inFlight.count)")
        #expect(startedPIDs.count >= 300)
        #expect(startedPIDs.allSatisfy { exitStatus[$0] != nil }, "checks without an EXIT line: \(startedPIDs.filter { exitStatus[$0] == nil }.prefix(5))")
        #expect(Set(statusCounts.keys).isSubset(of: ["0", "1"]), "\(statusCounts)")
        #expect(errors.isEmpty, "\(errors.prefix(5))")
        #expect(refusals.isEmpty, "\(refusals.prefix(3))")
        #expect(states == states.merging(TestStack.healthyStates(primary: primary, standby: standby)) { _, expected in expected }, "\(states)")
        let leftBehind = Set(inFlight).intersection(runningCheckers())
        #expect(leftBehind.isEmpty, "checkers still running after 3 s: \(leftBehind)")
    }

    /// Process ids that are executing the stack's copy of the binary.
    func runningCheckers() -> [String] {
        guard let proc = opendir("/proc") else { return [] }
        defer { closedir(proc) }
        var pids: [String] = []
        while let entry = readdir(proc) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.allSatisfy(\.isNumber) else { continue }
            var target = [CChar](repeating: 0, count: 4096)
            let length = readlink("/proc/\(name)/exe", &target, target.count - 1)
            if length > 0, String(decoding: target[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) == stack.binary {
                pids.append(name)
            }
        }
        return pids
    }

    @Test("the checks run a copy of the release binary with no Swift runtime library to load")
    func releaseBinary() throws {
        let ldd = Child.run(["/usr/bin/ldd", stack.binary], input: .null)
        #expect(ldd.status == 0, "\(ldd.text)")
        // libpq is loaded by the first probe (dlopen), never at start-up.
        #expect(!ldd.text.contains("libpq"), "\(ldd.text)")
        #expect(!ldd.text.contains("libswift"), "\(ldd.text)")
        #expect(!stack.binary.hasPrefix(TestCluster.repository), "\(stack.binary) is inside the build tree")
        for node in [Node.primary, .standby] {
            if TestStack.supervisor == "xinetd" {
                let configuration = TestStack.lines(of: stack.directory + "/xinetd-\(node.rawValue).conf")
                #expect(configuration.contains { $0.contains("server") && $0.hasSuffix("= \(stack.binary)\n") }, "xinetd-\(node.rawValue).conf does not run \(stack.binary)")
            } else {
                // Every check the activator spawned ran the copy, as the check user.
                let spawned = TestStack.lines(of: stack.directory + "/activator-\(node.rawValue).log").filter { $0.hasPrefix("Spawned ") }
                #expect(!spawned.isEmpty && spawned.allSatisfy { $0.contains("--reuid=pgsqlchk") && $0.contains("-- \(stack.binary))") },
                        "activator-\(node.rawValue).log: \(spawned.prefix(2))")
            }
            let reply = tcpExchange(port: stack.checkPort(of: node), request: "OPTIONS / HTTP/1.0\r\n\r\n")
            let response = try #require(reply.flatMap { ParsedResponse($0) }, "no strict HTTP answer on the \(node) check port")
            #expect([200, 206].contains(response.status))
        }
    }

    /// systemd-socket-activate has no equivalent of pgsqlchk.socket's
    /// IPAddressAllow= (a cgroup filter that needs systemd as PID 1).
    @Test("xinetd answers the listed HAProxy hosts only", .enabled(if: TestStack.supervisor == "xinetd"))
    func onlyFrom() throws {
        let (primary, _) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        let port = stack.checkPort(of: primary)
        let stranger = try #require(tcpExchange(port: port, request: "OPTIONS / HTTP/1.0\r\n\r\n", source: "127.0.0.2"), "could not connect from 127.0.0.2")
        #expect(stranger.isEmpty, "an unlisted host got: \(String(decoding: stranger, as: UTF8.self))")
        let listed = try #require(tcpExchange(port: port, request: "OPTIONS / HTTP/1.0\r\n\r\n").flatMap { ParsedResponse($0) })
        #expect(listed.status == 200)
        let log = TestStack.lines(of: stack.directory + "/xinetd-\(primary.rawValue).log")
        #expect(log.contains { $0.contains("FAIL: pgsqlchk address from=127.0.0.2") }, "no refusal logged")
    }
}
