/// Everything one check needs to know before it starts.
///
/// Connection settings are kept as libpq keyword/value pairs in the order the
/// user gave them. A setting the user did not give is absent, so libpq's own
/// defaults, the `PG*` environment variables, `pg_service.conf` and `.pgpass`
/// decide it, exactly as they would for `psql` or `pg_isready`.
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

    /// libpq connection keywords and values, in the order given.
    public var connectionParameters: [ConnectionParameter]

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

    public init(connectionParameters: [ConnectionParameter] = [], timeout: Milliseconds = Configuration.defaultTimeout,
                request: CheckRequest = CheckRequest(), maintenanceFile: String = Configuration.defaultMaintenanceFile,
                output: OutputFormat = .http, agent: Bool = false) {
        self.connectionParameters = connectionParameters
        self.timeout = timeout
        self.request = request
        self.maintenanceFile = maintenanceFile
        self.output = output
        self.agent = agent
    }

    /// The parameters handed to libpq: the user's, then the fallback name.
    ///
    /// `dbname` is expanded by libpq (`expand_dbname`), so it may carry a whole
    /// conninfo string or URI, as with `psql -d` and `pg_isready -d`.
    public var libpqParameters: [ConnectionParameter] {
        connectionParameters + [ConnectionParameter(keyword: "fallback_application_name", value: Configuration.applicationName)]
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

/// One libpq connection keyword and its value (libpq: `PQconnectdbParams`).
public struct ConnectionParameter: Equatable, Sendable {
    /// The keyword as libpq spells it (`host`, `port`, `user`, `dbname`, ...).
    public var keyword: String
    /// Its value, passed to libpq as given.
    public var value: String

    public init(keyword: String, value: String) {
        self.keyword = keyword
        self.value = value
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
