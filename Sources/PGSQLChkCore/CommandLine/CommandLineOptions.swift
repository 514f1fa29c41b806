/// What the command line asks for.
enum Invocation: Equatable, Sendable {
    /// Check the node and answer.
    case check(Configuration)
    /// Print the help text.
    case help
    /// Print the version.
    case version
    /// Remove the stale-primary guard's fence file of the node the
    /// connection options reach (``FenceClearing``).
    case clearFence(Configuration)
    /// Check the deployment and print a checklist (``Preflight``).
    case preflight(Configuration)
}

/// A command line or environment that cannot be run (exit status 64, `EX_USAGE`).
///
/// `source` names where the value came from: `--port`, or a variable such
/// as `PGSQLCHK_TIMEOUT`.
enum UsageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A flag pgsqlchk does not have.
    case unknownOption(String)
    /// A flag that needs a value came last.
    case missingValue(option: String)
    /// A switch such as `--agent` was given a value.
    case unexpectedValue(option: String)
    /// A word that is not an option.
    case unexpectedArgument(String)
    /// An empty value where one is needed.
    case emptyValue(source: String)
    /// A value outside what the option accepts; `accepted` says what would do.
    case invalidValue(source: String, value: String, accepted: String)
    /// An endpoint or standby limit that a request would refuse too.
    case refusedRequest(source: String, RequestError)

    /// One lower-case line saying what is wrong.
    var description: String {
        switch self {
        case .unknownOption(let option): "unknown option \(option)"
        case .missingValue(let option): "option --\(option) needs a value"
        case .unexpectedValue(let option): "option --\(option) takes no value"
        case .unexpectedArgument(let argument): "unexpected argument \"\(argument)\""
        case .emptyValue(let source): "\(source) needs a non-empty value"
        case .invalidValue(let source, let value, let accepted): "\(source) must be \(accepted), not \"\(value)\""
        case .refusedRequest(let source, let error): "\(source): \(error.reason)"
        }
    }
}

/// Reads argv and the environment into an ``Invocation``.
///
/// Flags follow `psql` and `pg_isready` (`-h -p -U -d`, `-V`, `-?`), in short
/// (`-p 5432`, `-p5432`) and long (`--port 5432`, `--port=5432`) forms. The
/// environment variables named in ``options`` apply when their flag is absent,
/// for super-servers where `env` is easier to edit than `server_args`.
enum CommandLineOptions {
    enum Setting: Equatable {
        case host, port, user, dbname
        case timeout, endpoint, output, maintenanceFile, maximumLag, maximumReplayBacklog, maximumReplayDelay
        case requireStreaming, agent
        case peers, quorum, stateDirectory, clearFence, probe, preflight
        case cacheTTL, cacheDirectory
    }

    struct Option {
        let short: Character
        let long: String
        let setting: Setting
        /// The environment variable read when the flag is absent.
        let variable: String?

        /// Flags that take no value.
        var isSwitch: Bool { [.requireStreaming, .agent, .clearFence, .preflight].contains(setting) }
    }

    static let options: [Option] = [
        Option(short: "h", long: "host", setting: .host, variable: nil),
        Option(short: "p", long: "port", setting: .port, variable: nil),
        Option(short: "U", long: "username", setting: .user, variable: nil),
        Option(short: "d", long: "dbname", setting: .dbname, variable: nil),
        Option(short: "t", long: "timeout", setting: .timeout, variable: "PGSQLCHK_TIMEOUT"),
        Option(short: "e", long: "endpoint", setting: .endpoint, variable: nil),
        Option(short: "o", long: "output", setting: .output, variable: nil),
        Option(short: "a", long: "agent", setting: .agent, variable: nil),
        Option(short: "q", long: "probe", setting: .probe, variable: nil),
        Option(short: "T", long: "preflight", setting: .preflight, variable: nil),
        Option(short: "m", long: "maintenance-file", setting: .maintenanceFile, variable: "PGSQLCHK_MAINTENANCE_FILE"),
        Option(short: "l", long: "max-lag", setting: .maximumLag, variable: "PGSQLCHK_MAX_LAG"),
        Option(short: "b", long: "max-replay-backlog", setting: .maximumReplayBacklog, variable: "PGSQLCHK_MAX_REPLAY_BACKLOG"),
        Option(short: "r", long: "max-replay-delay", setting: .maximumReplayDelay, variable: "PGSQLCHK_MAX_REPLAY_DELAY"),
        Option(short: "s", long: "require-streaming", setting: .requireStreaming, variable: "PGSQLCHK_REQUIRE_STREAMING"),
        Option(short: "P", long: "peers", setting: .peers, variable: "PGSQLCHK_PEERS"),
        Option(short: "Q", long: "quorum", setting: .quorum, variable: "PGSQLCHK_QUORUM"),
        Option(short: "S", long: "state-dir", setting: .stateDirectory, variable: "PGSQLCHK_STATE_DIR"),
        Option(short: "F", long: "clear-fence", setting: .clearFence, variable: nil),
        Option(short: "c", long: "cache-ttl", setting: .cacheTTL, variable: "PGSQLCHK_CACHE_TTL"),
        Option(short: "C", long: "cache-dir", setting: .cacheDirectory, variable: "PGSQLCHK_CACHE_DIR"),
    ]

    /// Parses `arguments` (without the program name).
    ///
    /// - Parameter environment: looks up one environment variable.
    static func parse(_ arguments: [String], environment: (String) -> String?) throws(UsageError) -> Invocation {
        var settings = Settings()
        var given: UInt32 = 0
        let information = try forEachFlag(in: arguments) { index, value throws(UsageError) in
            given |= 1 << index
            try settings.apply(options[index], value: value, source: "--\(options[index].long)")
        }
        if let information { return information }
        for (index, option) in options.enumerated() where given & (1 << index) == 0 {
            // An empty value is unset, as a commented-out line would be.
            if let variable = option.variable, let value = environment(variable), !value.isEmpty {
                try settings.apply(option, value: value, source: variable)
            }
        }
        try settings.validateQuorum()
        var configuration = settings.configuration
        if settings.clearsFence { return .clearFence(configuration) }
        if settings.checksDeployment {
            configuration.question.requirements = configuration.requirements
            return .preflight(configuration)
        }
        // Read last, on top of every limit, so that the endpoint's own
        // parameters win over --max-lag and friends in any order.
        if let endpoint = settings.endpoint {
            do {
                configuration.question = try CheckRequest.parse(target: endpoint, defaults: configuration.requirements)
            } catch {
                throw .refusedRequest(source: "--endpoint", error)
            }
        } else {
            configuration.question.requirements = configuration.requirements
        }
        return .check(configuration)
    }

    /// The dialect the command line asks for, read leniently: whatever else
    /// is wrong with it, a check connection started with `--agent` (in any
    /// spelling, even `--agent=1`) speaks the agent protocol, so that even
    /// a usage error reaches HAProxy in a form it reads.
    static func dialect(in arguments: [String]) -> Dialect {
        for argument in arguments {
            if argument == "-a" || argument.hasPrefix("-a") && !argument.hasPrefix("--") { return .agent }
            if argument == "--agent" || argument.hasPrefix("--agent=") { return .agent }
        }
        return .http
    }

    /// Calls `body` with the index in ``options`` and the value of each flag
    /// in `arguments`, in order; returns `.help` or `.version` at once when
    /// one of those is asked for.
    private static func forEachFlag(in arguments: [String], _ body: (Int, String) throws(UsageError) -> Void) throws(UsageError) -> Invocation? {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let found: Int
            var attached: Substring?
            switch argument {
            case "-?", "--help":
                return .help
            case "-V", "--version":
                return .version
            case _ where argument.hasPrefix("--") && argument.count > 2:
                let flag = argument.dropFirst(2)
                let name = flag.prefix { $0 != "=" }
                guard let known = options.firstIndex(where: { $0.long == name }) else {
                    throw .unknownOption("--\(name)")
                }
                found = known
                if name.count < flag.count { attached = flag.dropFirst(name.count + 1) }
            case _ where argument.hasPrefix("-") && argument.count > 1:
                let letter = argument[argument.index(after: argument.startIndex)]
                guard let known = options.firstIndex(where: { $0.short == letter }) else {
                    throw .unknownOption("-\(letter)")
                }
                found = known
                let rest = argument.dropFirst(2)
                if !rest.isEmpty { attached = rest }
            default:
                throw .unexpectedArgument(argument)
            }
            let option = options[found]
            let value: String
            if option.isSwitch {
                guard attached == nil else { throw .unexpectedValue(option: option.long) }
                value = "1"
            } else if let attached {
                value = String(attached)
            } else {
                index += 1
                guard index < arguments.count else { throw .missingValue(option: option.long) }
                value = arguments[index]
            }
            try body(found, value)
            index += 1
        }
        return nil
    }

    /// What the options say, before the endpoint is read on top of the limits.
    private struct Settings {
        var configuration = Configuration()
        /// `--endpoint`, as given.
        var endpoint: String?
        /// `--clear-fence` was given.
        var clearsFence = false
        /// `--preflight` was given.
        var checksDeployment = false
        /// Where the quorum came from and as given, for a usage error that
        /// only the peers list can show.
        var quorumSource: (source: String, value: String)?

        mutating func apply(_ option: Option, value: String, source: String) throws(UsageError) {
            switch option.setting {
            case .host:
                configuration.connection.host = try nonEmpty(value, source: source)
            case .port:
                configuration.connection.port = try nonEmpty(value, source: source)
            case .user:
                configuration.connection.user = try nonEmpty(value, source: source)
            case .dbname:
                configuration.connection.dbname = try nonEmpty(value, source: source)
            case .timeout:
                guard let timeout = Milliseconds(seconds: value), timeout.value > 0, timeout <= Configuration.maximumTimeout else {
                    throw .invalidValue(source: source, value: value, accepted: "seconds between 0.001 and \(Configuration.maximumTimeout)")
                }
                configuration.timeout = timeout
            case .endpoint:
                endpoint = value
            case .output:
                guard let format = OutputFormat(rawValue: value) else {
                    throw .invalidValue(source: source, value: value, accepted: "http, summary, json, cluster or none")
                }
                configuration.output = format
            case .maintenanceFile:
                configuration.maintenanceFile = try nonEmpty(value, source: source)
            case .maximumLag:
                try applyLimit("lag", value: value, source: source)
            case .maximumReplayBacklog:
                try applyLimit("replay_backlog", value: value, source: source)
            case .maximumReplayDelay:
                try applyLimit("replay_delay", value: value, source: source)
            case .requireStreaming:
                guard value == "1" || value == "0" else { throw .invalidValue(source: source, value: value, accepted: "1 or 0") }
                configuration.requirements.requiresStreaming = value == "1"
            case .agent:
                configuration.dialect = .agent
            case .probe:
                guard value == "liveness" || value == "readiness" else {
                    throw .invalidValue(source: source, value: value, accepted: "liveness or readiness")
                }
                endpoint = "/" + value
                configuration.output = .none
            case .peers:
                guard let peers = PeerAddress.list(value) else {
                    throw .invalidValue(source: source, value: value, accepted: PeerAddress.accepted)
                }
                configuration.peers = peers
            case .quorum:
                guard let quorum = Quorum(value) else { throw .invalidValue(source: source, value: value, accepted: Quorum.accepted) }
                configuration.quorum = quorum
                quorumSource = (source, value)
            case .stateDirectory:
                guard value.hasPrefix("/") else { throw .invalidValue(source: source, value: value, accepted: "an absolute path") }
                configuration.stateDirectory = value
            case .clearFence:
                clearsFence = true
            case .preflight:
                checksDeployment = true
            case .cacheTTL:
                guard let ttl = Milliseconds(duration: value), ttl <= CacheSettings.maximumTTL else {
                    throw .invalidValue(source: source, value: value, accepted: "a duration from 0 (off) to \(CacheSettings.maximumTTL)s")
                }
                configuration.cache.ttl = ttl
                configuration.cache.ttlOnCommandLine = source.hasPrefix("--")
            case .cacheDirectory:
                let directory = try nonEmpty(value, source: source)
                guard directory.hasPrefix("/") else {
                    throw .invalidValue(source: source, value: value, accepted: "an absolute path")
                }
                configuration.cache.directory = directory
            }
        }

        /// A quorum needs the list it counts, and cannot ask for more nodes
        /// than the list and this node make.
        func validateQuorum() throws(UsageError) {
            guard let quorum = configuration.quorum, let (source, value) = quorumSource else { return }
            guard !configuration.peers.isEmpty else {
                throw .invalidValue(source: source, value: value, accepted: "used with --peers (PGSQLCHK_PEERS), whose nodes it counts")
            }
            if case .nodes(let count) = quorum, count > configuration.peers.count + 1 {
                throw .invalidValue(source: source, value: value,
                                    accepted: "at most \(configuration.peers.count + 1), the \(configuration.peers.count) nodes of --peers and this one")
            }
        }

        private func nonEmpty(_ value: String, source: String) throws(UsageError) -> String {
            guard !value.isEmpty else { throw .emptyValue(source: source) }
            return value
        }

        /// Sets a standby limit through the same parser as a request's parameter,
        /// so both accept and refuse the same values.
        private mutating func applyLimit(_ parameter: String, value: String, source: String) throws(UsageError) {
            do {
                try configuration.requirements.apply(parameter: parameter, value: value)
            } catch {
                throw .refusedRequest(source: source, error)
            }
        }
    }

    /// The `--help` text; defaults are printed from the constants that define them.
    static let helpText = """
        pgsqlchk answers an HTTP health check with this PostgreSQL node's role.

        Usage:
          pgsqlchk [OPTION]...

        Run by a super-server (xinetd, systemd socket activation) per check connection,
        or by hand, where it prints the HTTP response HAProxy would receive.

        Options:
          -t, --timeout=SECS       deadline for the whole check (default: \(Configuration.defaultTimeout))
          -e, --endpoint=PATH      question asked when no HTTP request arrives (default: /):
                                   /, /primary, /replica, /read-only, /health, /status,
                                   /liveness, /readiness, /synchronous, /asynchronous,
                                   /metrics, /cluster,
                                   with ?lag=, ?replay_backlog=, ?replay_delay=,
                                   ?replication_state=streaming, ?rejoin=75,
                                   ?keep_last_standby=1
          -o, --output=FORMAT      by hand: http, summary, json, cluster or none
                                   (default: http)
          -q, --probe=KIND         liveness or readiness, exit status only, for
                                   Kubernetes exec probes (-e /KIND -o none)
          -a, --agent              answer HAProxy's agent-check protocol instead of HTTP
          -T, --preflight          check the deployment as the check's user (login,
                                   privileges, peers, directories), print a checklist,
                                   exit 1 if it finds a problem
          -m, --maintenance-file=PATH
                                   drain the node while this file exists
                                   (default: \(Configuration.defaultMaintenanceFile))
          -c, --cache-ttl=DURATION share each probe's outcome with the checks of the next
                                   DURATION (e.g. 1s, 500ms; default: \(CacheSettings.defaultTTL.value)ms, off);
                                   by hand, only when given here
          -C, --cache-dir=DIR      the cache's directory, mode 0700, owned by the check's
                                   user (default: \(CacheSettings.defaultDirectory))
          -V, --version            output version information, then exit
          -?, --help               show this help, then exit

        Stale-primary guard (off unless --peers is set):
          -P, --peers=HOST[:PORT][,...]
                                   every node of the cluster, this one included; a
                                   primary asks them all and answers 503 when one
                                   shows a newer timeline ([ADDR]:PORT for IPv6);
                                   a standby asks them for /synchronous and
                                   /asynchronous
          -Q, --quorum=all|majority|N
                                   a primary answers 200 only while it reaches this
                                   many nodes of --peers, itself included (default:
                                   off, a lone primary serves)
          -S, --state-dir=DIR      where the guard keeps each node's fence file; nodes
                                   and clusters may share it
                                   (default: \(Configuration.defaultStateDirectory))
          -F, --clear-fence        remove the fence file of the node the connection
                                   options reach, then exit

        Standby options (off unless set; a request's parameters override them):
          -l, --max-lag=BYTES      most of the primary's WAL not yet replayed here (e.g. 16MB);
                                   needs pg_monitor to see the WAL receiver
          -b, --max-replay-backlog=BYTES
                                   most WAL received but not yet replayed
          -r, --max-replay-delay=DURATION
                                   most replay delay (e.g. 30s); zero when caught up
          -s, --require-streaming  the WAL receiver must be streaming

        Connection options:
          -h, --host=HOSTNAME      database server host or socket directory
          -p, --port=PORT          database server port
          -U, --username=USERNAME  user name to connect as
          -d, --dbname=DBNAME      database name, or a conninfo string or URI

        Connection options left out fall back to libpq: PGHOST, PGPORT, PGUSER,
        PGDATABASE, PGSERVICE, PGPASSFILE, pg_service.conf, .pgpass.
        Environment: PGSQLCHK_TIMEOUT, PGSQLCHK_MAINTENANCE_FILE, PGSQLCHK_MAX_LAG,
        PGSQLCHK_MAX_REPLAY_BACKLOG, PGSQLCHK_MAX_REPLAY_DELAY, PGSQLCHK_REQUIRE_STREAMING=1,
        PGSQLCHK_PEERS, PGSQLCHK_QUORUM, PGSQLCHK_STATE_DIR, PGSQLCHK_CACHE_TTL,
        PGSQLCHK_CACHE_DIR stand in for their options; an empty one counts as unset.

        Answers:
          HTTP 200         exit 0   primary (/), or the endpoint's condition holds
          HTTP 206         exit 1   standby (/)
          HTTP 503         exit 2   role cannot be verified, or condition not met; the body says why
          HTTP 404         exit 3   maintenance (the drain file exists)
          HTTP 400/405/408 exit 4   the request (or agent-send line) was refused
                           exit 64  usage error

        """
}
