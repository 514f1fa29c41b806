import CLibPQ
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The agent's `maxconn` on the ReadWrite servers (haproxy/haproxy.cfg,
/// `agent-send "maxconn=only&maxconn_role=app\n"`), on the stack of
/// `scripts/stack.sh`: the value reaches HAProxy, follows the node's free
/// slots, and makes a flood of clients queue in HAProxy instead of taking the
/// slots the check needs. Each test leaves the agent enabled and the primary UP.
@Suite("The agent's maxconn keeps a flood of clients from failing the check", .serialized,
       .enabled(if: TestStack.isEnabled, TestStack.skipReason))
struct AgentMaxconnTests {
    let cluster: TestCluster
    let stack: TestStack

    init() throws {
        cluster = try TestCluster.required()
        stack = try TestStack.required()
    }

    /// The role the floods log in as: no CONNECTION LIMIT of its own
    /// (scripts/cluster.sh), so only the node's slots and HAProxy stop it.
    static let floodRole = "filler"

    /// How long a flood is given to settle: HAProxy forwards or queues a
    /// client at once, PostgreSQL accepts or refuses it within milliseconds;
    /// well inside `timeout queue`, after which HAProxy drops the waiting.
    static let floodSeconds = 1.5

    /// How long the queued flood is held: three of the sample's `inter 1s`,
    /// the `fall` that would take the primary DOWN if its checks failed.
    static let holdSeconds = 3.0

    /// HAProxy's current `maxconn` for the primary's ReadWrite server (`slim`
    /// in `show stat`: HAProxy 2.6's `show servers state` has no such column).
    func advertised(_ server: String) -> Int? {
        stack.statsRow("pg_readwrite", server)?["slim"].flatMap { Int($0) }
    }

    /// What the agent should advertise to this HAProxy (whose sessions come
    /// from 127.0.0.1) right now, computed here from the server's own views
    /// as README, "maxconn from the agent", states it.
    func expectedMaxconn(on primary: Node) throws -> Int {
        let connection = try #require(cluster.direct(primary))
        let sql = """
            SELECT GREATEST(1, LEAST(
                current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
                  - (SELECT rolconnlimit FROM pg_roles WHERE rolname = 'pgsqlchk')
                  - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename <> 'pgsqlchk'
                       AND client_addr IS DISTINCT FROM '127.0.0.1' AND pid <> pg_backend_pid()),
                (SELECT rolconnlimit FROM pg_roles WHERE rolname = 'app')
                  - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename = 'app'
                       AND client_addr IS DISTINCT FROM '127.0.0.1')))
            """
        return try #require(Int(try connection.value(sql).get()))
    }

    /// `max_connections`: a flood this size always exceeds what the node
    /// lets a non-superuser take.
    func maxConnections(on node: Node) throws -> Int {
        let connection = try #require(cluster.direct(node))
        return try #require(Int(try connection.value("SELECT current_setting('max_connections')").get()))
    }

    /// The HTTP check's status code on `node`'s check port, as HAProxy asks it.
    func checkStatus(_ node: Node) -> String {
        let reply = tcpExchange(port: stack.checkPort(of: node), request: "GET / HTTP/1.0\r\n\r\n").map { String(decoding: $0, as: UTF8.self) } ?? ""
        let status = reply.split(separator: " ").dropFirst().first.map(String.init) ?? "no answer"
        let body = reply.firstRange(of: "\r\n\r\n").map { reply[$0.upperBound...].prefix { $0 != "\n" } } ?? ""
        return status == "200" ? status : "\(status) \(body)"
    }

    @Test("the agent's maxconn reaches HAProxy: the node's spare slots, lowered by sessions from elsewhere, not by this HAProxy's own")
    func maxconnReachesHAProxy() throws {
        let (primary, standby) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        try #require(stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby)), "stats: \(stack.serverStates())")
        let server = TestStack.server(of: primary)
        let idle = try expectedMaxconn(on: primary)
        let settle = 3.0
        #expect(stack.waitUntil(seconds: settle) { advertised(server) == idle }, "slim \(advertised(server).map(String.init) ?? "none"), expected \(idle)")

        // Two sessions over the unix socket: from elsewhere, so two fewer.
        let socketConninfo = "host=\(cluster.socketDirectory) port=\(cluster.port(of: primary)) user=\(Self.floodRole) dbname=postgres connect_timeout=3"
        var elsewhere = [try ClientConnection.open(socketConninfo).get(), try ClientConnection.open(socketConninfo).get()]
        let lowered = try expectedMaxconn(on: primary)
        #expect(lowered == max(1, idle - 2))
        #expect(stack.waitUntil(seconds: settle) { advertised(server) == lowered }, "slim \(advertised(server).map(String.init) ?? "none"), expected \(lowered)")
        elsewhere.removeAll()

        // Sessions through this HAProxy are its own: the value does not move.
        try #require(stack.waitUntil(seconds: settle) { advertised(server) == idle })
        let own = ClientFlood(count: min(idle, 2), conninfo: TestStack.clientConninfo(port: stack.readWritePort, user: Self.floodRole))
        own.drive(seconds: Self.floodSeconds)
        #expect(own.connected == min(idle, 2), "failures: \(own.failures)")
        usleep(UInt32(settle * 1_000_000))
        #expect(advertised(server) == idle, "this HAProxy's own sessions lowered its maxconn")
        print("maxconn: idle \(idle), with 2 sessions elsewhere \(lowered), with \(own.connected) own sessions \(advertised(server) ?? -1)")
    }

    @Test("a flood through ReadWrite beyond the node's slots: the excess queues in HAProxy, no client fails, the check answers 200 throughout")
    func floodQueues() throws {
        let (primary, standby) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        try #require(stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby)), "stats: \(stack.serverStates())")
        let server = TestStack.server(of: primary)
        let maxconn = try expectedMaxconn(on: primary)
        try #require(stack.waitUntil(seconds: 3) { advertised(server) == maxconn })
        let slots = try maxConnections(on: primary)
        let downBefore = stack.downLines("pg_readwrite", server)

        let flood = ClientFlood(count: slots, conninfo: TestStack.clientConninfo(port: stack.readWritePort, user: Self.floodRole))
        var checks: [String] = []
        for _ in 0..<3 {
            flood.drive(seconds: Self.holdSeconds / 3)
            checks.append(checkStatus(primary))
        }
        let queued = stack.statsRow("pg_readwrite", server)?["qcur"].flatMap { Int($0) }
        print("maxconn: flood of \(slots) clients, maxconn \(maxconn): \(flood.connected) connected, \(flood.waiting) waiting (HAProxy qcur \(queued ?? -1)), \(flood.failures.count) failed; checks \(checks)")
        #expect(flood.connected == maxconn)
        #expect(flood.failures == [])
        #expect(flood.waiting == slots - maxconn)
        #expect(queued == slots - maxconn)
        #expect(checks == ["200", "200", "200"])
        #expect(stack.statsRow("pg_readwrite", server)?["status"] == "UP")
        #expect(stack.downLines("pg_readwrite", server) == downBefore)
    }

    @Test("without the agent's maxconn the same flood takes the check's slots: clients fail, the check answers 503, HAProxy marks the primary DOWN")
    func floodWithoutAgentFailsCheck() throws {
        let (primary, standby) = try #require(cluster.roles(), "the cluster needs one primary and one standby")
        try #require(stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby)), "stats: \(stack.serverStates())")
        let target = "pg_readwrite/\(TestStack.server(of: primary))"
        let slots = try maxConnections(on: primary)
        func downLines() -> Int { TestStack.lines(of: stack.haproxyLog).filter { $0.contains("\(target) is DOWN") }.count }
        let downBefore = downLines()
        var flood: ClientFlood?
        var topUps: [ClientFlood] = []
        defer {
            flood = nil
            topUps = []
            stack.adminCommand("enable agent \(target)")
            _ = stack.waitForStates(TestStack.healthyStates(primary: primary, standby: standby))
        }
        // The sample's default-server maxconn, as HAProxy has it without the agent.
        stack.adminCommand("disable agent \(target)")
        stack.adminCommand("set maxconn server \(target) 80")

        let conninfo = TestStack.clientConninfo(port: stack.readWritePort, user: Self.floodRole)
        flood = ClientFlood(count: slots, conninfo: conninfo)
        flood?.drive(seconds: Self.floodSeconds, untilSettled: true)
        // Sessions that were in flight when the flood arrived (HAProxy's own
        // checks, the agent's) end within milliseconds and free their slots;
        // a loaded machine made the check take one and answer 200. Take each
        // freed slot until two rounds in a row find none.
        var emptyRounds = 0
        while emptyRounds < 2, topUps.count < 20 {
            usleep(50_000)
            let topUp = ClientFlood(count: 2, conninfo: conninfo)
            topUp.drive(seconds: Self.floodSeconds, untilSettled: true)
            topUps.append(topUp)
            emptyRounds = topUp.connected == 0 ? emptyRounds + 1 : 0
        }
        // At once, before HAProxy's own checks fail `fall` times and
        // shutdown-sessions frees the slots by cutting every session.
        let check = checkStatus(primary)
        let failures = (flood?.failures ?? []) + topUps.flatMap(\.failures)
        let connected = (flood?.connected ?? 0) + topUps.map(\.connected).reduce(0, +)
        let down = stack.waitUntil(seconds: Self.holdSeconds + 1) { downLines() > downBefore }
        print("maxconn: without the agent, flood of \(slots) clients: \(connected) connected, \(failures.count) failed (\(Set(failures).sorted())), check \(check), primary DOWN: \(down)")
        #expect(!failures.isEmpty)
        #expect(failures.allSatisfy { $0.contains("too many") || $0.contains("reserved") })
        #expect(check == "503 too many connections")
        #expect(down, "HAProxy kept the primary UP while the flood held every slot")
    }
}

/// Many libpq connections opened at once without blocking, so that clients
/// HAProxy queues can be told from those it forwards and those PostgreSQL
/// refuses. Closed when the value goes away.
final class ClientFlood {
    private var connections: [OpaquePointer] = []
    private var polling: [PostgresPollingStatusType] = []

    /// Starts `count` connections with `conninfo`.
    init(count: Int, conninfo: String) {
        for _ in 0..<count {
            guard let connection = PQconnectStart(conninfo) else { continue }
            connections.append(connection)
            polling.append(PQstatus(connection) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING)
        }
    }

    deinit { connections.forEach { PQfinish($0) } }

    /// Advances every connection still in progress for `seconds`, or until
    /// none is (`untilSettled`) (libpq: `PQconnectPoll` when its socket is ready).
    func drive(seconds: Double, untilSettled: Bool = false) {
        let end = monotonicSeconds() + seconds
        while monotonicSeconds() < end, !(untilSettled && waiting == 0) {
            for index in connections.indices where polling[index] == PGRES_POLLING_READING || polling[index] == PGRES_POLLING_WRITING {
                var descriptor = pollfd(fd: PQsocket(connections[index]),
                                        events: Int16(polling[index] == PGRES_POLLING_READING ? POLLIN : POLLOUT), revents: 0)
                if poll(&descriptor, 1, 0) > 0 { polling[index] = PQconnectPoll(connections[index]) }
            }
            usleep(5_000)
        }
    }

    /// Connections that logged in.
    var connected: Int { polling.filter { $0 == PGRES_POLLING_OK }.count }

    /// Connections still waiting for the server: queued in HAProxy.
    var waiting: Int { polling.filter { $0 == PGRES_POLLING_READING || $0 == PGRES_POLLING_WRITING }.count }

    /// The error of each connection that failed.
    var failures: [String] {
        connections.indices.filter { polling[$0] == PGRES_POLLING_FAILED }.map {
            String(cString: PQerrorMessage(connections[$0])).split(separator: "\n").joined(separator: " ")
        }
    }
}
