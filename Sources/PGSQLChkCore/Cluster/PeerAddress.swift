/// One entry of `--peers`: a node of the cluster, reached with the local
/// connection settings with only `host` and `port` replaced.
///
/// Written `HOST[:PORT]`; an IPv6 address in brackets, `[ADDR]:PORT`. Without
/// a port the local `-p` (or libpq's default) applies.
struct PeerAddress: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Host name, address or socket directory (libpq: `host`).
    var host: String
    /// Port (libpq: `port`); nil keeps the local setting.
    var port: String?

    /// The most peers one check asks: each costs a connection per check on
    /// the primary, and a cluster larger than this wants a consensus store.
    static let maximumCount = 16

    /// What `--peers` accepts, for its usage error.
    static let accepted = "HOST[:PORT] entries separated by commas (IPv6 as [ADDR]:PORT), at most \(maximumCount)"

    /// `host:port` as the list names it, IPv6 in brackets: how reasons and
    /// `/status` name the peer.
    var description: String {
        let shown = host.contains(":") ? "[\(host)]" : host
        return port.map { "\(shown):\($0)" } ?? shown
    }

    /// Parses one entry; nil when it is not `HOST[:PORT]` or `[ADDR][:PORT]`.
    init?(_ text: Substring) {
        var rest: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            rest = text[text.index(after: close)...]
            guard rest.isEmpty || rest.hasPrefix(":") else { return nil }
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            rest = text[colon...]
            // An unbracketed IPv6 address would be split at its last group.
            guard !host.contains(":") else { return nil }
        } else {
            host = String(text)
            rest = ""
        }
        if rest.hasPrefix(":") {
            let digits = rest.dropFirst()
            guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy(\.isASCIIDigit),
                  let number = Int(digits), (1...65_535).contains(number) else { return nil }
            port = String(digits)
        } else {
            port = nil
        }
        guard !host.isEmpty, host.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f && $0 != "," }) else { return nil }
    }

    init(host: String, port: String?) {
        self.host = host
        self.port = port
    }

    /// Parses a whole `--peers` value; nil when any entry is malformed, an
    /// entry is repeated, or there are more than ``maximumCount``.
    static func list(_ text: String) -> [PeerAddress]? {
        var peers: [PeerAddress] = []
        for entry in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let peer = PeerAddress(entry), !peers.contains(peer) else { return nil }
            peers.append(peer)
        }
        return peers.count <= maximumCount ? peers : nil
    }
}
