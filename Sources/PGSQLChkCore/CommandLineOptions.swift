/// What the command line asks for.
public enum Invocation: Equatable, Sendable {
    /// Check the node and answer.
    case check(Configuration)
    /// Print the help text.
    case help
    /// Print the version.
    case version
}

/// A command line or environment that cannot be run (exit status 64, `EX_USAGE`).
public struct UsageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// One lower-case line saying what is wrong.
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// Reads argv and the environment into an ``Invocation``.
///
/// Flags follow `psql` and `pg_isready` (`-h -p -U -d`, `-V`, `-?`), in short
/// (`-p 5432`, `-p5432`) and long (`--port 5432`, `--port=5432`) forms.
public enum CommandLineOptions {
    /// Environment variable holding the deadline in seconds, for super-servers
    /// where editing `server_args` is less convenient than `env`.
    public static let timeoutVariable = "PGSQLCHK_TIMEOUT"

    struct Option {
        let short: Character
        let long: String
        let connectionKeyword: String?
    }

    static let options: [Option] = [
        Option(short: "h", long: "host", connectionKeyword: "host"),
        Option(short: "p", long: "port", connectionKeyword: "port"),
        Option(short: "U", long: "username", connectionKeyword: "user"),
        Option(short: "d", long: "dbname", connectionKeyword: "dbname"),
        Option(short: "t", long: "timeout", connectionKeyword: nil),
    ]

    /// Parses `arguments` (without the program name).
    ///
    /// - Parameter environment: looks up one environment variable.
    public static func parse(_ arguments: [String], environment: (String) -> String?) throws(UsageError) -> Invocation {
        var configuration = Configuration()
        var timeoutText = environment(timeoutVariable).map { (text: $0, source: timeoutVariable) }
        var index = 0

        func takeValue(for option: Option, attached: Substring?) throws(UsageError) -> String {
            if let attached { return String(attached) }
            index += 1
            guard index < arguments.count else {
                throw UsageError("option --\(option.long) needs a value")
            }
            return arguments[index]
        }

        while index < arguments.count {
            let argument = arguments[index]
            let option: Option
            let attached: Substring?
            switch argument {
            case "-?", "--help":
                return .help
            case "-V", "--version":
                return .version
            case _ where argument.hasPrefix("--") && argument.count > 2:
                let body = argument.dropFirst(2)
                let name = body.prefix { $0 != "=" }
                guard let known = options.first(where: { $0.long == name }) else {
                    throw UsageError("unknown option \(argument.prefix { $0 != "=" })")
                }
                option = known
                attached = name.count < body.count ? body.dropFirst(name.count + 1) : nil
            case _ where argument.hasPrefix("-") && argument.count > 1:
                let letter = argument[argument.index(after: argument.startIndex)]
                guard let known = options.first(where: { $0.short == letter }) else {
                    throw UsageError("unknown option -\(letter)")
                }
                option = known
                let rest = argument.dropFirst(2)
                attached = rest.isEmpty ? nil : rest
            default:
                throw UsageError("unexpected argument \"\(argument)\"")
            }
            let value = try takeValue(for: option, attached: attached)
            if let keyword = option.connectionKeyword {
                guard !value.isEmpty else { throw UsageError("option --\(option.long) needs a non-empty value") }
                configuration.connectionParameters.removeAll { $0.keyword == keyword }
                configuration.connectionParameters.append(ConnectionParameter(keyword: keyword, value: value))
            } else {
                timeoutText = (value, "--timeout")
            }
            index += 1
        }

        if let timeoutText {
            guard let timeout = Milliseconds(seconds: timeoutText.text),
                  timeout.value > 0, timeout <= Configuration.maximumTimeout
            else {
                throw UsageError("\(timeoutText.source) must be seconds between 0.001 and \(Configuration.maximumTimeout), not \"\(timeoutText.text)\"")
            }
            configuration.timeout = timeout
        }
        return .check(configuration)
    }

    /// The `--help` text; defaults are printed from the constants that define them.
    public static let helpText = """
        pgsqlchk answers an HTTP health check with this PostgreSQL node's role.

        Usage:
          pgsqlchk [OPTION]...

        Run by a super-server (xinetd, systemd socket activation) per check connection,
        or by hand; either way it writes the HTTP response HAProxy would receive.

        Options:
          -t, --timeout=SECS       deadline for the whole check (default: \(Configuration.defaultTimeout))
          -V, --version            output version information, then exit
          -?, --help               show this help, then exit

        Connection options:
          -h, --host=HOSTNAME      database server host or socket directory
          -p, --port=PORT          database server port
          -U, --username=USERNAME  user name to connect as
          -d, --dbname=DBNAME      database name, or a conninfo string or URI

        Connection options left out fall back to libpq: PGHOST, PGPORT, PGUSER,
        PGDATABASE, PGSERVICE, PGPASSFILE, pg_service.conf, .pgpass.
        \(timeoutVariable) sets the deadline when --timeout is not given.

        Answers:
          HTTP 200  exit 0   primary (read-write)
          HTTP 206  exit 1   standby (read-only)
          HTTP 503  exit 2   role cannot be verified; the body says why
                    exit 64  usage error

        """
}
