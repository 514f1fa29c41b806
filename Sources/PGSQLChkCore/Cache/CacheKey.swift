#if canImport(Glibc)
import Glibc
#endif

/// What makes two checks ask the same question of the same server: an entry
/// answers only checks with the same key.
///
/// The key is the node and the question, never the asker's incidental
/// inputs. It holds:
/// - the connection settings (`-h -p -U -d`);
/// - the variables in ``environmentNames`` that are set: what libpq reads to
///   choose the server and the session, and how it must be reached;
/// - `HOME` and the effective user, which pick `~/.pg_service.conf` (and so,
///   through `-d service=...`, the server) and the role of peer
///   authentication;
/// - the probe's depth, so that a `/replica?lag=` check never gets a
///   role-only result; later parts (the peers, a `maxconn_role`) are
///   appended with ``adding(_:_:)``.
///
/// Credentials are left out: `PGPASSWORD`, `PGPASSFILE` and the TLS key and
/// certificate files say who asks, not whom, and systemd hands each check a
/// credential at a path of its own (`%d/pgpass`), which would make every key
/// new. An outcome that depends on them is never written
/// (``ResultCache/shares(_:)``). So is everything else not named here
/// (`PGAPPNAME`, `PGSQLCHK_*`, `PGDATA`...).
///
/// Only its digest is ever written, never the settings: a conninfo given
/// with `-d` may carry a password.
struct CacheKey: Equatable, Sendable {
    /// The environment variables that are part of the key (libpq's
    /// "Environment Variables"): those that choose the server
    /// (`PGHOST`...`PGLOADBALANCEHOSTS`), shape the session and so what the
    /// probe reads (`PGOPTIONS`...`PGGEQO`), or decide how it may be reached,
    /// whose failures libpq does not always tell from an absent server
    /// (`PGSSLMODE`...`PGCONNECT_TIMEOUT`). None is a path the supervisor
    /// makes per connection.
    static let environmentNames: [String] = [
        "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE", "PGSERVICEFILE", "PGSYSCONFDIR",
        "PGTARGETSESSIONATTRS", "PGLOADBALANCEHOSTS",
        "PGOPTIONS", "PGCLIENTENCODING", "PGDATESTYLE", "PGTZ", "PGGEQO",
        "PGSSLMODE", "PGREQUIRESSL", "PGSSLNEGOTIATION", "PGSSLMINPROTOCOLVERSION", "PGSSLMAXPROTOCOLVERSION",
        "PGMINPROTOCOLVERSION", "PGMAXPROTOCOLVERSION", "PGGSSENCMODE", "PGREQUIREAUTH", "PGCHANNELBINDING",
        "PGREQUIREPEER", "PGCONNECT_TIMEOUT",
        "HOME",
    ]

    /// The parts, in order, each `name=value` (`name` alone when unset).
    private(set) var parts: [String]

    init(_ settings: ConnectionSettings, depth: ProbeDepth, environment: [String], user: UInt32) {
        parts = [
            Self.part("host", settings.host), Self.part("port", settings.port),
            Self.part("user", settings.user), Self.part("dbname", settings.dbname),
            Self.part("depth", depth.rawValue),
            Self.part("uid", String(user)),
        ]
        parts += environment.filter { Self.environmentNames.contains(String($0.prefix { $0 != "=" })) }.sorted().map { "env " + $0 }
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

    /// Whether `text` is what ``digest`` writes: sixteen lower-case hex digits.
    static func isDigest(_ text: Substring) -> Bool {
        text.utf8.count == 16 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    private static func part(_ name: String, _ value: String?) -> String {
        value.map { name + "=" + $0 } ?? name
    }

    /// The variables of this process's environment that are part of the key,
    /// `NAME=value` a string (C: `environ`).
    static func processEnvironment() -> [String] {
        var variables: [String] = []
        var cursor = environ
        while let variable = cursor.pointee {
            let text = String(cString: variable)
            if environmentNames.contains(String(text.prefix { $0 != "=" })) { variables.append(text) }
            cursor += 1
        }
        return variables
    }
}
