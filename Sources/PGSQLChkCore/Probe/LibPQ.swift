import CLibPQTable

/// libpq's functions, from the table `CLibPQTable` fills with `dlopen` and
/// `dlsym` on the first probe.
///
/// Nothing links libpq: a check answered from the result cache never maps it
/// or the ~23 libraries it needs, which were most of a check's start-up
/// (README, "Start-up cost"). ``PostgresConnection`` is the only caller.
typealias LibPQ = pgsqlchk_libpq

extension LibPQ {
    /// The loaded table; a ``ProbeFailure/libraryMissing(detail:)`` when
    /// `libpq.so.5` or one of its functions cannot be found.
    /// (C: `dlopen`, `dlsym`.)
    static func load() throws(ProbeFailure) -> UnsafePointer<LibPQ> {
        var error: UnsafePointer<CChar>?
        guard let table = pgsqlchk_libpq_load(&error) else {
            throw .libraryMissing(detail: error.map { Text.oneLine(String(cString: $0)) } ?? "dlopen failed")
        }
        return table
    }
}
