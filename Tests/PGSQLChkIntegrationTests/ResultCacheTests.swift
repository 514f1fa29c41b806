#if canImport(Glibc)
import Glibc
#endif
import ParsedResponse
import Testing

extension LiveServers {
    /// The result cache (issue 11) against the real cluster. The checks run by
    /// hand with `--cache-ttl` on their command line, which is what lets a
    /// hand run use the cache; each test has a directory of its own.
    @Suite("Result cache: one probe per TTL, never past it, never trusting a stranger's file")
    struct ResultCacheTests {
        let cluster: TestCluster
        let directory: String

        init() throws {
            cluster = try TestCluster.required()
            directory = cluster.runDirectory + "/cache-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        }

        func arguments(node: Node = .primary, ttl: String = "5s", timeout: String = "1.5") -> [String] {
            [TestCluster.binary, "-h", cluster.socketDirectory, "-p", cluster.port(of: node), "-U", "pgsqlchk", "-d", "postgres",
             "-t", timeout, "--cache-ttl", ttl, "--cache-dir", directory]
        }

        func check(node: Node = .primary, ttl: String = "5s", timeout: String = "1.5") throws -> (response: ParsedResponse, age: Int, seconds: Double) {
            let result = Child.run(arguments(node: node, ttl: ttl, timeout: timeout), input: .null)
            let response = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            let age = try #require(response.headers["x-pgsqlchk-age"].flatMap { Int($0) },
                                   "no X-PGSQLChk-Age: \(result.text)")
            return (response, age, result.seconds)
        }

        /// The one entry file in the directory.
        func entryPath() throws -> String {
            let listing = Child.run(["/bin/sh", "-c", "ls \(directory)/*.entry"], input: .null).text
            let paths = listing.split(separator: "\n")
            try #require(paths.count == 1, "expected one entry in \(directory): \(listing)")
            return String(paths[0])
        }

        func shell(_ script: String) -> ChildResult {
            Child.run(["/bin/bash", "-c", script], input: .null)
        }

        func sessions() throws -> Int {
            let connection = try ClientConnection.open("host=\(cluster.socketDirectory) port=\(cluster.primaryPort) user=pgsqlchk dbname=postgres").get()
            _ = connection.value("SELECT pg_catalog.pg_stat_clear_snapshot()")
            return try #require(Int(try connection.value("SELECT sessions FROM pg_catalog.pg_stat_database WHERE datname = 'postgres'").get()))
        }

        @Test("50 concurrent checks make one PostgreSQL session, and all answer 200")
        func coalescing() throws {
            defer { _ = shell("rm -rf \(directory)") }
            // The session count moves when a backend ends; each reading is one.
            let before = try sessions()
            let command = arguments().map { "'\($0)'" }.joined(separator: " ")
            let run = shell("""
                for i in $(seq 50); do \(command) </dev/null >\(directory).out.$i 2>/dev/null & done; wait
                grep -l '^HTTP/1.1 200 OK' \(directory).out.* | wc -l; rm -f \(directory).out.*
                """)
            #expect(run.text.trimmingCharacters() == "50", "answers that were 200: \(run.text)")
            usleep(500_000)
            let after = try sessions()
            // `before`'s own connection ended in between: one session of ours.
            #expect(after - before - 1 == 1, "sessions: \(before) before, \(after) after")
        }

        @Test("a promotion shows within the TTL plus one check")
        func promotion() throws {
            defer {
                _ = shell("rm -rf \(directory)")
                cluster.script("rebuild-standby", "standby", "primary")
            }
            #expect(try check(node: .standby, ttl: "1s").response.status == 206)
            try #require(cluster.script("pg_ctl", "standby", "promote", "-w"))
            let promoted = monotonicSeconds()
            var seen: Double?
            while seen == nil, monotonicSeconds() - promoted < 3 {
                if try check(node: .standby, ttl: "1s").response.status == 200 { seen = monotonicSeconds() - promoted }
                usleep(100_000)
            }
            let elapsed = try #require(seen, "the promoted standby still answered 206 3 s after the promotion")
            // One TTL, then one check (the polling step and a probe) to see it.
            #expect(elapsed < 1.0 + 0.4, "first 200 after \(elapsed) s")
            print("cache: promotion seen after \(elapsed) s with a 1 s TTL")
        }

        @Test("an entry is never served past its TTL: ages stay under it, and the next check probes")
        func neverPastTTL() throws {
            defer { _ = shell("rm -rf \(directory)") }
            let first = try check(ttl: "0.4")
            #expect(first.age == 0)
            var ages: [Int] = []
            let start = monotonicSeconds()
            while monotonicSeconds() - start < 1.2 {
                ages.append(try check(ttl: "0.4").age)
                usleep(50_000)
            }
            #expect(ages.allSatisfy { $0 < 400 }, "ages: \(ages)")
            #expect(ages.filter { $0 == 0 }.count >= 2, "no fresh probe after the TTL: \(ages)")
        }

        @Test("a cache hit maps no libpq; a miss does")
        func hitLoadsNoLibpq() throws {
            defer { _ = shell("rm -rf \(directory)") }
            let trace = directory + ".strace"
            defer { unlink(trace) }
            func opened() -> String {
                _ = Child.run(["/usr/bin/strace", "-f", "-qq", "-e", "trace=openat,open", "-o", trace] + arguments(), input: .null)
                return readFile(trace) ?? ""
            }
            #expect(opened().contains("libpq.so.5"), "the miss did not load libpq")
            let hit = opened()
            #expect(hit.contains(".entry"), "the hit read no entry: \(hit.prefix(400))")
            #expect(!hit.contains("libpq"), "the hit loaded libpq")
        }

        @Test("a corrupt entry is ignored and replaced")
        func corruptEntry() throws {
            defer { _ = shell("rm -rf \(directory)") }
            _ = try check()
            let entry = try entryPath()
            _ = shell("printf 'pgsqlchk-cache 1\\nkey garbage\\n' >\(entry)")
            let answer = try check()
            #expect(answer.response.status == 200 && answer.age == 0)
            #expect(readFile(entry)?.hasSuffix("\nend\n") == true)
        }

        /// A fresh entry that says the primary is a standby, as a stranger could forge it.
        func forge(_ entry: String) throws -> String {
            let text = try #require(readFile(entry))
            return text.replacingFirst("in_recovery f", with: "in_recovery t").replacingFirst("receiver none", with: "receiver unknown")
        }

        @Test("a forged entry owned by another user is ignored and replaced")
        func foreignEntry() throws {
            defer { _ = shell("rm -rf \(directory)") }
            _ = try check()
            let entry = try entryPath()
            let forged = try forge(entry)
            _ = shell("cat >\(entry) <<'END'\n\(forged)END\nchown 65534 \(entry)")
            let answer = try check()
            #expect(answer.response.status == 200, "the forged standby answered")
            #expect(answer.age == 0)
            var status = stat()
            #expect(stat(entry, &status) == 0 && status.st_uid == geteuid())
        }

        @Test("an entry path that is a symlink is neither followed nor written through")
        func symlinkedEntry() throws {
            defer { _ = shell("rm -rf \(directory) \(directory).target") }
            _ = try check()
            let entry = try entryPath()
            let forged = try forge(entry)
            let target = directory + ".target"
            _ = shell("cat >\(target) <<'END'\n\(forged)END\nln -sf \(target) \(entry)")
            let answer = try check()
            #expect(answer.response.status == 200, "the symlinked forgery answered")
            #expect(answer.age == 0)
            #expect(readFile(target) == forged, "the target was written through the symlink")
            var status = stat()
            #expect(lstat(entry, &status) == 0 && status.st_mode & S_IFMT == S_IFREG)
        }

        @Test("a lock holder frozen with SIGSTOP costs the others no more than their deadline")
        func frozenHolder() throws {
            defer { _ = shell("rm -rf \(directory)") }
            _ = try check()
            let entry = try entryPath()
            let lock = String(entry.dropLast(".entry".count)) + ".lock"
            unlink(entry)
            let holder = shell("""
                setsid /usr/bin/flock \(lock) sleep 30 </dev/null >/dev/null 2>&1 & pid=$!
                sleep 0.2; kill -STOP $pid; echo $pid
                """)
            let pid = try #require(pid_t(holder.text.trimmingCharacters()), "no holder: \(holder.text)")
            defer { kill(pid, SIGKILL); kill(pid, SIGCONT) }
            let answer = try check(timeout: "1")
            #expect(answer.response.status == 200, "\(answer.response.body)")
            #expect(answer.seconds < 1.0, "took \(answer.seconds) s with a 1 s deadline")
        }

        /// The files in the cache directory.
        func files() -> [String] {
            shell("ls -A \(directory)").text.split(separator: "\n").map(String.init)
        }

        /// Issue 17, item 3: systemd hands each check its credential at a
        /// path of its own (`PGPASSFILE=%d/pgpass`, %d naming the instance),
        /// which was part of the key: every check probed and left two files.
        @Test("checks served as the shipped unit serves them, each with its own PGPASSFILE, share one session and two files")
        func shippedUnitShares() throws {
            defer { _ = shell("rm -rf \(directory) \(directory).credentials") }
            let port = try #require(unusedPort())
            let checks = 30
            let before = try sessions()
            // The service's environment: the sample's active lines (EnvironmentFile=),
            // where the test cluster listens, HOME as systemd sets it for a
            // DynamicUser=, the cache on; then a credential directory per
            // connection, as LoadCredential= makes one per instance.
            let run = shell("""
                . \(TestCluster.repository)/scripts/common.sh
                mapfile -t environment < <(environment_options \(TestCluster.repository)/systemd/pgsqlchk.default)
                pid=$(start_activator \(port) \(directory).activator.log "${environment[@]}" \\
                  -E PGHOST=\(cluster.socketDirectory) -E PGPORT=\(cluster.primaryPort) -E HOME=/nonexistent \\
                  -E PGSQLCHK_CACHE_TTL=30 -E PGSQLCHK_CACHE_DIR=\(directory) \\
                  /bin/sh -c 'd=\(directory).credentials/$$; mkdir -p "$d"; echo "# no /etc/pgsqlchk/pgpass" >"$d/pgpass"
                              PGPASSFILE=$d/pgpass exec "$0"' \(TestCluster.binary))
                for i in $(seq \(checks)); do curl -s --max-time 5 -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:\(port)/; done | sort | uniq -c
                stop_process "$pid"; rm -f \(directory).activator.log
                """)
            #expect(run.text.trimmingCharacters() == "\(checks) 200", "answers: \(run.text)")
            #expect(Set(shell("ls \(directory).credentials").text.split(separator: "\n")).count == checks,
                    "not a PGPASSFILE path per check")
            usleep(500_000)
            let after = try sessions()
            #expect(after - before - 1 == 1, "sessions for \(checks) checks: \(before) before, \(after) after")
            #expect(files().count == 2, "files left: \(files())")
        }

        /// Issue 17, item 4: `HOME` picks `~/.pg_service.conf`, and so the
        /// server `-d service=node` names.
        @Test("checks of service=node from two HOMEs, naming the primary and the standby, get their own node's answer")
        func homeIsInTheKey() throws {
            let homes = ["\(directory).home-primary": Node.primary, "\(directory).home-standby": Node.standby]
            defer { _ = shell("rm -rf \(directory) \(directory).home-*") }
            for (home, node) in homes {
                _ = shell("mkdir -p \(home) && printf '[node]\\nhost=\(cluster.socketDirectory)\\nport=\(cluster.port(of: node))\\n' >\(home)/.pg_service.conf")
            }
            func check(home: String) throws -> ParsedResponse {
                let command = [TestCluster.binary, "-U", "pgsqlchk", "-d", "service=node dbname=postgres", "-t", "1.5",
                               "--cache-ttl", "5s", "--cache-dir", directory].map { "'\($0)'" }.joined(separator: " ")
                let result = shell("HOME=\(home) exec \(command) </dev/null")
                return try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            }
            #expect(try check(home: "\(directory).home-primary").status == 200)
            let standby = try check(home: "\(directory).home-standby")
            #expect(standby.status == 206, "the standby's service answered \(standby.status) \(standby.body)")
        }

        /// Issue 17, item 5: a timeout says the asking check ran out of time,
        /// not that the node is down.
        @Test("a check whose own deadline ran out leaves nothing for the next check")
        func timeoutNotShared() throws {
            defer { _ = shell("rm -rf \(directory)") }
            // The shortest deadline accepted: 10 ms was sometimes enough for a
            // whole check on an idle machine.
            let short = Child.run(arguments(timeout: "0.001"), input: .null)
            let timedOut = try #require(ParsedResponse(short.output), "not one strict HTTP response: \(short.text)")
            #expect(timedOut.status == 503 && timedOut.body.hasPrefix("timeout"), "\(timedOut.body)")
            let next = try check()
            #expect(next.response.status == 200, "after a timeout: \(next.response.status) \(next.response.body)")
            #expect(next.age == 0)
        }

        /// Issue 17, item 6: the guard's probe waits for its peers (here one
        /// that logs in and never answers, `scripts/stall-proxy.py`), so the
        /// node was read up to half the deadline before the entry is written.
        @Test("an entry's age counts from when the node was read, so a slow peer cannot stretch its life past the TTL")
        func datedBeforeThePeers() throws {
            let stateDirectory = directory + ".state"
            defer { _ = shell("rm -rf \(directory) \(stateDirectory) \(directory).stall.log") }
            let port = try #require(unusedPort())
            let stall = try #require(BackgroundProcess.start(
                ["/usr/bin/python3", TestCluster.repository + "/scripts/stall-proxy.py", port, "127.0.0.1", cluster.standbyPort],
                logPath: directory + ".stall.log", readyText: "ready"))
            defer { stall.stop() }
            let guarded = arguments(ttl: "1s") + ["--peers", "127.0.0.1:\(port)", "--state-dir", stateDirectory]
            func check() throws -> (status: Int, age: Int, seconds: Double) {
                let result = Child.run(guarded, input: .null)
                let response = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
                return (response.status, try #require(response.headers["x-pgsqlchk-age"].flatMap { Int($0) }), result.seconds)
            }
            let started = monotonicSeconds()
            let probe = try check()
            #expect(probe.status == 200 && probe.age == 0)
            try #require(probe.seconds > 0.6, "the peer did not hold the probe: \(probe.seconds) s")
            let hit = try check()
            #expect(hit.age >= Int(probe.seconds * 1_000) - 100, "served at age \(hit.age) ms after a \(probe.seconds) s probe")
            usleep(useconds_t(max(0, 1.05 - (monotonicSeconds() - started)) * 1_000_000))
            let later = try check()
            #expect(later.age == 0, "served at age \(later.age) ms, \(monotonicSeconds() - started) s after the probe began, TTL 1 s")
        }

        /// README: with the cache requested but unusable, the answer has no
        /// age (no header, `null`), as with the cache off.
        @Test("a cache directory open to others gives answers without an age")
        func unusableDirectoryHasNoAge() throws {
            defer { _ = shell("rm -rf \(directory)") }
            _ = shell("mkdir -m 755 \(directory)")
            let routed = Child.run(arguments(), input: .null)
            let response = try #require(ParsedResponse(routed.output), "not one strict HTTP response: \(routed.text)")
            #expect(response.status == 200)
            #expect(response.headers["x-pgsqlchk-age"] == nil)
            let status = Child.run(arguments(), input: .socket(request: "GET /status HTTP/1.0\r\n\r\n", hangUp: false))
            let document = try #require(ParsedResponse(status.output), "not one strict HTTP response: \(status.text)")
            #expect(document.body.contains("\"age\": null") || document.body.contains("\"age\":null"), "\(document.body)")
        }

        @Test("a libpq that cannot be loaded is a 503 that says so")
        func missingLibpq() throws {
            let library = shell("readlink -f /usr/lib/*/libpq.so.5").text.trimmingCharacters()
            let command = arguments(ttl: "0").map { "'\($0)'" }.joined(separator: " ")
            let result = shell("unshare --mount --propagation private -- sh -c 'mount --bind /dev/null \(library) && exec \(command)' </dev/null")
            let response = try #require(ParsedResponse(result.output), "not one strict HTTP response: \(result.text)")
            #expect(response.status == 503)
            #expect(response.body == "libpq could not be loaded")
        }
    }
}

private extension String {
    func trimmingCharacters() -> String {
        String(self.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }

    func replacingFirst(_ target: String, with replacement: String) -> String {
        var start = startIndex
        while start < endIndex {
            if self[start...].hasPrefix(target) {
                return String(self[..<start]) + replacement + String(self[index(start, offsetBy: target.count)...])
            }
            start = index(after: start)
        }
        return self
    }
}
