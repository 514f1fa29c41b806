import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The contract between the scripts that start the test servers and the
/// suites that use them: the variables a script's env file exports, read here
/// and nowhere else.
///
/// A suite that needs servers runs when every variable it reads is set, or
/// when `PGSQLCHK_REQUIRE_LIVE=1` (which `scripts/test.sh` sets) says it must;
/// then a missing variable or server fails each of its tests with its name,
/// instead of turning the suite into a green no-op.
enum LiveEnvironment {
    /// `PGSQLCHK_REQUIRE_LIVE=1`: every live suite must run.
    static let isRequired = value(of: "PGSQLCHK_REQUIRE_LIVE") == "1"

    /// The value of environment variable `name`, if set.
    static func value(of name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

/// The variables one script writes for the suites, and how to get them.
struct EnvironmentContract {
    let names: [String]
    /// What sets them, for the failure message.
    let source: String

    var missing: [String] { names.filter { LiveEnvironment.value(of: $0) == nil } }

    /// True when the suites that read this contract should run: all of it is
    /// set, or `PGSQLCHK_REQUIRE_LIVE=1` demands them.
    var isEnabled: Bool { LiveEnvironment.isRequired || missing.isEmpty }

    /// Why such a suite was skipped, as `swift test` prints it.
    var skipReason: Comment {
        Comment(rawValue: "not set: \(missing.joined(separator: ", ")) (\(source); PGSQLCHK_REQUIRE_LIVE=1 makes this a failure)")
    }

    /// Every variable's value by name, or the error that names the missing ones.
    func values() throws(LiveEnvironmentError) -> [String: String] {
        let missing = missing
        guard missing.isEmpty else { throw .missingVariables(missing, source: source) }
        return Dictionary(uniqueKeysWithValues: names.map { ($0, LiveEnvironment.value(of: $0)!) })
    }
}

/// Why a live suite cannot run.
enum LiveEnvironmentError: Error, CustomStringConvertible {
    /// Variables of the contract are not set.
    case missingVariables([String], source: String)
    /// A server the contract names is not running.
    case serverNotRunning(String)

    var description: String {
        switch self {
        case .missingVariables(let names, let source):
            "live test environment incomplete: \(names.joined(separator: ", ")) not set (\(source))"
        case .serverNotRunning(let what):
            "live test server missing: \(what)"
        }
    }
}

/// True when process `pid` exists and is not a zombie waiting to be reaped
/// (a daemon that setsid left to a PID 1 that does not reap).
func processIsRunning(_ pid: pid_t) -> Bool {
    guard pid > 0, let stat = firstLine(of: "/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(after: close)...].trimmingPrefix(" ").first != "Z"
}

/// The process id on the first line of `path`, as in a pid file.
func pidFile(_ path: String) -> pid_t? {
    firstLine(of: path).flatMap { pid_t($0) }
}

/// The first line of the file at `path`, without its line end.
func firstLine(of path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 512)
    guard fgets(&line, Int32(line.count), file) != nil else { return nil }
    return String(decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
