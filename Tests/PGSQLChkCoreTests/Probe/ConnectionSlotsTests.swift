import Testing
@testable import PGSQLChkCore

@Suite("The agent's maxconn from the node's connection slots")
struct ConnectionSlotsTests {
    /// The test cluster's shape: 20 slots, 3 for superusers, the check role
    /// limited to 5, the client role `app` to 12; nobody else connected.
    static let idle = ConnectionSlots(maxConnections: 20, superuserReservedConnections: 3, reservedConnections: 0, checkRoleLimit: 5,
                                      clientSessions: 0, clientRoleLimit: 12, clientRoleSessions: 0)

    static func slots(_ change: (inout ConnectionSlots) -> Void) -> ConnectionSlots {
        var slots = idle
        change(&slots)
        return slots
    }

    static let auto = MaxconnRequest()
    static let app = MaxconnRequest(clientRole: "app")
    static let notVisible = Maxconn.withheld(reason: "other sessions' addresses not visible to the monitoring role (grant pg_monitor)")

    @Test("max_connections minus the reserved, the check slots and others' sessions; capped by the client role; at least 1", arguments: [
        (idle, auto, Maxconn.advertised(12)),
        (slots { $0.clientSessions = 4 }, auto, .advertised(8)),
        (slots { $0.reservedConnections = 2 }, auto, .advertised(10)),
        (idle, MaxconnRequest(checkSlots: 2), .advertised(15)),
        (idle, MaxconnRequest(checkSlots: 0), .advertised(17)),
        (slots { $0.clientRoleLimit = 10 }, app, .advertised(10)),
        (slots { $0.clientRoleLimit = 10; $0.clientRoleSessions = 7 }, app, .advertised(3)),
        (slots { $0.clientRoleLimit = -1 }, app, .advertised(12)),
        (slots { $0.clientRoleLimit = 40 }, app, .advertised(12)),
        (slots { $0.clientSessions = 12 }, auto, .advertised(1)),
        (slots { $0.clientSessions = 30 }, auto, .advertised(1)),
        (slots { $0.clientRoleSessions = 12 }, app, .advertised(1)),
    ] as [(ConnectionSlots, MaxconnRequest, Maxconn)])
    func arithmetic(slots: ConnectionSlots, request: MaxconnRequest, maxconn: Maxconn) {
        #expect(slots.maxconn(for: request) == maxconn)
    }

    /// Sessions from two HAProxies, 192.0.2.10 (3, 2 of them app's) and
    /// 2001:db8::10 (4, all app's), and 1 more of app's over the unix socket.
    static let busy = slots {
        $0.clientSessions = 8
        $0.clientRoleSessions = 7
        $0.byAddress = [AddressSessions(address: "192.0.2.10", sessions: 3, clientRoleSessions: 2),
                        AddressSessions(address: "2001:db8::10", sessions: 4, clientRoleSessions: 4)]
    }

    @Test("each HAProxy's own sessions are counted back in, whatever the spelling of its address; one probe serves them all", arguments: [
        ("192.0.2.10", Maxconn.advertised(7)),
        ("::ffff:192.0.2.10", .advertised(7)),
        ("2001:db8:0::10", .advertised(8)),
        ("2001:DB8::10", .advertised(8)),
        ("192.0.2.99", .advertised(4)),
    ] as [(String, Maxconn)])
    func ownSessionsCountedBackIn(asker: String, maxconn: Maxconn) {
        #expect(Self.busy.maxconn(for: MaxconnRequest(askerAddress: asker)) == maxconn)
    }

    @Test("the client role's cap counts that role's sessions from elsewhere only")
    func clientRoleFromElsewhere() {
        // app 12: elsewhere are 4 from 2001:db8::10 and 1 over the socket.
        #expect(Self.busy.maxconn(for: MaxconnRequest(clientRole: "app", askerAddress: "192.0.2.10")) == .advertised(7))
        #expect(Self.slots { $0.clientSessions = 8; $0.clientRoleSessions = 7; $0.clientRoleLimit = 8
                             $0.byAddress = Self.busy.byAddress }
            .maxconn(for: MaxconnRequest(clientRole: "app", askerAddress: "192.0.2.10")) == .advertised(3))
    }

    @Test("what is unknown is never advertised, and the reason says what to fix", arguments: [
        (slots { $0.clientSessions = nil }, auto, notVisible),
        (slots { $0.clientRoleSessions = nil }, app, notVisible),
        (slots { $0.checkRoleLimit = -1 }, auto,
         Maxconn.withheld(reason: "the check role has no CONNECTION LIMIT to keep slots for; set one or send check_slots=")),
        (slots { $0.clientRoleLimit = nil }, app, .withheld(reason: "no role \"app\"")),
    ] as [(ConnectionSlots, MaxconnRequest, Maxconn)])
    func withheld(slots: ConnectionSlots, request: MaxconnRequest, maxconn: Maxconn) {
        #expect(slots.maxconn(for: request) == maxconn)
    }

    @Test("an unlimited check role is fine when check_slots says how many to keep")
    func checkSlotsWithoutRoleLimit() {
        #expect(Self.slots { $0.checkRoleLimit = -1 }.maxconn(for: MaxconnRequest(checkSlots: 4)) == .advertised(13))
    }
}
