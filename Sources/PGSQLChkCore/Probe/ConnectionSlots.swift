#if canImport(Glibc)
import Glibc
#endif

/// The node's connection slots as the agent's probe counted them
/// (``Statement/connectionSlots``): what the `maxconn` it advertises is made of.
///
/// Numbers are the server's own, a CONNECTION LIMIT of -1 meaning none.
struct ConnectionSlots: Equatable, Sendable {
    /// `max_connections`.
    var maxConnections: Int
    /// `superuser_reserved_connections`.
    var superuserReservedConnections: Int
    /// `reserved_connections`, for roles granted `pg_use_reserved_connections`
    /// (PostgreSQL 16 and later; 0 before, where the setting does not exist).
    var reservedConnections: Int
    /// The CONNECTION LIMIT of the role the check logs in as.
    var checkRoleLimit: Int
    /// Client sessions of every role but the check's; nil when the check
    /// role cannot see other roles' addresses (it lacks `pg_read_all_stats`,
    /// which `pg_monitor` holds), so that they cannot be split by HAProxy.
    var clientSessions: Int?
    /// The CONNECTION LIMIT of the client role that `maxconn_role=` names;
    /// nil when none is named or no such role exists.
    var clientRoleLimit: Int?
    /// That role's client sessions; nil when not visible, as ``clientSessions``.
    var clientRoleSessions: Int?
    /// The same sessions by client address (TCP only): whichever HAProxy
    /// asks finds its own here, so one probe serves every HAProxy.
    var byAddress: [AddressSessions] = []
}

/// The client sessions from one address (`pg_stat_activity.client_addr`).
struct AddressSessions: Equatable, Sendable {
    /// As PostgreSQL's `host()` writes it.
    var address: String
    /// Client sessions of every role but the check's.
    var sessions: Int
    /// Those of the `maxconn_role`.
    var clientRoleSessions: Int

    /// The list the slots statement aggregates: `address sessions
    /// role_sessions` entries separated by commas; nil or empty, none.
    static func list(from text: String?, answering statement: Statement) throws(ProbeFailure) -> [AddressSessions] {
        guard let text, !text.isEmpty else { return [] }
        return try text.split(separator: ",").map { entry throws(ProbeFailure) in
            let fields = entry.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 3, !fields[0].isEmpty, let sessions = Int(fields[1]), let roleSessions = Int(fields[2]) else {
                throw .queryFailed(statement, detail: "malformed sessions_by_address: \(text)")
            }
            return AddressSessions(address: String(fields[0]), sessions: sessions, clientRoleSessions: roleSessions)
        }
    }

    /// Whether `other` names the same address: compared as bytes, an
    /// IPv4-mapped IPv6 address as its IPv4 address, so that no spelling
    /// (`::FFFF:192.0.2.1`, `2001:db8::1` or `2001:0db8:0::1`) hides a match.
    func isAddress(_ other: String) -> Bool {
        guard let mine = Self.bytes(of: address), let theirs = Self.bytes(of: other) else { return false }
        return mine == theirs
    }

    private static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        let mapped = bytes[..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff
        return mapped ? Array(bytes[12...]) : bytes
    }
}

/// What the agent says about `maxconn`: a number, or why it says none (and
/// HAProxy keeps the server's configured `maxconn`).
enum Maxconn: Equatable, Sendable {
    case advertised(Int)
    case withheld(reason: String)
}

extension ConnectionSlots {
    /// The smallest `maxconn` advertised. HAProxy reads 0 as "no limit", so
    /// a node with no slot to spare is advertised 1: one session at a time,
    /// the rest queued in HAProxy.
    static let minimumMaxconn = 1

    /// The most sessions the asking HAProxy may hold on this node so that the
    /// checks still find a slot:
    ///
    ///     max_connections - superuser_reserved_connections - reserved_connections
    ///       - slots kept for the checks (check_slots=, else the check role's CONNECTION LIMIT)
    ///       - client sessions from anywhere but this HAProxy (the check role's excluded)
    ///
    /// and, when `maxconn_role=` names the role HAProxy's clients log in as,
    /// at most that role's CONNECTION LIMIT minus its sessions from elsewhere;
    /// never below ``minimumMaxconn``. This HAProxy's own sessions are not
    /// subtracted: they are what the value limits, so counting them would
    /// halve the capacity it advertises.
    func maxconn(for request: MaxconnRequest) -> Maxconn {
        guard let all = clientSessions else {
            return .withheld(reason: "other sessions' addresses not visible to the monitoring role (grant pg_monitor)")
        }
        let own = request.askerAddress.flatMap { asker in byAddress.first { $0.isAddress(asker) } }
        let elsewhere = all - (own?.sessions ?? 0)
        let kept: Int
        if let checkSlots = request.checkSlots {
            kept = checkSlots
        } else if checkRoleLimit >= 0 {
            kept = checkRoleLimit
        } else {
            return .withheld(reason: "the check role has no CONNECTION LIMIT to keep slots for; set one or send check_slots=")
        }
        var value = maxConnections - superuserReservedConnections - reservedConnections - kept - elsewhere
        if let role = request.clientRole {
            guard let limit = clientRoleLimit else { return .withheld(reason: "no role \(Text.quoted(role))") }
            if limit >= 0 {
                guard let roleSessions = clientRoleSessions else {
                    return .withheld(reason: "other sessions' addresses not visible to the monitoring role (grant pg_monitor)")
                }
                value = min(value, limit - (roleSessions - (own?.clientRoleSessions ?? 0)))
            }
        }
        return .advertised(max(Self.minimumMaxconn, value))
    }
}
