import Testing
@testable import PGSQLChkCore

@Suite("The agent's maxconn from the node's connection slots")
struct ConnectionSlotsTests {
    /// The test cluster's shape: 20 slots, 3 for superusers, the check role
    /// limited to 5, the client role `app` to 12; nobody else connected.
    static let idle = ConnectionSlots(maxConnections: 20, superuserReservedConnections: 3, reservedConnections: 0, checkRoleLimit: 5,
                                      sessionsElsewhere: 0, clientRoleLimit: 12, clientRoleElsewhere: 0)

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
        (slots { $0.sessionsElsewhere = 4 }, auto, .advertised(8)),
        (slots { $0.reservedConnections = 2 }, auto, .advertised(10)),
        (idle, MaxconnRequest(checkSlots: 2), .advertised(15)),
        (idle, MaxconnRequest(checkSlots: 0), .advertised(17)),
        (slots { $0.clientRoleLimit = 10 }, app, .advertised(10)),
        (slots { $0.clientRoleLimit = 10; $0.clientRoleElsewhere = 7 }, app, .advertised(3)),
        (slots { $0.clientRoleLimit = -1 }, app, .advertised(12)),
        (slots { $0.clientRoleLimit = 40 }, app, .advertised(12)),
        (slots { $0.sessionsElsewhere = 12 }, auto, .advertised(1)),
        (slots { $0.sessionsElsewhere = 30 }, auto, .advertised(1)),
        (slots { $0.clientRoleElsewhere = 12 }, app, .advertised(1)),
    ] as [(ConnectionSlots, MaxconnRequest, Maxconn)])
    func arithmetic(slots: ConnectionSlots, request: MaxconnRequest, maxconn: Maxconn) {
        #expect(slots.maxconn(for: request) == maxconn)
    }

    @Test("this HAProxy's own sessions do not lower its maxconn: the same value whether it holds none or all of it")
    func ownSessionsCountedBackIn() {
        // The probe counts only sessions from elsewhere: this HAProxy's own
        // never appear in the slots, however many it holds.
        #expect(Self.idle.maxconn(for: MaxconnRequest(peer: "192.0.2.10")) == Self.idle.maxconn(for: MaxconnRequest(peer: "192.0.2.11")))
    }

    @Test("what is unknown is never advertised, and the reason says what to fix", arguments: [
        (slots { $0.sessionsElsewhere = nil }, auto, notVisible),
        (slots { $0.clientRoleElsewhere = nil }, app, notVisible),
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
