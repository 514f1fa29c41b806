import Testing
@testable import PGSQLChkCore

@Suite("Command line options")
struct CommandLineOptionsTests {
    private func parse(_ arguments: [String], environment: [String: String] = [:]) throws(UsageError) -> Invocation {
        try CommandLineOptions.parse(arguments, environment: { environment[$0] })
    }

    private func check(_ arguments: [String], environment: [String: String] = [:]) throws -> Configuration {
        guard case .check(let configuration) = try parse(arguments, environment: environment) else {
            Issue.record("expected a check for \(arguments)")
            return Configuration()
        }
        return configuration
    }

    @Test("no options leave every connection setting to libpq and use the default deadline")
    func defaults() throws {
        let configuration = try check([])
        #expect(configuration.connection == ConnectionSettings())
        #expect(configuration.timeout == Configuration.defaultTimeout)
    }

    @Test("psql-style flags set the connection in every spelling", arguments: [
        (["-h", "/run/postgresql"], ConnectionSettings(host: "/run/postgresql")),
        (["-h/run/postgresql"], ConnectionSettings(host: "/run/postgresql")),
        (["--host=/run/postgresql"], ConnectionSettings(host: "/run/postgresql")),
        (["--host", "db1"], ConnectionSettings(host: "db1")),
        (["-p", "5433"], ConnectionSettings(port: "5433")),
        (["--port=5433"], ConnectionSettings(port: "5433")),
        (["-U", "monitor"], ConnectionSettings(user: "monitor")),
        (["--username=monitor"], ConnectionSettings(user: "monitor")),
        (["-d", "service=node1"], ConnectionSettings(dbname: "service=node1")),
        (["--dbname=postgresql://monitor@db1/postgres"], ConnectionSettings(dbname: "postgresql://monitor@db1/postgres")),
        (["-p", "5432", "-U", "a", "-p", "5433"], ConnectionSettings(port: "5433", user: "a")),
    ])
    func connectionFlags(arguments: [String], connection: ConnectionSettings) throws {
        #expect(try check(arguments).connection == connection)
    }

    @Test("libpq gets psql's keyword order, dbname after host, port and user, then the fallback name", arguments: [
        (ConnectionSettings(), ["fallback_application_name=pgsqlchk"]),
        (ConnectionSettings(host: "h", port: "1", user: "u", dbname: "host=x"),
         ["host=h", "port=1", "user=u", "dbname=host=x", "fallback_application_name=pgsqlchk"]),
        (ConnectionSettings(user: "u", dbname: "d"), ["user=u", "dbname=d", "fallback_application_name=pgsqlchk"]),
    ])
    func libpqOrder(connection: ConnectionSettings, pairs: [String]) {
        let passed = connection.withLibpqParameters { keywords, values in
            var pairs: [String] = []
            var index = 0
            while let keyword = keywords[index], let value = values[index] {
                pairs.append(String(cString: keyword) + "=" + String(cString: value))
                index += 1
            }
            #expect(values[index] == nil)
            return pairs
        }
        #expect(passed == pairs)
    }

    @Test("the deadline takes decimal seconds from the flag, else from the environment", arguments: [
        ([], [:], 1_500),
        (["-t", "2"], [:], 2_000),
        (["--timeout=0.25"], [:], 250),
        ([], ["PGSQLCHK_TIMEOUT": "0.8"], 800),
        (["-t", "3"], ["PGSQLCHK_TIMEOUT": "0.8"], 3_000),
    ] as [([String], [String: String], Int)])
    func timeout(arguments: [String], environment: [String: String], milliseconds: Int) throws {
        #expect(try check(arguments, environment: environment).timeout == Milliseconds(milliseconds))
    }

    @Test("help and version win over every later flag and every value", arguments: [
        (["-?"], Invocation.help),
        (["--help", "--bogus"], Invocation.help),
        (["-V"], Invocation.version),
        (["-p", "1", "--version"], Invocation.version),
    ])
    func helpAndVersion(arguments: [String], expected: Invocation) throws {
        #expect(try parse(arguments) == expected)
    }

    @Test("bad command lines are usage errors that name the problem", arguments: [
        (["-x"], "unknown option -x"),
        (["--hots=db"], "unknown option --hots"),
        (["-h"], "option --host needs a value"),
        (["--port="], "--port needs a non-empty value"),
        (["stray"], "unexpected argument \"stray\""),
        (["-t", "0"], "--timeout must be seconds between 0.001 and 3600, not \"0\""),
        (["-t", "-1"], "--timeout must be seconds between 0.001 and 3600, not \"-1\""),
        (["-t", "1.5s"], "--timeout must be seconds between 0.001 and 3600, not \"1.5s\""),
        (["-t", "0.0001"], "--timeout must be seconds between 0.001 and 3600, not \"0.0001\""),
        (["-t", "3601"], "--timeout must be seconds between 0.001 and 3600, not \"3601\""),
    ])
    func usageErrors(arguments: [String], message: String) {
        let error = #expect(throws: UsageError.self) { try parse(arguments) }
        #expect(error?.description == message)
    }

    @Test("a bad deadline in the environment is an error, not silently the default")
    func badEnvironmentTimeout() {
        #expect(throws: UsageError.invalidValue(source: "PGSQLCHK_TIMEOUT", value: "soon", accepted: "seconds between 0.001 and 3600")) {
            try parse([], environment: ["PGSQLCHK_TIMEOUT": "soon"])
        }
    }

    @Test("the help text prints the drain file's default from its constant")
    func helpText() {
        #expect(CommandLineOptions.helpText.contains("(default: \(Configuration.defaultMaintenanceFile))"))
    }

    @Test("the endpoint sets the question asked without a request", arguments: [
        (["-e", "/replica"], Endpoint.replica, false),
        (["--endpoint=/master"], Endpoint.primary, false),
        (["-e", "/status"], Endpoint.status, true),
    ])
    func endpoint(arguments: [String], endpoint: Endpoint, json: Bool) throws {
        let request = try check(arguments).question
        #expect(request.endpoint == endpoint)
        #expect(request.format == (json ? .json : .text))
    }

    @Test("standby limits come from flags, else the environment, and the endpoint's own parameters win")
    func standbyLimits() throws {
        #expect(try check([]).requirements == StandbyRequirements())
        #expect(try check(["-l", "16MB", "-r", "30s", "-s"]).requirements
            == StandbyRequirements(maximumLagBytes: 16 << 20, maximumReplayDelay: Milliseconds(30_000), requiresStreaming: true))
        let environment = ["PGSQLCHK_MAX_LAG": "1GB", "PGSQLCHK_MAX_REPLAY_DELAY": "500ms", "PGSQLCHK_REQUIRE_STREAMING": "1"]
        #expect(try check([], environment: environment).requirements
            == StandbyRequirements(maximumLagBytes: 1 << 30, maximumReplayDelay: Milliseconds(500), requiresStreaming: true))
        #expect(try check(["--max-lag=1kB"], environment: environment).requirements.maximumLagBytes == 1024)
        #expect(try check(["-e", "/replica?lag=2MB", "-l", "16MB"]).question.requirements.maximumLagBytes == 2 << 20)
        #expect(try check(["-l", "16MB", "-e", "/replica?replication_state=streaming"]).question.requirements
            == StandbyRequirements(maximumLagBytes: 16 << 20, requiresStreaming: true))
    }

    @Test("the dialect is read from --agent in any spelling, even one the parser refuses", arguments: [
        ([], Dialect.http), (["-a"], .agent), (["--agent"], .agent), (["--agent=1"], .agent), (["-a1"], .agent),
        (["--bogus", "--agent"], .agent), (["-h", "/run/postgresql"], .http), (["--agents"], .http),
    ])
    func dialect(arguments: [String], dialect: Dialect) {
        #expect(CommandLineOptions.dialect(in: arguments) == dialect)
    }

    @Test("without --endpoint the question is / with the default limits")
    func defaultQuestion() throws {
        #expect(try check(["-l", "1MB"]).question == CheckRequest(endpoint: .role, requirements: StandbyRequirements(maximumLagBytes: 1 << 20)))
    }

    @Test("--probe asks the Kubernetes question and answers with the exit status alone", arguments: [
        ("liveness", Endpoint.liveness), ("readiness", .readiness),
    ])
    func probe(kind: String, endpoint: Endpoint) throws {
        let configuration = try check(["--probe", kind])
        #expect(configuration.question.endpoint == endpoint)
        #expect(configuration.output == OutputFormat.none)
        #expect(throws: UsageError.invalidValue(source: "--probe", value: "startup", accepted: "liveness or readiness")) {
            try parse(["--probe=startup"])
        }
    }

    @Test("every option fits the parser's one-bit-per-option record of what argv gave")
    func optionCount() {
        #expect(CommandLineOptions.options.count <= UInt32.bitWidth)
    }

    @Test("an empty environment value counts as unset, as a commented-out line would")
    func emptyEnvironment() throws {
        let environment = ["PGSQLCHK_TIMEOUT": "", "PGSQLCHK_MAX_LAG": "", "PGSQLCHK_MAINTENANCE_FILE": ""]
        #expect(try check([], environment: environment) == Configuration())
    }

    @Test("output, agent mode and the drain file", arguments: [
        (["-o", "json"], OutputFormat.json, false, "/etc/pgsqlchk/maintenance"),
        (["--output=summary", "-a"], OutputFormat.summary, true, "/etc/pgsqlchk/maintenance"),
        (["-m", "/run/drain", "--agent"], OutputFormat.http, true, "/run/drain"),
        (["--output", "cluster", "--peers", "db1,db2"], OutputFormat.cluster, false, "/etc/pgsqlchk/maintenance"),
    ])
    func modes(arguments: [String], output: OutputFormat, agent: Bool, maintenanceFile: String) throws {
        let configuration = try check(arguments)
        #expect(configuration.output == output)
        #expect(configuration.dialect == (agent ? .agent : .http))
        #expect(configuration.maintenanceFile == maintenanceFile)
    }

    @Test("a limit that does not parse is a usage error naming it, never a check switched off", arguments: [
        (["-l", "garbage"], [:], "--max-lag: invalid lag \"garbage\": expected bytes such as 1048576, 16MB or 1GB"),
        ([], ["PGSQLCHK_MAX_LAG": "16 MB"], "PGSQLCHK_MAX_LAG: invalid lag \"16 MB\": expected bytes such as 1048576, 16MB or 1GB"),
        (["-r", "soon"], [:], "--max-replay-delay: invalid replay_delay \"soon\": expected a duration such as 30s, 500ms or 2min"),
        ([], ["PGSQLCHK_REQUIRE_STREAMING": "yes"], "PGSQLCHK_REQUIRE_STREAMING must be 1 or 0, not \"yes\""),
        (["-e", "/replica?lag=x"], [:], "--endpoint: invalid lag \"x\": expected bytes such as 1048576, 16MB or 1GB"),
        (["-e", "/slave"], [:], "--endpoint: unknown endpoint \"/slave\"; try \(Endpoint.choices)"),
        (["-o", "yaml"], [:], "--output must be http, summary, json, cluster or none, not \"yaml\""),
        (["--agent=1"], [:], "option --agent takes no value"),
        (["-m", ""], [:], "--maintenance-file needs a non-empty value"),
    ] as [([String], [String: String], String)])
    func badLimits(arguments: [String], environment: [String: String], message: String) {
        let error = #expect(throws: UsageError.self) { try parse(arguments, environment: environment) }
        #expect(error?.description == message)
    }

    @Test("the cache is off by default; --cache-ttl and PGSQLCHK_CACHE_TTL set its TTL, and only the flag reaches hand runs", arguments: [
        ([String](), [String: String](), CacheSettings()),
        (["--cache-ttl=1s"], [:], CacheSettings(ttl: Milliseconds(1_000), ttlOnCommandLine: true)),
        (["-c", "500ms"], [:], CacheSettings(ttl: Milliseconds(500), ttlOnCommandLine: true)),
        ([], ["PGSQLCHK_CACHE_TTL": "2"], CacheSettings(ttl: Milliseconds(2_000))),
        ([], ["PGSQLCHK_CACHE_TTL": "0"], CacheSettings(ttl: Milliseconds(0))),
        (["--cache-ttl", "0"], ["PGSQLCHK_CACHE_TTL": "1s"], CacheSettings(ttl: Milliseconds(0), ttlOnCommandLine: true)),
        (["--cache-dir=/run/x"], ["PGSQLCHK_CACHE_DIR": "/run/y"], CacheSettings(directory: "/run/x")),
        ([], ["PGSQLCHK_CACHE_DIR": "/run/y"], CacheSettings(directory: "/run/y")),
    ])
    func cacheSettings(arguments: [String], environment: [String: String], cache: CacheSettings) throws {
        #expect(try check(arguments, environment: environment).cache == cache)
    }

    @Test("a TTL past a minute, a negative or unitless-garbage TTL, and a relative directory are usage errors", arguments: [
        ["--cache-ttl=61s"], ["--cache-ttl=-1"], ["--cache-ttl=1h"], ["--cache-ttl="], ["--cache-dir=run/pgsqlchk"], ["--cache-dir="],
    ])
    func badCacheSettings(arguments: [String]) {
        #expect(throws: UsageError.self) { try parse(arguments) }
    }
}
