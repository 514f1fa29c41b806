import CResolver
#if canImport(Glibc)
import Glibc
#endif

/// One peer's host name lookup, running on a thread of its own
/// (`CResolver`), so that ``PeerProbe`` waits for it in its `poll()` loop
/// and gives it up at the deadline: libpq resolves a name synchronously
/// inside `PQconnectStartParams`, where a nameserver that never answers
/// would hold the whole check past its deadline.
///
/// The only owner of its lookup: `deinit` gives it up, finished or not, and
/// the thread frees it when getaddrinfo returns.
final class HostLookup {
    private let lookup: OpaquePointer
    /// The name looked up.
    let host: String

    /// Starts looking `host` up; nil when no thread could be started.
    /// (C: `pthread_create`, `getaddrinfo` on that thread.)
    init?(_ host: String) {
        guard let started = pgsqlchk_lookup_start(host) else { return nil }
        lookup = started
        self.host = host
    }

    deinit {
        pgsqlchk_lookup_abandon(lookup)
    }

    /// Readable once the lookup has finished.
    var descriptor: Int32 { pgsqlchk_lookup_descriptor(lookup) }

    /// The numeric addresses, in getaddrinfo's order, or why there are none;
    /// only once ``descriptor`` is readable.
    func addresses() -> Result<[String], ProbeFailure> {
        var buffer = [CChar](repeating: 0, count: 1_024)
        let status = pgsqlchk_lookup_result(lookup, &buffer, buffer.count)
        guard status == 0 else {
            // libpq's wording, which ConnectionFailureClassifier knows.
            return .failure(.noResponse(detail: "could not translate host name \"\(host)\" to address: \(POSIX.lookupErrorText(status))"))
        }
        let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return .success(text.split(separator: ",").map(String.init))
    }

    /// Whether `host` needs a lookup: neither a socket directory (`/...`,
    /// or `@...` for Linux's abstract namespace) nor a numeric address,
    /// which libpq uses as they are. (C: `inet_pton`.)
    static func isNeeded(for host: String) -> Bool {
        if host.hasPrefix("/") || host.hasPrefix("@") { return false }
        var address = in6_addr()
        return inet_pton(AF_INET, host, &address) != 1 && inet_pton(AF_INET6, host, &address) != 1
    }
}
