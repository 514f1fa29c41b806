/// The node's connection slots as the agent's probe counted them
/// (``RoleProbe/slotsQuery``): what the `maxconn` it advertises is made of.
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
    /// Client sessions of every role but the check's, from every address but
    /// the asking HAProxy's; nil when the check role cannot see other roles'
    /// addresses (it lacks `pg_read_all_stats`, which `pg_monitor` holds).
    var sessionsElsewhere: Int?
    /// The CONNECTION LIMIT of the client role that `maxconn_role=` names;
    /// nil when none is named or no such role exists.
    var clientRoleLimit: Int?
    /// That role's sessions from every address but the asking HAProxy's;
    /// nil when not visible, as ``sessionsElsewhere``.
    var clientRoleElsewhere: Int?
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
        guard let elsewhere = sessionsElsewhere else {
            return .withheld(reason: "other sessions' addresses not visible to the monitoring role (grant pg_monitor)")
        }
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
                guard let roleElsewhere = clientRoleElsewhere else {
                    return .withheld(reason: "other sessions' addresses not visible to the monitoring role (grant pg_monitor)")
                }
                value = min(value, limit - roleElsewhere)
            }
        }
        return .advertised(max(Self.minimumMaxconn, value))
    }
}
