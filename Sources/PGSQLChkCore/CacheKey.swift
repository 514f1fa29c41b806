#if canImport(Glibc)
import Glibc
#endif

/// What makes two checks ask the same question of the same server: an entry
/// answers only checks with the same key.
///
/// The key holds the connection settings, every `PG*` variable libpq reads in
/// their absence (but `PGPASSWORD`), the effective user (peer authentication
/// and `.pgpass` depend on it) and the probe's depth, so that a
/// `/replica?lag=` check never gets a role-only result. Only its digest is
/// ever written, never the settings: a conninfo given with `-d` may carry a
/// password. Later parts (a list of peers) are appended with ``adding(_:_:)``.
struct CacheKey: Equatable, Sendable {
    /// The parts, in order, each `name=value` (`name` alone when unset).
    private(set) var parts: [String]

    init(_ settings: ConnectionSettings, depth: ProbeDepth, environment: [String], user: UInt32) {
        parts = [
            Self.part("host", settings.host), Self.part("port", settings.port),
            Self.part("user", settings.user), Self.part("dbname", settings.dbname),
            Self.part("depth", "\(depth)"),
            Self.part("uid", String(user)),
        ]
        parts += environment.filter { $0.hasPrefix("PG") && !$0.hasPrefix("PGPASSWORD=") }.sorted().map { "env " + $0 }
    }

    /// This key with one more part.
    func adding(_ name: String, _ value: String?) -> CacheKey {
        var key = self
        key.parts.append(Self.part(name, value))
        return key
    }

    /// Sixteen hex digits: FNV-1a (64 bits) of the parts, each preceded by its
    /// length so that no two lists of parts run together the same way. Names
    /// the entry's files.
    var digest: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for part in parts {
            for byte in Array(String(part.utf8.count).utf8) + [0x3a] + Array(part.utf8) {
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            }
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    private static func part(_ name: String, _ value: String?) -> String {
        value.map { name + "=" + $0 } ?? name
    }

    /// This process's environment, `NAME=value` a string (C: `environ`).
    static func processEnvironment() -> [String] {
        var variables: [String] = []
        var cursor = environ
        while let variable = cursor.pointee {
            let text = String(cString: variable)
            if text.hasPrefix("PG") { variables.append(text) }
            cursor += 1
        }
        return variables
    }
}
