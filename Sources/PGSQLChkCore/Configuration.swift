#if canImport(Glibc)
import Glibc
#endif

/// Everything one check needs to know before it starts.
public struct Configuration: Equatable, Sendable {
    /// The default deadline for the whole check, connect to last byte written.
    ///
    /// HAProxy's `timeout check` defaults to `inter` (2 s); answering a little
    /// before it lets HAProxy read our 503 and its reason instead of logging a
    /// bare "Layer7 timeout".
    public static let defaultTimeout = Milliseconds(1_500)

    /// The longest deadline accepted, so a typo cannot park a checker for hours.
    public static let maximumTimeout = Milliseconds(3_600_000)

    /// Names this program in `pg_stat_activity` unless the user sets
    /// `application_name` (libpq: `fallback_application_name`).
    public static let applicationName = "pgsqlchk"

    /// Where an admin drops a file to take the node out of rotation. It
    /// survives a reboot on purpose: a node under maintenance stays drained
    /// until the admin says otherwise.
    public static let defaultMaintenanceFile = "/etc/pgsqlchk/maintenance"

    /// What the command line says about the connection.
    public var connection: ConnectionSettings

    /// The budget for the whole check.
    public var timeout: Milliseconds

    /// The question asked when no HTTP request arrives (a hand run, a plain TCP check).
    public var request: CheckRequest

    /// The limits a standby must meet unless a request sets its own.
    public var requirements: StandbyRequirements {
        get { request.requirements }
        set { request.requirements = newValue }
    }

    /// The drain file's path.
    public var maintenanceFile: String

    /// How a hand run prints the answer; a check connection always gets HTTP.
    public var output: OutputFormat

    /// Answer HAProxy's agent-check protocol instead of HTTP.
    public var agent: Bool

    /// A configuration; every argument defaults to what an empty command line gives.
    public init(connection: ConnectionSettings = ConnectionSettings(), timeout: Milliseconds = Configuration.defaultTimeout,
                request: CheckRequest = CheckRequest(), maintenanceFile: String = Configuration.defaultMaintenanceFile,
                output: OutputFormat = .http, agent: Bool = false) {
        self.connection = connection
        self.timeout = timeout
        self.request = request
        self.maintenanceFile = maintenanceFile
        self.output = output
        self.agent = agent
    }
}

/// How a hand run prints its answer.
public enum OutputFormat: String, CaseIterable, Sendable {
    /// Exactly the HTTP response HAProxy would receive.
    case http
    /// One line: `primary, timeline 3, PostgreSQL 15.18`.
    case summary
    /// The JSON status document.
    case json
}

/// The connection settings given on the command line (`-h -p -U -d`).
///
/// A setting left out stays nil and is never sent, so libpq's own defaults,
/// the `PG*` environment variables, `pg_service.conf` and `.pgpass` decide it,
/// exactly as they would for `psql` or `pg_isready`.
public struct ConnectionSettings: Equatable, Sendable {
    /// `-h`: host name, address or socket directory (libpq: `host`).
    public var host: String?
    /// `-p`: port (libpq: `port`).
    public var port: String?
    /// `-U`: the role to log in as (libpq: `user`).
    public var user: String?
    /// `-d`: a database name, or a whole conninfo string or URI (libpq:
    /// `dbname`, expanded).
    public var dbname: String?

    /// Settings with the given values; nil leaves one to libpq.
    public init(host: String? = nil, port: String? = nil, user: String? = nil, dbname: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.dbname = dbname
    }

    /// The libpq keyword/value pairs, in psql's order: `dbname` comes after
    /// `host`, `port` and `user`, so a conninfo string given with `-d`
    /// overrides them, as it does for `psql -d`. Then the fallback name.
    /// (libpq: `PQconnectdbParams` with `expand_dbname`.)
    public func withLibpqParameters<Result>(_ body: (UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<UnsafePointer<CChar>?>) -> Result) -> Result {
        // Plain buffers, filled in line, rather than arrays: this runs once per
        // check, and each new generic array type costs run-time type metadata.
        let capacity = 6
        let keywords = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: capacity)
        let values = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: capacity)
        var count = 0
        defer {
            for index in 0..<count { free(UnsafeMutableRawPointer(mutating: values[index])) }
            keywords.deallocate()
            values.deallocate()
        }
        func add(_ keyword: StaticString, _ value: String?) {
            guard let value else { return }
            keywords[count] = UnsafeRawPointer(keyword.utf8Start).assumingMemoryBound(to: CChar.self)
            values[count] = UnsafePointer(strdup(value))
            count += 1
        }
        add("host", host)
        add("port", port)
        add("user", user)
        add("dbname", dbname)
        add("fallback_application_name", Configuration.applicationName)
        keywords[count] = nil
        values[count] = nil
        return body(keywords, values)
    }
}

/// A duration in whole milliseconds, the precision of `poll()`.
public struct Milliseconds: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// The count of milliseconds.
    public var value: Int

    public init(_ value: Int) {
        self.value = value
    }

    public static func < (lhs: Milliseconds, rhs: Milliseconds) -> Bool {
        lhs.value < rhs.value
    }

    /// Seconds with up to three decimals and no trailing zeros: `1.5`, `2`,
    /// `0.25`, `-0.025`.
    public var description: String {
        let sign = value < 0 ? "-" : ""
        let whole = value.magnitude / 1000
        var fraction = value.magnitude % 1000
        guard fraction != 0 else { return sign + String(whole) }
        var digits = 3
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        let padded = String(fraction)
        return sign + "\(whole)." + String(repeating: "0", count: digits - padded.count) + padded
    }

    /// Parses seconds written as a decimal number (`2`, `1.5`, `0.250`).
    ///
    /// Returns nil for anything else, including signs, exponents and more than
    /// millisecond precision, so a mistyped value is reported, not rounded.
    public init?(seconds text: String) {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let wholeText = parts.first, !wholeText.isEmpty, wholeText.count <= 7,
              wholeText.allSatisfy(\.isASCIIDigit),
              let whole = Int(wholeText)
        else { return nil }
        var millis = 0
        if parts.count == 2 {
            let fractionText = parts[1]
            guard !fractionText.isEmpty, fractionText.count <= 3, fractionText.allSatisfy(\.isASCIIDigit) else { return nil }
            millis = Int(fractionText + String(repeating: "0", count: 3 - fractionText.count))!
        }
        self.init(whole * 1000 + millis)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isWholeNumber }
}
