import CLibPQ
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// xinetd and HAProxy that `scripts/stack.sh start` runs from the shipped
/// samples in front of the test cluster, read from `$RUN/stack.env`.
struct TestStack {
    let directory: String
    let readWritePort: String
    let readOnlyPort: String
    let statsPort: String
    let primaryCheckPort: String
    let standbyCheckPort: String
    let binary: String
    let haproxyLog: String

    static let contract = EnvironmentContract(
        names: ["PGSQLCHK_STACK_DIR", "PGSQLCHK_RW_PORT", "PGSQLCHK_RO_PORT", "PGSQLCHK_STATS_PORT", "PGSQLCHK_PRIMARY_CHECK_PORT",
                "PGSQLCHK_STANDBY_CHECK_PORT", "PGSQLCHK_STACK_BINARY", "PGSQLCHK_HAPROXY_LOG", "PGSQLCHK_SUPERVISOR"],
        source: "scripts/stack.sh start, then . $PGSQLCHK_RUN_DIR/stack.env")

    /// Suites on the stack need the cluster behind it too.
    static var isEnabled: Bool { contract.isEnabled && TestCluster.contract.isEnabled }

    static var skipReason: Comment {
        contract.missing.isEmpty ? TestCluster.contract.skipReason : contract.skipReason
    }

    /// The stack the environment names, with HAProxy and both nodes' check
    /// supervisors running.
    static func required() throws(LiveEnvironmentError) -> TestStack {
        let values = try contract.values()
        let stack = TestStack(directory: values["PGSQLCHK_STACK_DIR"]!, readWritePort: values["PGSQLCHK_RW_PORT"]!,
                              readOnlyPort: values["PGSQLCHK_RO_PORT"]!, statsPort: values["PGSQLCHK_STATS_PORT"]!,
                              primaryCheckPort: values["PGSQLCHK_PRIMARY_CHECK_PORT"]!, standbyCheckPort: values["PGSQLCHK_STANDBY_CHECK_PORT"]!,
                              binary: values["PGSQLCHK_STACK_BINARY"]!, haproxyLog: values["PGSQLCHK_HAPROXY_LOG"]!)
        let supervisor = supervisor == "xinetd" ? "xinetd" : "activator"
        for server in ["haproxy", "\(supervisor)-primary", "\(supervisor)-standby"] {
            let path = "\(stack.directory)/\(server).pid"
            guard let pid = pidFile(path), processIsRunning(pid) else {
                throw .serverNotRunning("\(server) is not running (no live pid in \(path); scripts/stack.sh start)")
            }
        }
        return stack
    }

    /// The HAProxy server line that points at `node` (the shipped sample's
    /// first server is rendered as the primary node, the second as the standby).
    static func server(of node: Node) -> String { node == .primary ? "pg1" : "pg2" }

    func checkPort(of node: Node) -> String { node == .primary ? primaryCheckPort : standbyCheckPort }

    /// Runs `scripts/stack.sh` with `arguments`; true when it succeeded.
    @discardableResult
    func script(_ arguments: String..., environment: [String] = []) -> Bool {
        Child.run(["/bin/bash", TestCluster.repository + "/scripts/stack.sh"] + arguments, input: .null,
                  environment: Child.projectEnvironment() + environment).status == 0
    }

    /// Every server's status ("UP", "DOWN", ...) from the stats CSV, keyed "proxy/server".
    func serverStates() -> [String: String] {
        var states: [String: String] = [:]
        for row in statsRows() where row["svname"] != "FRONTEND" && row["svname"] != "BACKEND" {
            states["\(row["# pxname"] ?? "")/\(row["svname"] ?? "")"] = row["status"]
        }
        return states
    }

    /// The stats page as CSV rows keyed by the header's field names.
    func statsRows() -> [[String: String]] {
        guard let reply = tcpExchange(port: statsPort, request: "GET /stats;csv HTTP/1.0\r\n\r\n"),
              let body = Self.chunkedBody(of: reply)
        else { return [] }
        let lines = String(decoding: body, as: UTF8.self).split(separator: "\n")
        guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init) else { return [] }
        return lines.dropFirst().map { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            return Dictionary(zip(header, fields), uniquingKeysWith: { first, _ in first })
        }
    }

    /// The body of an HTTP response in chunked transfer coding (which HAProxy's
    /// stats page uses even for HTTP/1.0), or nil when it is malformed.
    static func chunkedBody(of reply: [UInt8]) -> [UInt8]? {
        let crlf: [UInt8] = [13, 10]
        func lineEnd(from start: Int) -> Int? {
            var index = start
            while index + 1 < reply.count {
                if reply[index] == 13, reply[index + 1] == 10 { return index }
                index += 1
            }
            return nil
        }
        var index = 0
        while let end = lineEnd(from: index), end != index { index = end + 2 }
        index += crlf.count
        var body: [UInt8] = []
        while let end = lineEnd(from: index), let size = Int(String(decoding: reply[index..<end], as: UTF8.self), radix: 16) {
            if size == 0 { return body }
            let start = end + 2
            guard start + size <= reply.count else { return nil }
            body += reply[start..<start + size]
            index = start + size + 2
        }
        return nil
    }

    /// Polls `condition` every 50 ms for up to `seconds`; true once it held.
    func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
        let giveUp = monotonicSeconds() + seconds
        while monotonicSeconds() < giveUp {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }

    /// Lines of a log file (empty when it cannot be read).
    static func lines(of path: String) -> [String] {
        guard let file = fopen(path, "r") else { return [] }
        defer { fclose(file) }
        var lines: [String] = []
        var buffer = [CChar](repeating: 0, count: 4096)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            lines.append(String(cString: buffer))
        }
        return lines
    }
}

/// Sends `request` to 127.0.0.1:`port` (from `source` when given), then reads
/// until the peer closes; nil when the connection could not be made.
func tcpExchange(port: String, request: String, source: String? = nil) -> [UInt8]? {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    func address(_ text: String, _ port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, text, &address.sin_addr)
        return address
    }
    if let source {
        var local = address(source, 0)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { return nil }
    }
    var remote = address("127.0.0.1", UInt16(port)!)
    let connected = withUnsafePointer(to: &remote) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return nil }
    return sendAndReadToEnd(descriptor, request)
}

/// One libpq connection, closed when the value goes away.
final class ClientConnection {
    let raw: OpaquePointer

    /// Connects with `conninfo`; nil and the server's message when it fails.
    static func open(_ conninfo: String) -> Result<ClientConnection, ConnectionError> {
        guard let raw = PQconnectdb(conninfo) else { return .failure(ConnectionError(message: "out of memory")) }
        guard PQstatus(raw) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(raw))
            PQfinish(raw)
            return .failure(ConnectionError(message: message))
        }
        return .success(ClientConnection(raw: raw))
    }

    private init(raw: OpaquePointer) { self.raw = raw }

    deinit { PQfinish(raw) }

    /// The first value of `sql`'s result, or the error as a failure.
    func value(_ sql: String) -> Result<String, ConnectionError> {
        guard let result = PQexec(raw, sql) else { return .failure(ConnectionError(message: "out of memory")) }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            return .failure(ConnectionError(message: String(cString: PQresultErrorMessage(result))))
        }
        guard PQntuples(result) > 0 else { return .success("") }
        return .success(String(cString: PQgetvalue(result, 0, 0)))
    }
}

struct ConnectionError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

extension TestStack {
    /// What serves the check ports: `xinetd`, or `systemd` for
    /// `systemd-socket-activate` (stack.sh's PGSQLCHK_SUPERVISOR).
    static var supervisor: String { LiveEnvironment.value(of: "PGSQLCHK_SUPERVISOR") ?? "xinetd" }

    /// The drain file of `node`'s checks (both the HTTP check and the agent).
    func maintenanceFile(of node: Node) -> String { "\(directory)/maintenance-\(node.rawValue)" }

    /// The `server` lines of the section named `section` (`pg_readwrite`,
    /// `pg_readonly_standbys`) in the rendered haproxy.cfg.
    func serverLines(of section: String) -> [String] {
        let lines = Self.lines(of: directory + "/haproxy.cfg")
        let sectionWords: Set<Substring> = ["listen", "backend", "frontend"]
        guard let start = lines.firstIndex(where: { line in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\n" })
            return words.count == 2 && sectionWords.contains(words[0]) && words[1] == section
        }) else { return [] }
        let body = lines[(start + 1)...].prefix { $0.first == "\t" || $0.first == " " || $0.first == "#" }
        return body.filter { $0.trimmingPrefix(while: { $0 == "\t" || $0 == " " }).hasPrefix("server ") }
    }

    /// What a server's stats row went through while `watch` polled it.
    struct Transition {
        let reached: Bool
        let seconds: Double
        /// Each value of the watched field, in the order seen, repeats dropped.
        let seen: [String]
    }

    /// Polls `proxy/server`'s stats row every 50 ms for up to `seconds`, until
    /// `condition` holds, recording the values of `field` on the way.
    func watch(_ proxy: String, _ server: String, field: String = "status", seconds: Double,
               until condition: ([String: String]) -> Bool) -> Transition {
        let start = monotonicSeconds()
        var seen: [String] = []
        while true {
            let row = statsRow(proxy, server) ?? [:]
            let value = row[field] ?? "?"
            if seen.last != value { seen.append(value) }
            if condition(row) { return Transition(reached: true, seconds: monotonicSeconds() - start, seen: seen) }
            if monotonicSeconds() - start > seconds { return Transition(reached: false, seconds: monotonicSeconds() - start, seen: seen) }
            usleep(50_000)
        }
    }

    /// How many of HAProxy's log lines mark `proxy/server` DOWN.
    func downLines(_ proxy: String, _ server: String) -> Int {
        TestStack.lines(of: haproxyLog).filter { $0.contains("\(proxy)/\(server) is DOWN") }.count
    }

    /// One server's row of the stats CSV.
    func statsRow(_ proxy: String, _ server: String) -> [String: String]? {
        statsRows().first { $0["# pxname"] == proxy && $0["svname"] == server }
    }

    /// The reply to one command on HAProxy's admin socket (`show servers
    /// state`, `disable agent b/s`), or nil when it cannot be reached.
    @discardableResult
    func adminCommand(_ command: String) -> String? {
        let path = directory + "/haproxy.sock"
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.prefix(buffer.count - 1).enumerated() { buffer[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return nil }
        return String(decoding: sendAndReadToEnd(descriptor, command + "\n"), as: UTF8.self)
    }

    /// A server's fields from `show servers state` (srv_op_state,
    /// srv_admin_state, srv_uweight, ...), keyed by the header's names.
    func serverState(_ proxy: String, _ server: String) -> [String: String]? {
        guard let reply = adminCommand("show servers state \(proxy)") else { return nil }
        let lines = reply.split(separator: "\n")
        guard let header = lines.first(where: { $0.hasPrefix("# be_id") })?.dropFirst(2).split(separator: " ").map(String.init) else { return nil }
        for line in lines where !line.hasPrefix("#") {
            let fields = line.split(separator: " ").map(String.init)
            let row = Dictionary(zip(header, fields), uniquingKeysWith: { first, _ in first })
            if row["be_name"] == proxy, row["srv_name"] == server { return row }
        }
        return nil
    }
}


/// Roles, client connections and HAProxy's states, as the suites on the
/// stack share them.
extension TestStack {
    /// The table the write tests insert into through HAProxy.
    static let writeTable = "e2e_writes"

    static func clientConninfo(port: String, user: String = "app") -> String {
        "host=127.0.0.1 port=\(port) user=\(user) dbname=postgres connect_timeout=5 application_name=e2e"
    }

    /// One new connection through `port`, one statement; the server's answer.
    static func through(_ port: String, _ sql: String) -> Result<String, ConnectionError> {
        ClientConnection.open(clientConninfo(port: port)).flatMap { $0.value(sql) }
    }

    static func write(through port: String) -> Result<String, ConnectionError> {
        through(port, "INSERT INTO \(writeTable) VALUES (inet_server_port()) RETURNING port")
    }

    /// Waits until HAProxy reports every `expected` server state.
    @discardableResult
    func waitForStates(_ expected: [String: String], seconds: Double = 10) -> Bool {
        waitUntil(seconds: seconds) {
            let states = serverStates()
            // The agent marks its own verdict: a dead node reads "DOWN (agent)".
            return expected.allSatisfy { states[$0.key] == $0.value || states[$0.key] == $0.value + " (agent)" }
        }
    }

    /// The HAProxy states of a healthy cluster with `primary` and `standby`.
    static func healthyStates(primary: Node, standby: Node) -> [String: String] {
        let (p, s) = (server(of: primary), server(of: standby))
        return ["pg_readwrite/\(p)": "UP", "pg_readwrite/\(s)": "DOWN",
                "pg_readonly_standbys/\(p)": "DOWN", "pg_readonly_standbys/\(s)": "UP",
                "pg_readonly_primary/\(p)": "UP", "pg_readonly_primary/\(s)": "DOWN"]
    }
}

extension TestCluster {
    /// A superuser connection straight to `node` over the socket directory.
    func direct(_ node: Node) -> ClientConnection? {
        try? ClientConnection.open("host=\(socketDirectory) port=\(port(of: node)) user=postgres dbname=postgres connect_timeout=3").get()
    }

    /// The node that is not in recovery, and the one that is; nil unless the
    /// cluster has exactly one of each.
    func roles() -> (primary: Node, standby: Node)? {
        let inRecovery = [Node.primary, .standby].map { node in (node, try? direct(node)?.value("SELECT pg_is_in_recovery()").get()) }
        let primaries = inRecovery.filter { $0.1 == "f" }.map(\.0)
        let standbys = inRecovery.filter { $0.1 == "t" }.map(\.0)
        guard primaries.count == 1, standbys.count == 1 else { return nil }
        return (primaries[0], standbys[0])
    }

    func prepareWriteTable(on primary: Node) throws {
        let connection = try #require(direct(primary))
        _ = try connection.value("CREATE TABLE IF NOT EXISTS \(TestStack.writeTable) (port int, at timestamptz DEFAULT now()); GRANT INSERT, SELECT ON \(TestStack.writeTable) TO app").get()
    }
}

/// The check intervals the rendered haproxy.cfg really uses, read from its
/// `default-server` line, so the timing bounds follow the configuration.
struct CheckIntervals {
    var inter = 0.0, fastinter = 0.0, downinter = 0.0
    var fall = 0.0, rise = 0.0

    init?(configuration path: String) {
        guard let line = TestStack.lines(of: path).first(where: { $0.contains("default-server") }) else { return nil }
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
        func value(_ keyword: String) -> Double? {
            guard let index = words.firstIndex(of: keyword), index + 1 < words.count else { return nil }
            let text = words[index + 1]
            if text.hasSuffix("ms") { return Double(text.dropLast(2)).map { $0 / 1000 } }
            if text.hasSuffix("s") { return Double(text.dropLast()) }
            return Double(text)
        }
        guard let inter = value("inter"), let fall = value("fall"), let rise = value("rise") else { return nil }
        self.inter = inter
        self.fastinter = value("fastinter") ?? inter
        self.downinter = value("downinter") ?? inter
        self.fall = fall
        self.rise = rise
    }

    /// How long HAProxy may take to mark a dead UP server DOWN.
    var downBound: Double { inter + (fall - 1) * fastinter }
    /// How long HAProxy may take to mark a DOWN server that now passes UP.
    var upBound: Double { downinter + (rise - 1) * fastinter }
}
