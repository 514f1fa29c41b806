/// What HAProxy thinks of this server, as `http-check send-state` tells every
/// check in the `X-Haproxy-Server-State` header.
///
/// HAProxy 2.6 writes it in `httpchk_build_status_header()` (src/check.c):
/// the state, then `; `-separated `name=value` fields:
///
///     UP 2/3; address=192.0.2.22; port=5432; name=pg_readonly_standbys/pg2; node=lb1; weight=100/200; scur=0/4; qcur=0
///
/// The state is `UP`, `DOWN`, `NOLB` (draining after a 404) or `no check`;
/// `UP n/m` and `NOLB n/m` are going down (n of m more failures tolerated),
/// `DOWN n/m` going up (n of m successes so far; n may exceed m while the
/// agent holds DOWN a server its check finds healthy). `weight=w/t` is this
/// server's effective weight and the sum over the backend's usable servers.
/// Fields this check does not use (address, port, node, scur, qcur,
/// throttle) are skipped, so a later HAProxy that adds one still parses.
struct HAProxyServerState: Equatable, Sendable {
    /// The header's name, as HAProxy's manual spells it; 2.6 sends it in
    /// lower case (measured), and header names compare case-insensitively.
    static let headerName = "X-Haproxy-Server-State"

    /// HAProxy's view of the server, from its health check.
    enum Health: Equatable, Sendable {
        /// `UP`: routed to, every recent check passed.
        case up
        /// `UP n/m`: still routed to, but a check failed.
        case goingDown
        /// `NOLB` or `NOLB n/m`: draining (`disable-on-404`): no new sessions, existing ones kept.
        case draining
        /// `DOWN`: not routed to.
        case down
        /// `DOWN n/m`: not routed to yet, but a check passed.
        case goingUp
        /// `no check`: HAProxy runs no health check on it.
        case unchecked
    }

    var health: Health
    /// `name=backend/server`.
    var backend: String?
    var server: String?
    /// `weight=w/t`: this server's effective weight, and the total of the
    /// backend's usable servers (this one included while it is usable).
    var weight: Int?
    var totalWeight: Int?

    /// Whether HAProxy has the server in rotation (or draining it), so that a
    /// standby limit applies as it is; false while it is out, so that the
    /// lower rejoin threshold applies; nil when HAProxy does not check it.
    var inRotation: Bool? {
        switch health {
        case .up, .goingDown, .draining: true
        case .down, .goingUp: false
        case .unchecked: nil
        }
    }

    /// Whether this server is UP and carries all of its backend's weight:
    /// no other server there would take a session if this one went DOWN.
    /// (A draining server takes no new sessions, so it is never the last.)
    var isOnlyUsableServer: Bool {
        guard health == .up || health == .goingDown, let weight, let totalWeight else { return false }
        return weight > 0 && weight == totalWeight
    }

    /// `pg_readonly_standbys/pg2`; `its backend` when the header named none.
    var displayName: String {
        guard let backend, let server else { return "its backend" }
        return "\(backend)/\(server)"
    }

}

extension HAProxyServerState {
    /// Parses a header value; nil when it is not in HAProxy's format (an
    /// unknown state, a field without `=`, a `weight=` that is not `w/t`).
    init?(header value: Substring) {
        let fields = value.split(separator: ";").map { $0.drop { $0 == " " } }
        guard let stateText = fields.first, let health = Self.health(stateText) else { return nil }
        self.health = health
        for field in fields.dropFirst() {
            guard let equals = field.firstIndex(of: "="), equals != field.startIndex else { return nil }
            let value = field[field.index(after: equals)...]
            switch field[..<equals] {
            case "name":
                let parts = value.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
                (backend, server) = (String(parts[0]), String(parts[1]))
            case "weight":
                guard let (weight, total) = Self.ratio(value) else { return nil }
                (self.weight, totalWeight) = (weight, total)
            default:
                continue
            }
        }
    }

    /// `UP`, `UP 2/3`, `DOWN 1/2`, `NOLB`, `no check`; nil for anything else.
    private static func health(_ text: Substring) -> Health? {
        if text == "no check" { return .unchecked }
        let words = text.split(separator: " ", omittingEmptySubsequences: false)
        guard words.count == 1 || words.count == 2 && ratio(words[1]) != nil else { return nil }
        let transitional = words.count == 2
        switch words[0] {
        case "UP": return transitional ? .goingDown : .up
        case "DOWN": return transitional ? .goingUp : .down
        case "NOLB": return .draining
        default: return nil
        }
    }

    /// `3/4` as (3, 4): two non-negative decimal numbers.
    private static func ratio(_ text: Substring) -> (Int, Int)? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.count <= 9 && $0.allSatisfy(\.isASCIIDigit) }),
              let first = Int(parts[0]), let second = Int(parts[1])
        else { return nil }
        return (first, second)
    }
}
