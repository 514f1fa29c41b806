import CLibPQ
import ParsedResponse
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Every suite that talks to the shared cluster nests in this one: they stop,
/// freeze and pause its nodes, so none may run beside another.
@Suite(.serialized, .enabled(if: TestCluster.contract.isEnabled, TestCluster.contract.skipReason))
enum LiveServers {}

extension LiveServers {
    /// The built binary against the real primary and streaming standby that
    /// `scripts/cluster.sh` starts. Some tests stop or freeze a node.
    @Suite("pgsqlchk against a real primary and standby")
    struct LiveCheckTests {
        let cluster: TestCluster
        static let checkRequest = "OPTIONS / HTTP/1.0\r\n\r\n"
        /// The deadline the timing tests give the check, and the slack they allow
        /// on top for process start and exit on a loaded two-core machine.
        static let deadline = 1.0
        static let margin = 0.35

        init() throws { cluster = try TestCluster.required() }

        func check(host: String? = nil, port: String, user: String = "pgsqlchk", options: [String] = [],
                   input: Child.Input = .socket(request: checkRequest, hangUp: false)) -> ChildResult {
            Child.run([TestCluster.binary, "-h", host ?? cluster.socketDirectory, "-p", port, "-U", user, "-d", "postgres"] + options, input: input)
        }

        @Test("the primary answers 200 and the standby 206, over the socket directory and over TCP", arguments: [
            (Node.primary, false, 200, "primary", 0),
            (Node.primary, true, 200, "primary", 0),
            (Node.standby, false, 206, "standby", 1),
            (Node.standby, true, 206, "standby", 1),
        ] as [(Node, Bool, Int, String, Int32)])
        func roles(node: Node, overTCP: Bool, status: Int, body: String, exitStatus: Int32) throws {
            let result = check(host: overTCP ? "127.0.0.1" : nil, port: cluster.port(of: node))
            let response = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            #expect(response.status == status)
            #expect(response.body == body)
            #expect(response.headers["connection"] == "close")
            #expect(result.status == exitStatus)
        }

        @Test("both nodes run the PostgreSQL major the run asked for, as the check itself sees it", arguments: [Node.primary, .standby])
        func serverVersion(node: Node) throws {
            let result = check(port: cluster.port(of: node), input: .socket(request: "GET /status HTTP/1.0\r\n\r\n", hangUp: false))
            let body = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)").body
            let field = try #require(body.firstRange(of: "\"server_version\": \""), "no server_version in \(body)")
            let version = body[field.upperBound...].prefix { $0 != "\"" }
            // In the test log, so a run says what it ran against.
            print("\(node.rawValue): PostgreSQL \(version)")
            #expect(version.prefix { $0 != "." } == cluster.postgresMajor)
        }

        @Test("run by hand it prints the same response and never waits for input")
        func handRun() throws {
            let result = check(port: cluster.primaryPort, input: .silentPipe)
            let response = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            #expect(response.status == 200)
            #expect(result.seconds < 0.5)
        }

        @Test("a stopped server gets a 503 at once")
        func stoppedServer() throws {
            try #require(cluster.script("pg_ctl", "standby", "stop", "-m", "immediate"))
            defer { cluster.script("pg_ctl", "standby", "start", "-w", "-l", cluster.runDirectory + "/standby.log") }
            let result = check(port: cluster.standbyPort)
            let response = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            #expect(response.status == 503)
            #expect(response.body == "no response from server")
            #expect(result.status == 2)
            #expect(result.seconds < 0.3)
        }

        @Test("a frozen postmaster gets a 503 timeout within the deadline", arguments: [false, true])
        func frozenPostmaster(overTCP: Bool) throws {
            let pid = try #require(cluster.postmasterPID(of: .primary))
            kill(pid, SIGSTOP)
            defer { kill(pid, SIGCONT) }
            let result = check(host: overTCP ? "127.0.0.1" : nil, port: cluster.primaryPort, options: ["-t", "\(Self.deadline)"])
            let response = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            #expect(response.status == 503)
            #expect(response.body.hasPrefix("timeout while "))
            #expect(result.seconds >= Self.deadline - 0.05)
            #expect(result.seconds < Self.deadline + Self.margin)
        }

        @Test("a server that completes the login and never answers the query gets a 503 timeout within the deadline")
        func silentServer() throws {
            let proxyPort = try #require(unusedPort(), "no free port for the proxy")
            let proxy = try #require(BackgroundProcess.start(
                ["/usr/bin/python3", TestCluster.repository + "/scripts/stall-proxy.py", proxyPort, "127.0.0.1", cluster.primaryPort],
                logPath: cluster.runDirectory + "/stall-proxy.log", readyText: "ready"))
            defer { proxy.stop() }
            let result = check(host: "127.0.0.1", port: proxyPort, options: ["-t", "\(Self.deadline)"])
            let response = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            #expect(response.status == 503)
            #expect(response.body == "timeout while querying")
            #expect(result.seconds >= Self.deadline - 0.05)
            #expect(result.seconds < Self.deadline + Self.margin)
        }

        @Test("failed authentication is a 503 that points at the configuration", arguments: [
            ("pgsqlchk_pw", "authentication failed (check pgsqlchk's role and pg_hba.conf)"),
            ("pgsqlchk_denied", "authentication failed (check pgsqlchk's role and pg_hba.conf)"),
            ("no_such_role", "authentication failed (check pgsqlchk's role and pg_hba.conf)"),
        ])
        func authentication(user: String, reason: String) throws {
            let result = check(host: "127.0.0.1", port: cluster.primaryPort, user: user)
            let response = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            #expect(response.status == 503)
            #expect(response.body == reason)
            #expect(!result.text.contains("FATAL"))
        }

        @Test("exhausted connection slots give a 503 too many connections within the deadline")
        func tooManyConnections() throws {
            var held: [OpaquePointer] = []
            defer { held.forEach { PQfinish($0) } }
            let conninfo = "host=\(cluster.socketDirectory) port=\(cluster.primaryPort) user=filler dbname=postgres"
            for _ in 0..<40 {
                guard let connection = PQconnectdb(conninfo) else { break }
                guard PQstatus(connection) == CONNECTION_OK else {
                    PQfinish(connection)
                    break
                }
                held.append(connection)
            }
            try #require(held.count >= 5, "could not open client connections")
            let result = check(port: cluster.primaryPort, options: ["-t", "\(Self.deadline)"])
            let response = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            #expect(response.status == 503)
            #expect(response.body == "too many connections")
            #expect(result.seconds < Self.deadline + Self.margin)
        }

        @Test("a peer that hangs up before the answer ends the check normally, without a signal", arguments: [Node.primary, Node.standby])
        func peerHangsUp(node: Node) {
            let result = check(port: cluster.port(of: node), input: .socket(request: Self.checkRequest, hangUp: true))
            #expect(result.status == (node == .primary ? 0 : 1))
        }

        @Test("with stderr on the socket, a failing check still sends nothing but one response")
        func diagnosticsStayOffTheSocket() throws {
            let result = check(port: "1", user: "nobody_here")
            #expect(result.text.hasPrefix("HTTP/1.1 503 no response from server\r\n"))
            let response = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            #expect(response.body == "no response from server")
        }

        @Test("a bad command line on a check connection is a 503 and exit status 64")
        func usageErrorOnSocket() throws {
            let result = check(port: cluster.primaryPort, options: ["--timeout=soon"])
            let response = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            #expect(response.status == 503)
            #expect(response.body == "invalid pgsqlchk options")
            #expect(result.status == 64)
        }
    }
}
