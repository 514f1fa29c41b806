#if canImport(Glibc)
import Glibc
#endif

/// The connection settings given on the command line (`-h -p -U -d`).
///
/// A setting left out stays nil and is never sent, so libpq's own defaults,
/// the `PG*` environment variables, `pg_service.conf` and `.pgpass` decide it,
/// exactly as they would for `psql` or `pg_isready`.
struct ConnectionSettings: Equatable, Sendable {
    /// `-h`: host name, address or socket directory (libpq: `host`).
    var host: String?
    /// `-p`: port (libpq: `port`).
    var port: String?
    /// `-U`: the role to log in as (libpq: `user`).
    var user: String?
    /// `-d`: a database name, or a whole conninfo string or URI (libpq:
    /// `dbname`, expanded).
    var dbname: String?
    /// A peer of the stale-primary guard to reach instead of `host` and `port`
    /// (``PeerAddress``). Its pairs come after `dbname`, so that a conninfo
    /// string given with `-d` cannot send the peer's check to the local node.
    var peer: PeerAddress?
    /// The peer's numeric addresses, looked up ahead (``HostLookup``) so
    /// that libpq never resolves its name itself; empty when its host is an
    /// address or a socket directory.
    var peerAddresses: [String] = []

    /// These settings with only the host and port replaced by `peer`'s,
    /// reached at `addresses` when its name was looked up.
    func reaching(_ peer: PeerAddress, at addresses: [String] = []) -> ConnectionSettings {
        var settings = self
        settings.peer = peer
        settings.peerAddresses = addresses
        return settings
    }

    /// One keyword/value pair for libpq.
    private struct Parameter {
        let keyword: StaticString
        let value: String?
    }

    /// The pairs in psql's order: `dbname` comes after `host`, `port` and
    /// `user`, so a conninfo string given with `-d` overrides them, as it does
    /// for `psql -d`. Then the fallback name, then a peer's host and port,
    /// which libpq takes over every earlier value (the last one wins). A
    /// peer looked up ahead is given as `hostaddr`, its name repeated in
    /// `host` once an address (libpq pairs the two lists), so that the
    /// password file and `sslmode=verify-full` still match the name.
    private var parameters: [Parameter] {
        var pairs = [
            Parameter(keyword: "host", value: host),
            Parameter(keyword: "port", value: port),
            Parameter(keyword: "user", value: user),
            Parameter(keyword: "dbname", value: dbname),
            Parameter(keyword: "fallback_application_name", value: Configuration.applicationName),
        ]
        if let peer {
            let hosts = peerAddresses.isEmpty ? peer.host : Array(repeating: peer.host, count: peerAddresses.count).joined(separator: ",")
            pairs.append(Parameter(keyword: "host", value: hosts))
            pairs.append(Parameter(keyword: "port", value: peer.port))
            if !peerAddresses.isEmpty {
                pairs.append(Parameter(keyword: "hostaddr", value: peerAddresses.joined(separator: ",")))
            }
        }
        return pairs
    }

    /// The keyword/value pairs libpq receives, in order, unset ones left out.
    var libpqPairs: [(keyword: String, value: String)] {
        parameters.compactMap { parameter in parameter.value.map { (parameter.keyword.description, $0) } }
    }

    /// Lends libpq's NULL-terminated keyword and value arrays to `body`; the
    /// arrays are sized from the pairs themselves, so no pair can write past
    /// them. (libpq: `PQconnectdbParams` with `expand_dbname`.)
    func withLibpqParameters<Result>(_ body: (UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<UnsafePointer<CChar>?>) -> Result) -> Result {
        let parameters = parameters
        let keywords = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: parameters.count + 1)
        let values = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: parameters.count + 1)
        var count = 0
        defer {
            for index in 0..<count { free(UnsafeMutableRawPointer(mutating: values[index])) }
            keywords.deallocate()
            values.deallocate()
        }
        for parameter in parameters {
            guard let value = parameter.value else { continue }
            keywords[count] = UnsafeRawPointer(parameter.keyword.utf8Start).assumingMemoryBound(to: CChar.self)
            values[count] = UnsafePointer(strdup(value))
            count += 1
        }
        keywords[count] = nil
        values[count] = nil
        return body(keywords, values)
    }
}
