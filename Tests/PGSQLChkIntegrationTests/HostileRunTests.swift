#if canImport(Glibc)
import Glibc
#endif
import ParsedResponse
import Testing

extension LiveServers {
    /// The defects a hostile run found (issue 9), each kept fixed against the
    /// real primary and standby: late requests, hostile operators, the
    /// backstop's answer and close, oversized heads, secrets in the log, TLS
    /// reasons and the agent's usage errors.
    @Suite("Hostile run: answers only to questions asked, under any fault")
    struct HostileRunTests {
        let cluster: TestCluster

        init() throws { cluster = try TestCluster.required() }

        func run(node: Node, options: [String] = [], input: Child.Input) -> ChildResult {
            Child.run([TestCluster.binary, "-h", cluster.socketDirectory, "-p", cluster.port(of: node), "-U", "pgsqlchk", "-d", "postgres"] + options,
                      input: input)
        }

        func response(_ result: ChildResult) throws -> ParsedResponse {
            try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
        }

        @Test("a request that arrives late, as after one lost segment, gets its own answer, never the classic one")
        func lateRequest() throws {
            let late = run(node: .primary, input: .socket(request: "GET /replica HTTP/1.1\r\n\r\n", hangUp: false, delay: 0.3))
            let answer = try response(late)
            #expect(answer.status == 503)
            #expect(answer.body == "not a standby: primary")
        }

        @Test("a late agent-send line is read, not ignored")
        func lateAgentSend() {
            let late = run(node: .standby, options: ["--agent"], input: .socket(request: "lag=lots\n", hangUp: false, delay: 0.3))
            #expect(late.text == "down #agent-send: invalid lag \"lots\": expected bytes such as 1048576, 16MB or 1GB\n")
        }

        @Test("a peer that sends nothing gets the classic answer once the wait for a request ends, within the deadline")
        func silentPeer() throws {
            let silent = run(node: .primary, options: ["-t", "1"], input: .socket(request: "", hangUp: false))
            #expect(try response(silent).status == 200)
            // Two thirds of the deadline waiting, then the probe; plus the close's drain.
            #expect(silent.seconds > 0.6)
            #expect(silent.seconds < 1.0 + 0.35)
        }

        @Test("an operator or search path a role can plant does not fake a caught-up standby (CVE-2018-1058 pattern)")
        func hostileOperators() throws {
            let planted = """
                CREATE FUNCTION public.pgsqlchk_zero(numeric, integer) RETURNS numeric LANGUAGE sql AS 'SELECT 0::numeric';
                CREATE OPERATOR public.* (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.pgsqlchk_zero);
                CREATE SCHEMA pgsqlchk_evil;
                CREATE FUNCTION pgsqlchk_evil.always(pg_lsn, pg_lsn) RETURNS boolean LANGUAGE sql AS 'SELECT true';
                CREATE OPERATOR pgsqlchk_evil.<= (LEFTARG = pg_lsn, RIGHTARG = pg_lsn, FUNCTION = pgsqlchk_evil.always);
                ALTER ROLE pgsqlchk SET search_path = pgsqlchk_evil, pg_catalog, public;
                CREATE TABLE pgsqlchk_hostile AS SELECT 1 AS g
                """
            try #require(cluster.sql(.primary, planted) != nil, "could not plant the hostile objects")
            var resumed = false
            defer {
                if !resumed { _ = cluster.sql(.standby, "SELECT pg_catalog.pg_wal_replay_resume()") }
                _ = cluster.sql(.primary, """
                    DROP TABLE IF EXISTS pgsqlchk_hostile; ALTER ROLE pgsqlchk RESET search_path;
                    DROP SCHEMA IF EXISTS pgsqlchk_evil CASCADE;
                    DROP OPERATOR IF EXISTS public.* (numeric, integer); DROP FUNCTION IF EXISTS public.pgsqlchk_zero(numeric, integer)
                    """)
            }
            let planting = try #require(cluster.sql(.primary, "SELECT pg_catalog.pg_current_wal_lsn()"))
            try #require(cluster.waitFor(.standby, "SELECT pg_catalog.pg_last_wal_replay_lsn() >= '\(planting)'"), "the objects never replayed")
            try #require(cluster.sql(.standby, "SELECT pg_catalog.pg_wal_replay_pause()") != nil)
            usleep(1_600_000)
            try #require(cluster.sql(.primary, "INSERT INTO pgsqlchk_hostile VALUES (2)") != nil)
            // The insert position: the test cluster commits asynchronously, so the write position may not cover the commit yet.
            let written = try #require(cluster.sql(.primary, "SELECT pg_catalog.pg_current_wal_insert_lsn()"))
            try #require(cluster.waitFor(.standby, "SELECT pg_catalog.pg_last_wal_receive_lsn() >= '\(written)'"), "the standby never received the WAL")

            let delayed = try response(run(node: .standby, input: .socket(request: "GET /replica?replay_delay=1s HTTP/1.1\r\n\r\n", hangUp: false)))
            #expect(delayed.status == 503)
            #expect(delayed.body.hasPrefix("replay delay "))

            try #require(cluster.sql(.standby, "SELECT pg_catalog.pg_wal_replay_resume()") != nil)
            resumed = true
        }

        @Test("a head over 8 KiB is a 400 without asking the database, even when a line ended before the cut")
        func oversizedHead() throws {
            let padded = "GET / HTTP/1.1\r\nX-Pad: " + String(repeating: "a", count: 10_000) + "\r\n\r\n"
            // Port 1 has no server: any database question would be a 503.
            let result = Child.run([TestCluster.binary, "-h", "127.0.0.1", "-p", "1"], input: .socket(request: padded, hangUp: false))
            let answer = try response(result)
            #expect(answer.status == 400)
            #expect(answer.body == "request head too large")
        }

        @Test("a password in an unparsable URI never reaches the log")
        func passwordRedacted() {
            // script(1) gives the check a terminal, so its diagnostics come to stderr, where this test reads them.
            let command = "\(TestCluster.binary) -d 'postgresql://monitor:S3CRET@[::1/postgres' -t 1"
            let result = Child.run(["/usr/bin/script", "-qec", command, "/dev/null"], input: .null)
            #expect(result.text.contains("invalid connection settings"))
            #expect(result.text.contains("monitor:***@"))
            #expect(!result.text.contains("S3CRET"))
        }

        @Test("sslmode=require against a server without TLS says so, not \"no response\"")
        func tlsMismatch() throws {
            let result = Child.run([TestCluster.binary, "-h", "127.0.0.1", "-p", cluster.primaryPort, "-U", "pgsqlchk",
                                    "-d", "dbname=postgres sslmode=require"], input: .socket(request: "GET / HTTP/1.1\r\n\r\n", hangUp: false))
            let answer = try response(result)
            #expect(answer.status == 503)
            #expect(answer.body == "server does not support SSL, but sslmode requires it")
        }

        @Test("a usage error on the agent port is answered in the agent protocol, whatever was misspelt", arguments: [
            ["--agent=1"], ["--agent", "--bogus"], ["--bogus", "-a"],
        ])
        func agentUsageError(options: [String]) {
            let result = Child.run([TestCluster.binary] + options, input: .socket(request: "lag=1MB\n", hangUp: false))
            #expect(result.text == "down #invalid pgsqlchk options\n")
            #expect(result.status == 64)
        }
    }

    /// The deadline's backstop, made to fire: the check's host name goes to a
    /// resolver that never answers (a silent UDP socket, named in a private
    /// mount namespace's /etc/resolv.conf), so libpq blocks where no poll loop
    /// can reach it.
    @Suite("The backstop answers as this request would, and closes cleanly")
    struct BackstopTests {
        static let deadline = 0.6
        static let margin = 0.35
        let cluster: TestCluster

        init() throws { cluster = try TestCluster.required() }

        /// Runs the check against a host name that never resolves.
        func hang(options: [String] = [], input: Child.Input) throws -> ChildResult {
            let resolver = try SilentResolver(directory: cluster.runDirectory)
            defer { resolver.close() }
            let command = "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\""
            return Child.run(["/usr/bin/unshare", "--mount", "/bin/sh", "-c", command, resolver.configuration,
                              TestCluster.binary, "-h", "pgsqlchk-backstop.test", "-t", "\(Self.deadline)"] + options, input: input)
        }

        @Test("libpq blocked in a host lookup: the backstop's 503 names the phase, within the deadline")
        func fires() throws {
            let result = try hang(input: .socket(request: "GET / HTTP/1.1\r\n\r\n", hangUp: false))
            let answer = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            #expect(answer.status == 503)
            #expect(answer.body == "timeout while looking up the server's host name")
            #expect(result.status == 2)
            #expect(result.seconds >= Self.deadline - 0.05)
            #expect(result.seconds < Self.deadline + Self.margin)
        }

        @Test("the drain file holds when the backstop answers: 404, not 503")
        func drain() throws {
            let file = cluster.runDirectory + "/backstop-maintenance"
            close(open(file, O_CREAT | O_WRONLY, 0o644))
            defer { unlink(file) }
            let result = try hang(options: ["-m", file], input: .socket(request: "GET /primary HTTP/1.1\r\n\r\n", hangUp: false))
            let answer = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            #expect(answer.status == 404)
            #expect(answer.body == "maintenance")
        }

        @Test("HEAD gets no body and /status gets JSON from the backstop too")
        func requestForm() throws {
            let head = try hang(input: .socket(request: "HEAD /primary HTTP/1.1\r\n\r\n", hangUp: false))
            #expect(head.text.hasPrefix("HTTP/1.1 503 timeout while looking up the server's host name\r\n"))
            #expect(head.text.hasSuffix("\r\n\r\n"))
            let status = try hang(input: .socket(request: "GET /status HTTP/1.1\r\n\r\n", hangUp: false))
            let answer = try #require(ParsedResponse(status.output), "not one strict HTTP response: \(status.text)")
            #expect(answer.headers["content-type"] == "application/json")
            #expect(answer.body.contains("\"reason\": \"timeout while looking up the server's host name\""))
        }

        @Test("bytes after the head are drained before the backstop exits: a normal close, not a reset")
        func closesCleanly() throws {
            let result = try hang(input: .tcp(request: "GET / HTTP/1.1\r\n\r\nunexpected trailing bytes"))
            #expect(result.text.hasPrefix("HTTP/1.1 503 timeout while looking up the server's host name\r\n"))
            #expect(!result.wasReset)
        }
    }
}

/// A DNS server that takes every query and answers none, and a resolv.conf
/// that sends lookups to it and waits long.
struct SilentResolver {
    /// Where `nameserver` points; a loopback address of its own, port 53.
    static let address = "127.0.0.53"
    let descriptor: Int32
    let configuration: String

    init(directory: String) throws {
        let silent = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(53).bigEndian
        address.sin_addr.s_addr = inet_addr(Self.address)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(silent, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        let problem = "could not bind \(Self.address):53 (root is needed): errno \(errno)"
        try #require(bound == 0, Comment(rawValue: problem))
        let path = directory + "/silent-resolv.conf"
        let file = try #require(fopen(path, "w"))
        fputs("nameserver \(Self.address)\noptions timeout:30 attempts:1\n", file)
        fclose(file)
        descriptor = silent
        configuration = path
    }

    func close() {
        Glibc.close(descriptor)
    }
}
