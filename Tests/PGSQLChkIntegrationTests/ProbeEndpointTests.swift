#if canImport(Glibc)
import Glibc
#endif
import ParsedResponse
import Testing

extension LiveServers {
    /// Kubernetes' questions and Prometheus's scrape against the real primary
    /// and standby (issue 12).
    @Suite("Liveness, readiness and metrics against a real primary and standby")
    struct ProbeEndpointTests {
        let cluster: TestCluster

        init() throws { cluster = try TestCluster.required() }

        func get(_ target: String, node: Node, port: String? = nil) throws -> ParsedResponse {
            let result = Child.run([TestCluster.binary, "-h", cluster.socketDirectory, "-p", port ?? cluster.port(of: node), "-U", "pgsqlchk",
                                    "-d", "postgres"], input: .socket(request: "GET \(target) HTTP/1.1\r\nHost: test\r\n\r\n", hangUp: false))
            return try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
        }

        func probe(_ kind: String, node: Node) -> ChildResult {
            Child.run([TestCluster.binary, "-h", cluster.socketDirectory, "-p", cluster.port(of: node), "-U", "pgsqlchk", "-d", "postgres",
                       "--probe", kind], input: .null)
        }

        @Test("both nodes are live and ready; --probe answers with the exit status and prints nothing", arguments: [Node.primary, .standby])
        func liveAndReady(node: Node) throws {
            #expect(try get("/liveness", node: node).status == 200)
            #expect(try get("/readiness", node: node).status == 200)
            for kind in ["liveness", "readiness"] {
                let result = probe(kind, node: node)
                #expect(result.status == 0)
                #expect(result.output.isEmpty)
            }
        }

        @Test("a standby whose receiver stopped is live but not ready")
        func receiverStopped() throws {
            try #require(cluster.script("pg_ctl", "primary", "stop", "-m", "fast"))
            defer {
                cluster.script("pg_ctl", "primary", "start", "-w", "-l", cluster.runDirectory + "/primary.log")
                _ = cluster.waitFor(.standby, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_wal_receiver WHERE status = 'streaming')")
            }
            try #require(cluster.waitFor(.standby, "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_wal_receiver WHERE status = 'streaming')"))
            #expect(try get("/liveness", node: .standby).status == 200)
            let ready = try get("/readiness", node: .standby)
            #expect(ready.status == 503)
            #expect(ready.body.hasPrefix("WAL receiver "))
            #expect(probe("readiness", node: .standby).status == 2)
        }

        @Test("nothing listening is not live: 503, exit status 2")
        func nothingListening() throws {
            let live = try get("/liveness", node: .primary, port: "1")
            #expect(live.status == 503)
            #expect(live.body == "no response from server")
        }

        @Test("/metrics passes Prometheus's reference parser, and says what the node is", arguments: [
            (Node.primary, "0"), (.standby, "1"),
        ])
        func metrics(node: Node, inRecovery: String) throws {
            let scrape = try get("/metrics", node: node)
            #expect(scrape.status == 200)
            #expect(scrape.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            let parsed = try parseWithPrometheusClient(scrape.body + "\n")
            #expect(parsed["pgsqlchk_up"] == "1.0")
            #expect(parsed["pgsqlchk_in_recovery"] == inRecovery + ".0")
            if node == .standby { #expect(parsed["pgsqlchk_wal_receiver_streaming"] == "1.0") }
        }

        @Test("PostgreSQL down is a successful scrape that says so")
        func metricsWhenDown() throws {
            let scrape = try get("/metrics", node: .primary, port: "1")
            #expect(scrape.status == 200)
            #expect(try parseWithPrometheusClient(scrape.body + "\n")["pgsqlchk_up"] == "0.0")
        }

        /// Each sample's name and value as prometheus_client's text parser reads
        /// `text`; a parse error fails the test with the parser's words.
        func parseWithPrometheusClient(_ text: String) throws -> [String: String] {
            let file = cluster.runDirectory + "/metrics.txt"
            let handle = try #require(fopen(file, "w"))
            fputs(text, handle)
            fclose(handle)
            let script = """
                import sys
                from prometheus_client.parser import text_string_to_metric_families
                for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                    for sample in family.samples:
                        print(sample.name, sample.value)
                """
            let result = Child.run(["/usr/bin/python3", "-c", script, file], input: .null)
            try #require(result.status == 0, "prometheus_client refused the scrape: \(result.text)")
            var samples: [String: String] = [:]
            for line in result.text.split(separator: "\n") {
                let fields = line.split(separator: " ")
                if fields.count == 2 { samples[String(fields[0])] = String(fields[1]) }
            }
            return samples
        }
    }
}
