#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PGSQLChkCore

/// Keeps the shipped deployment samples in step with one another and with the
/// code. Each operational number (the deadline, the ports, the connection
/// budget, xinetd's limits) has to be written in several of them; these tests
/// make a copy that drifts fail here, naming both files and both values,
/// instead of failing on a node.
@Suite("Deployment samples")
struct DeploymentSampleTests {
    private let checkService: XinetdService
    private let agentService: XinetdService
    private let services: [String: Int]
    private let socketUnit: SystemdUnit
    private let agentSocketUnit: SystemdUnit
    private let serviceUnit: SystemdUnit
    private let agentServiceUnit: SystemdUnit
    private let haproxy: HAProxyConfiguration
    private let roleConnectionLimit: Int

    init() throws {
        checkService = try XinetdService(try #require(Self.lines(of: "xinetd/pgsqlchk")))
        agentService = try XinetdService(try #require(Self.lines(of: "xinetd/pgsqlchk-agent")))
        services = try Self.servicePorts(try #require(Self.lines(of: "xinetd/services")))
        socketUnit = SystemdUnit(try #require(Self.lines(of: "systemd/pgsqlchk.socket")))
        agentSocketUnit = SystemdUnit(try #require(Self.lines(of: "systemd/pgsqlchk-agent.socket")))
        serviceUnit = SystemdUnit(try #require(Self.lines(of: "systemd/pgsqlchk@.service")))
        agentServiceUnit = SystemdUnit(try #require(Self.lines(of: "systemd/pgsqlchk-agent@.service")))
        haproxy = HAProxyConfiguration(try #require(Self.lines(of: "haproxy/haproxy.cfg")))
        roleConnectionLimit = try Self.connectionLimit(try #require(Self.lines(of: "sql/pgsqlchk-role.sql")))
    }

    @Test("the man page, the README and haproxy.cfg's comment state the default rejoin share the code uses")
    func defaultRejoinShare() throws {
        let percent = StandbyRequirements.defaultRejoinPercent
        let copies = [("man/pgsqlchk.1", "(default \(percent)%)"), ("README.md", "(`rejoin=`, default \(percent)%)"),
                      ("haproxy/haproxy.cfg", "below \(percent)% of it")]
        for (path, statement) in copies {
            let text = try #require(Self.lines(of: path)).joined(separator: " ").split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
            #expect(text.contains(statement), "\(path) does not say \"\(statement)\"")
        }
    }

    @Test("HAProxy waits for a check longer than pgsqlchk's default deadline, so it reads pgsqlchk's 503")
    func checkTimeoutAboveDeadline() throws {
        let deadline = Configuration.defaultTimeout.value
        let timeouts = haproxy.checkTimeouts
        try #require(!timeouts.isEmpty, "haproxy/haproxy.cfg: no server with `check`")
        for timeout in timeouts {
            #expect(timeout.milliseconds > deadline,
                    "haproxy/haproxy.cfg \(timeout.place) = \(timeout.milliseconds) ms is not above Configuration.defaultTimeout = \(deadline) ms")
        }
    }

    @Test("the check port is the same in /etc/services, xinetd, the socket unit and every HAProxy `check port`")
    func checkPortAgrees() throws {
        var copies = [
            Copy(place: "xinetd/pgsqlchk port", value: try checkService.integer("port")),
            Copy(place: "xinetd/services pgsqlchk", value: try #require(services["pgsqlchk"], "xinetd/services: no pgsqlchk line")),
            Copy(place: "systemd/pgsqlchk.socket ListenStream", value: try socketUnit.integer("Socket", "ListenStream")),
            Copy(place: "systemd/pgsqlchk.socket Description", value: try socketUnit.portInDescription()),
        ]
        let checked = haproxy.servers.filter { $0.has("check") && $0.value(after: "port") != nil }
        try #require(!checked.isEmpty, "haproxy/haproxy.cfg: no server with `check port`")
        copies += checked.map { Copy(place: "haproxy/haproxy.cfg \($0.place) check port", value: Int($0.value(after: "port")!) ?? -1) }
        expectAgreement(copies)
    }

    @Test("the agent port is the same in /etc/services, xinetd, the agent's socket unit and every HAProxy `agent-port`")
    func agentPortAgrees() throws {
        var copies = [
            Copy(place: "xinetd/pgsqlchk-agent port", value: try agentService.integer("port")),
            Copy(place: "systemd/pgsqlchk-agent.socket ListenStream", value: try agentSocketUnit.integer("Socket", "ListenStream")),
            Copy(place: "systemd/pgsqlchk-agent.socket Description", value: try agentSocketUnit.portInDescription()),
            Copy(place: "xinetd/services pgsqlchk-agent",
                 value: try #require(services["pgsqlchk-agent"], "xinetd/services: no pgsqlchk-agent line")),
        ]
        let agents = haproxy.servers.filter { $0.has("agent-check") }
        try #require(!agents.isEmpty, "haproxy/haproxy.cfg: no server with `agent-check`")
        copies += agents.map { Copy(place: "haproxy/haproxy.cfg \($0.place) agent-port", value: $0.value(after: "agent-port").flatMap { Int($0) } ?? -1) }
        expectAgreement(copies)
    }

    @Test("xinetd's check and agent instances together fit the pgsqlchk role's CONNECTION LIMIT")
    func xinetdInstancesFitConnectionLimit() throws {
        let check = try checkService.integer("instances")
        let agent = try agentService.integer("instances")
        #expect(check + agent <= roleConnectionLimit,
                "xinetd/pgsqlchk instances \(check) + xinetd/pgsqlchk-agent instances \(agent) = \(check + agent) exceeds sql/pgsqlchk-role.sql CONNECTION LIMIT \(roleConnectionLimit)")
    }

    @Test("the two socket units' MaxConnections together fit the pgsqlchk role's CONNECTION LIMIT")
    func socketConnectionsFitConnectionLimit() throws {
        let socket = try socketUnit.integer("Socket", "MaxConnections")
        let agent = try agentSocketUnit.integer("Socket", "MaxConnections")
        #expect(socket + agent <= roleConnectionLimit,
                "systemd/pgsqlchk.socket MaxConnections \(socket) + systemd/pgsqlchk-agent.socket MaxConnections \(agent) = \(socket + agent) exceeds sql/pgsqlchk-role.sql CONNECTION LIMIT \(roleConnectionLimit)")
    }

    @Test("the agent's socket unit admits as many agent checks, in all and per HAProxy host, as xinetd does")
    func agentSocketSizedLikeXinetd() throws {
        try expectSizedAlike(agentSocketUnit, "systemd/pgsqlchk-agent.socket", agentService, "xinetd/pgsqlchk-agent")
    }

    /// A socket unit's limits against its xinetd service's: in all, and per source.
    private func expectSizedAlike(_ socket: SystemdUnit, _ socketPlace: String, _ service: XinetdService, _ servicePlace: String) throws {
        expectAgreement([Copy(place: "\(servicePlace) instances", value: try service.integer("instances")),
                         Copy(place: "\(socketPlace) MaxConnections", value: try socket.integer("Socket", "MaxConnections"))])
        expectAgreement([Copy(place: "\(servicePlace) per_source", value: try service.integer("per_source")),
                         Copy(place: "\(socketPlace) MaxConnectionsPerSource",
                              value: try socket.integer("Socket", "MaxConnectionsPerSource"))])
    }

    @Test("the agent's units are the check's but for the agent's own settings")
    func agentUnitsMatchCheckUnits() {
        func settings(_ unit: SystemdUnit, but own: Set<String>) -> [String] {
            unit.settings.filter { !own.contains($0.key) }.map { "[\($0.section)] \($0.key)=\($0.value)" }
        }
        let serviceOwn: Set = ["Description", "ExecStart", "UnsetEnvironment"]
        #expect(settings(agentServiceUnit, but: serviceOwn) == settings(serviceUnit, but: serviceOwn))
        #expect(agentServiceUnit.settings.filter { $0.key == "ExecStart" }.map(\.value)
                    == serviceUnit.settings.filter { $0.key == "ExecStart" }.map { $0.value + " --agent" })
        #expect(agentServiceUnit.settings.filter { $0.key == "UnsetEnvironment" }.map(\.value) == ["PGSQLCHK_PEERS"])
        let socketOwn: Set = ["Description", "ListenStream", "MaxConnections", "MaxConnectionsPerSource"]
        #expect(settings(agentSocketUnit, but: socketOwn) == settings(socketUnit, but: socketOwn))
    }

    @Test("the socket unit admits as many checks, in all and per HAProxy host, as xinetd does")
    func socketSizedLikeXinetd() throws {
        try expectSizedAlike(socketUnit, "systemd/pgsqlchk.socket", checkService, "xinetd/pgsqlchk")
    }

    @Test("a deadline a sample sets in the checks' environment is the code's default")
    func environmentDeadlineIsDefault() throws {
        let deadline = Configuration.defaultTimeout.value
        for (place, service) in [("xinetd/pgsqlchk", checkService), ("xinetd/pgsqlchk-agent", agentService)] {
            let settings = (service.attributes["env"] ?? "").split(separator: " ")
            for setting in settings where setting.hasPrefix("PGSQLCHK_TIMEOUT=") {
                let value = setting.dropFirst("PGSQLCHK_TIMEOUT=".count)
                #expect(Self.milliseconds(seconds: value) == deadline,
                        "\(place) env \(setting) but Configuration.defaultTimeout = \(deadline) ms")
            }
        }
        // The defaults file shows each default, commented out.
        let defaults = try #require(Self.lines(of: "systemd/pgsqlchk.default"))
        let shown = try #require(defaults.first { $0.hasPrefix("#PGSQLCHK_TIMEOUT=") },
                                 "systemd/pgsqlchk.default: no #PGSQLCHK_TIMEOUT= line")
        #expect(Self.milliseconds(seconds: shown.dropFirst("#PGSQLCHK_TIMEOUT=".count)) == deadline,
                "systemd/pgsqlchk.default \(shown) but Configuration.defaultTimeout = \(deadline) ms")
    }

    @Test("the agent's xinetd service is the check's but for its port, arguments and limits")
    func agentServiceMatchesCheckService() throws {
        let agentOwn: Set = ["port", "server_args", "per_source", "instances"]
        for name in Set(checkService.attributes.keys).union(agentService.attributes.keys).subtracting(agentOwn).sorted() {
            #expect(agentService.attributes[name] == checkService.attributes[name],
                    "xinetd/pgsqlchk-agent \(name) = \(agentService.attributes[name] ?? "(unset)") but xinetd/pgsqlchk \(name) = \(checkService.attributes[name] ?? "(unset)")")
        }
        let checkArguments = try #require(checkService.attributes["server_args"])
        #expect(agentService.attributes["server_args"] == "--agent " + checkArguments,
                "xinetd/pgsqlchk-agent server_args = \(agentService.attributes["server_args"] ?? "(unset)") but xinetd/pgsqlchk server_args = \(checkArguments) (plus --agent)")
    }

    @Test("while a tripped xinetd cps limit lasts, HAProxy fails fewer checks in a row than its `fall`")
    func cpsPauseShorterThanFall() throws {
        let cps = try #require(checkService.attributes["cps"], "xinetd/pgsqlchk: no cps").split(separator: " ")
        let pause = try #require(cps.count == 2 ? Int(cps[1]) : nil, "xinetd/pgsqlchk cps = \(cps.joined(separator: " ")): not `rate seconds`") * 1_000
        let checked = haproxy.servers.filter { $0.has("check") }
        try #require(!checked.isEmpty, "haproxy/haproxy.cfg: no server with `check`")
        for server in checked {
            // After the first failure HAProxy checks every `fastinter`: the
            // failures fall at 0, fastinter, 2 x fastinter ... before the pause ends.
            let fastinter = try #require(server.fastinter, "haproxy/haproxy.cfg \(server.place): unreadable fastinter or inter")
            let failures = (pause + fastinter - 1) / fastinter
            let fall = try #require(server.fall, "haproxy/haproxy.cfg \(server.place): unreadable fall")
            #expect(failures < fall,
                    "xinetd/pgsqlchk cps pause \(pause) ms fails \(failures) checks at haproxy/haproxy.cfg \(server.place) fastinter \(fastinter) ms, not fewer than its fall \(fall)")
        }
    }

    @Test("the sizing example in sql/app-connection-limit.sql uses the pgsqlchk role's CONNECTION LIMIT and adds up")
    func clientLimitExampleAgrees() throws {
        let lines = try #require(Self.lines(of: "sql/app-connection-limit.sql"))
        let comment = lines.filter { $0.hasPrefix("--") }.map { $0.dropFirst(2).trimmingSpaces() }.joined(separator: " ")
        let example = try #require(comment.firstMatch(of: /max_connections (\d+), superuser_reserved_connections (\d+), pgsqlchk (\d+): app (\d+) leaves (\d+)/),
                                   "sql/app-connection-limit.sql: no sizing example in its comment")
        let (maximum, reserved, checks, app, left) = (Int(example.1)!, Int(example.2)!, Int(example.3)!, Int(example.4)!, Int(example.5)!)
        expectAgreement([Copy(place: "sql/pgsqlchk-role.sql CONNECTION LIMIT", value: roleConnectionLimit),
                         Copy(place: "sql/app-connection-limit.sql example pgsqlchk", value: checks)])
        #expect(maximum - reserved - checks - app == left,
                "sql/app-connection-limit.sql example: \(maximum) - \(reserved) - \(checks) - \(app) is \(maximum - reserved - checks - app), not \(left)")
    }

    // MARK: - Comparing copies

    /// One copy of an operational number: where it is written, and its value.
    struct Copy {
        var place: String
        var value: Int
    }

    /// Every copy equals the first; a failure names both places and values.
    private func expectAgreement(_ copies: [Copy], sourceLocation: SourceLocation = #_sourceLocation) {
        guard let reference = copies.first else { return }
        for copy in copies.dropFirst() {
            #expect(copy.value == reference.value,
                    "\(copy.place) = \(copy.value) but \(reference.place) = \(reference.value)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - Reading the samples

    /// The repository: the nearest folder above this file that holds
    /// `Package.swift`, wherever the test files are moved to.
    static let repository: String = {
        var root = #filePath
        repeat {
            root = String(root[..<(root.lastIndex(of: "/") ?? root.startIndex)])
        } while !root.isEmpty && access(root + "/Package.swift", F_OK) != 0
        return root
    }()

    /// The lines of a file of this repository, or nil if it cannot be read.
    static func lines(of path: String) -> [String]? {
        guard let file = fopen(repository + "/" + path, "r") else { return nil }
        defer { fclose(file) }
        var lines: [String] = []
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) >= 0, let line {
            lines.append(String(cString: line).trimmingSuffix("\n"))
        }
        return lines
    }

    /// `/etc/services` lines: service name to TCP port.
    static func servicePorts(_ lines: [String]) throws -> [String: Int] {
        var ports: [String: Int] = [:]
        for line in lines {
            let fields = line.prefix { $0 != "#" }.split(whereSeparator: \.isWhitespace)
            guard fields.count >= 2 else { continue }
            let port = try #require(fields[1].hasSuffix("/tcp") ? Int(fields[1].dropLast(4)) : nil,
                                    "xinetd/services: \(fields[1]) is not PORT/tcp")
            ports[String(fields[0])] = port
        }
        return ports
    }

    /// The `CONNECTION LIMIT` of `CREATE ROLE pgsqlchk`, outside comments.
    static func connectionLimit(_ lines: [String]) throws -> Int {
        let statements = lines.map { line in line.firstRange(of: "--").map { String(line[..<$0.lowerBound]) } ?? line }
            .joined(separator: " ")
        let match = try #require(statements.firstMatch(of: /CREATE ROLE pgsqlchk[^;]*CONNECTION LIMIT (\d+)/),
                                 "sql/pgsqlchk-role.sql: no CONNECTION LIMIT in CREATE ROLE pgsqlchk")
        return Int(match.1)!
    }

    /// Decimal seconds (`1.5`) in milliseconds; nil if not such a number.
    static func milliseconds(seconds: Substring) -> Int? {
        let parts = seconds.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let whole = Int(parts[0]) else { return nil }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard fraction.count <= 3, fraction.allSatisfy(\.isNumber) else { return nil }
        return whole * 1_000 + (Int(fraction + String(repeating: "0", count: 3 - fraction.count)) ?? 0)
    }
}

/// One xinetd `service { ... }` block: its attributes, values with
/// whitespace runs collapsed to one space.
struct XinetdService {
    let attributes: [String: String]

    init(_ lines: [String]) throws {
        var attributes: [String: String] = [:]
        for line in lines {
            let text = line.trimmingSpaces()
            guard !text.hasPrefix("#"), let equals = text.firstIndex(of: "=") else { continue }
            let name = text[..<equals].trimmingSpaces()
            try #require(attributes[name] == nil, "xinetd attribute \(name) set twice")
            attributes[name] = text[text.index(after: equals)...].split(whereSeparator: \.isWhitespace).joined(separator: " ")
        }
        self.attributes = attributes
    }

    func integer(_ name: String) throws -> Int {
        try #require(attributes[name].flatMap { Int($0) }, "xinetd attribute \(name) = \(attributes[name] ?? "(unset)"): not a number")
    }
}

/// A systemd unit file: `Key=value` settings by section.
struct SystemdUnit {
    let settings: [(section: String, key: String, value: String)]

    init(_ lines: [String]) {
        var section = ""
        var settings: [(section: String, key: String, value: String)] = []
        for line in lines where !line.hasPrefix("#") && !line.hasPrefix(";") {
            if line.hasPrefix("[") {
                section = String(line.dropFirst().prefix { $0 != "]" })
            } else if let equals = line.firstIndex(of: "=") {
                settings.append((section, line[..<equals].trimmingSpaces(), line[line.index(after: equals)...].trimmingSpaces()))
            }
        }
        self.settings = settings
    }

    func integer(_ section: String, _ key: String) throws -> Int {
        let values = settings.filter { $0.section == section && $0.key == key }.map(\.value)
        return try #require(values.count == 1 ? Int(values[0]) : nil, "systemd/pgsqlchk.socket [\(section)] \(key): \(values), not one number")
    }

    /// The `(port N)` that `systemctl status` shows in the description.
    func portInDescription() throws -> Int {
        let description = settings.first { $0.section == "Unit" && $0.key == "Description" }?.value ?? ""
        let match = try #require(description.firstMatch(of: /\(port (\d+)\)/), "systemd/pgsqlchk.socket Description: no (port N) in \(description)")
        return Int(match.1)!
    }
}

/// The parts of an HAProxy configuration the tests compare: the server lines
/// with the `default-server` settings they inherit, and `timeout check`.
struct HAProxyConfiguration {
    /// A `server` line, its keywords after the address preceded by those of
    /// the `default-server` lines that apply to it.
    struct Server {
        var place: String
        var words: [String]

        func has(_ keyword: String) -> Bool { words.contains(keyword) }

        /// The word after the last occurrence of `keyword`: the server line's
        /// own setting wins over `default-server`'s.
        func value(after keyword: String) -> String? {
            guard let index = words.lastIndex(of: keyword), index + 1 < words.count else { return nil }
            return words[index + 1]
        }

        /// HAProxy's defaults: inter 2s, fastinter as inter, fall 3.
        var inter: Int? { value(after: "inter").map(HAProxyConfiguration.milliseconds) ?? 2_000 }
        var fastinter: Int? { value(after: "fastinter").map(HAProxyConfiguration.milliseconds) ?? inter }
        var fall: Int? { value(after: "fall").map { Int($0) } ?? 3 }
    }

    /// How long HAProxy waits for one check's answer, and where that is set.
    struct CheckTimeout {
        var place: String
        var milliseconds: Int
    }

    let servers: [Server]
    let checkTimeouts: [CheckTimeout]

    init(_ lines: [String]) {
        var section = ""
        var defaultsServer: [String] = []
        var sectionServer: [String] = []
        var defaultsTimeout: (place: String, milliseconds: Int?)?
        var sectionTimeout: (place: String, milliseconds: Int?)?
        var servers: [Server] = []
        var timeouts: [CheckTimeout] = []
        for line in lines {
            let words = line.prefix { $0 != "#" }.split(whereSeparator: \.isWhitespace).map(String.init)
            guard let first = words.first else { continue }
            if !line.hasPrefix(" ") && !line.hasPrefix("\t") {
                section = words.joined(separator: " ")
                sectionServer = []
                sectionTimeout = nil
                continue
            }
            let isDefaults = section.hasPrefix("defaults")
            switch first {
            case "default-server":
                if isDefaults { defaultsServer += words.dropFirst() } else { sectionServer += words.dropFirst() }
            case "timeout" where words.count == 3 && words[1] == "check":
                let timeout = ("\(section): timeout check \(words[2])", Self.milliseconds(words[2]))
                if isDefaults { defaultsTimeout = timeout } else { sectionTimeout = timeout }
            case "server" where words.count >= 3:
                let server = Server(place: "\(section): server \(words[1])", words: defaultsServer + sectionServer + words.dropFirst(3))
                servers.append(server)
                guard server.has("check") else { break }
                // Without `timeout check`, HAProxy gives a check `inter`.
                let timeout = (sectionTimeout ?? defaultsTimeout).map { CheckTimeout(place: $0.place, milliseconds: $0.milliseconds ?? -1) }
                    ?? CheckTimeout(place: "\(server.place) inter", milliseconds: server.inter ?? -1)
                if !timeouts.contains(where: { $0.place == timeout.place }) { timeouts.append(timeout) }
            default:
                break
            }
        }
        self.servers = servers
        checkTimeouts = timeouts
    }

    /// An HAProxy time (`2500ms`, `1s`, `500`: milliseconds by default).
    static func milliseconds(_ time: String) -> Int? {
        let digits = time.prefix { $0.isNumber }
        guard let number = Int(digits) else { return nil }
        switch time.dropFirst(digits.count) {
        case "", "ms": return number
        case "s": return number * 1_000
        case "m": return number * 60_000
        case "h": return number * 3_600_000
        case "d": return number * 86_400_000
        default: return nil
        }
    }
}

private extension StringProtocol {
    func trimmingSpaces() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }

    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : String(self)
    }
}
