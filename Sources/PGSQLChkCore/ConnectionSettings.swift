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

    /// One keyword/value pair for libpq.
    private struct Parameter {
        let keyword: StaticString
        let value: String?
    }

    /// The pairs in psql's order: `dbname` comes after `host`, `port` and
    /// `user`, so a conninfo string given with `-d` overrides them, as it does
    /// for `psql -d`. Then the fallback name.
    private var parameters: [Parameter] {
        [
            Parameter(keyword: "host", value: host),
            Parameter(keyword: "port", value: port),
            Parameter(keyword: "user", value: user),
            Parameter(keyword: "dbname", value: dbname),
            Parameter(keyword: "fallback_application_name", value: Configuration.applicationName),
        ]
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
