import Testing
#if canImport(Glibc)
import Glibc
#endif

extension LiveServers {
    /// `--preflight` against the two-node cluster, with directories of the
    /// test's own: what it checks, it checks for real.
    @Suite("--preflight against a real primary and standby")
    struct PreflightLiveTests {
        let cluster: TestCluster
        /// A state directory and a drain file's directory of this user's.
        let directory: String

        init() throws {
            cluster = try TestCluster.required()
            var template = Array("/tmp/pgsqlchk-preflight-XXXXXX".utf8CString)
            directory = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        }

        func preflight(_ node: Node, peers: [String], asUser user: String? = nil) -> ChildResult {
            let command = [TestCluster.binary, "--preflight", "-h", cluster.socketDirectory, "-p", cluster.port(of: node),
                           "-U", "pgsqlchk", "-d", "postgres", "--peers", peers.joined(separator: ","),
                           "--state-dir", directory, "-m", directory + "/maintenance"]
            return Child.run((user.map { ["/usr/sbin/runuser", "-u", $0, "--"] } ?? []) + command, input: .null)
        }

        var bothNodes: [String] { ["127.0.0.1:\(cluster.primaryPort)", "127.0.0.1:\(cluster.standbyPort)"] }

        @Test("a deployment whose every peer answers passes, from the primary and from the standby")
        func passes() throws {
            defer { rmdir(directory) }
            for node in [Node.primary, .standby] {
                let result = preflight(node, peers: bothNodes)
                #expect(result.status == 0, "\(result.text)")
                #expect(!result.text.contains("FAIL"), "\(result.text)")
                #expect(result.text.contains("ok   peer 127.0.0.1:\(cluster.port(of: node)): this node"), "\(result.text)")
                #expect(result.text.contains("ok   login: PostgreSQL "), "\(result.text)")
            }
        }

        @Test("a peer that does not answer, and a state directory the check's user does not own, are problems that exit 1")
        func namesProblems() throws {
            defer { rmdir(directory) }
            let silent = try #require(unusedPort())
            let result = preflight(.primary, peers: bothNodes + ["127.0.0.1:\(silent)"])
            #expect(result.status == 1, "\(result.text)")
            #expect(result.text.contains("FAIL peer 127.0.0.1:\(silent): no response from server"), "\(result.text)")
            #expect(result.text.contains("pgsqlchk --preflight: 1 problem, "), "\(result.text)")

            let asCheckUser = preflight(.primary, peers: bothNodes, asUser: "nobody")
            #expect(asCheckUser.status == 1, "\(asCheckUser.text)")
            #expect(asCheckUser.text.contains("FAIL state directory \(directory): owned by uid \(geteuid()), but the check runs as uid "),
                    "\(asCheckUser.text)")
        }
    }
}
