import Testing
@testable import PGSQLChkCore

@Suite("Role probe answer")
struct RoleProbeTests {
    static let names = RoleProbe.Column.allCases.map(\.rawValue)

    /// A row as the replication statement returns it, by column name.
    static func row(_ values: [RoleProbe.Column: String]) -> QueryRow {
        QueryRow(statement: .replication, columns: names, values: RoleProbe.Column.allCases.map { values[$0] })
    }

    static let standby: [RoleProbe.Column: String] = [
        .inRecovery: "t", .replayPaused: "f", .receivedPosition: "0/3000148", .replayedPosition: "0/3000060", .replayBacklog: "232", .primaryPosition: "0/3000200", .behindPrimary: "416",
        .receiverTimeout: "60000",
        .replayDelay: "1500", .receiverVisible: "t", .receiverStatus: "streaming", .receiverSilence: "250", .timeline: "3",
    ]

    @Test("a standby's row reads into every signal")
    func standbyRow() throws {
        let state = try RoleProbe.nodeState(from: Self.row(Self.standby), serverVersion: "15.18")
        #expect(state == NodeState(inRecovery: true, serverVersion: "15.18", timeline: 3, receivedPosition: "0/3000148",
                                   replayedPosition: "0/3000060", primaryPosition: "0/3000200",
                                   behindPrimaryBytes: 416, receiverTimeout: Milliseconds(60_000), replayBacklogBytes: 232, replayDelay: Milliseconds(1_500), replayPaused: false,
                                   receiver: .running(status: "streaming", silence: Milliseconds(250))))
    }

    @Test("a primary's row has no standby signals")
    func primaryRow() throws {
        let row = Self.row([.inRecovery: "f", .walPosition: "0/5000000", .receiverVisible: "f", .timeline: "2"])
        let state = try RoleProbe.nodeState(from: row, serverVersion: "16.4")
        #expect(state == NodeState(inRecovery: false, serverVersion: "16.4", timeline: 2, walPosition: "0/5000000"))
    }

    @Test("columns are read by name, whatever their order")
    func columnOrder() throws {
        let row = Self.row(Self.standby)
        let reversed = QueryRow(statement: row.statement, columns: row.columns.reversed(), values: row.values.reversed())
        #expect(try RoleProbe.nodeState(from: reversed, serverVersion: "") == RoleProbe.nodeState(from: row, serverVersion: ""))
    }

    @Test("the receiver is unknown without pg_read_all_stats, stopped when no row says otherwise", arguments: [
        ("f", Optional<String>.none, WALReceiver.notVisible),
        ("t", nil, .stopped),
        ("t", "waiting", .running(status: "waiting", silence: Milliseconds(250))),
    ])
    func receiver(visible: String, status: String?, receiver: WALReceiver) throws {
        var values = Self.standby
        values[.receiverVisible] = visible
        values[.receiverStatus] = status
        #expect(try RoleProbe.nodeState(from: Self.row(values), serverVersion: "").receiver == receiver)
    }

    @Test("anything but t or f in the role column is a query failure, never a role", arguments: ["true", "x", ""] as [String])
    func unexpectedRole(value: String) {
        var values = Self.standby
        values[.inRecovery] = value
        #expect(throws: ProbeFailure.self) { try RoleProbe.nodeState(from: Self.row(values), serverVersion: "") }
    }

    @Test("a missing column is a query failure that names it", arguments: RoleProbe.Column.allCases)
    func missingColumn(column: RoleProbe.Column) {
        let row = Self.row(Self.standby)
        let kept = row.columns.indices.filter { row.columns[$0] != column.rawValue }
        let error = #expect(throws: ProbeFailure.self) {
            try RoleProbe.nodeState(from: QueryRow(statement: .replication, columns: kept.map { row.columns[$0] }, values: kept.map { row.values[$0] }), serverVersion: "")
        }
        #expect(error == .queryFailed(.replication, detail: "the statement returned no column \(column.rawValue)"))
    }

    @Test("the replication statement names every column the probe reads", arguments: RoleProbe.Column.allCases)
    func statementNamesColumn(column: RoleProbe.Column) {
        let named = column == .inRecovery ? "SELECT s.in_recovery," : "AS \(column.rawValue)"
        #expect(Statement.replication.sql.containsText(named))
    }

    @Test("the slots statement asks everything the replication statement does, and names every column the slots are read from",
          arguments: RoleProbe.SlotsColumn.allCases)
    func slotsStatementNamesColumn(column: RoleProbe.SlotsColumn) {
        #expect(Statement.connectionSlots.sql.containsText("AS \(column.rawValue)"))
        #expect(RoleProbe.Column.allCases.allSatisfy { Statement.connectionSlots.sql.containsText($0 == .inRecovery ? "SELECT s.in_recovery," : "AS \($0.rawValue)") })
    }

    static let slotsNames = RoleProbe.SlotsColumn.allCases.map(\.rawValue)

    @Test("the slots columns read by name; the counts and the client role's limit may be NULL, the settings may not", arguments: [
        (["20", "3", "0", "14", "5", "12", "4", "127.0.0.1 3 3,::1 2 1"],
         Optional(ConnectionSlots(maxConnections: 20, superuserReservedConnections: 3, reservedConnections: 0, checkRoleLimit: 14,
                                  clientSessions: 5, clientRoleLimit: 12, clientRoleSessions: 4,
                                  byAddress: [AddressSessions(address: "127.0.0.1", sessions: 3, clientRoleSessions: 3),
                                              AddressSessions(address: "::1", sessions: 2, clientRoleSessions: 1)]))),
        (["100", "3", "2", "-1", nil, nil, nil, nil], ConnectionSlots(maxConnections: 100, superuserReservedConnections: 3, reservedConnections: 2, checkRoleLimit: -1)),
        ([nil, "3", "0", "14", "2", "12", "1", nil], nil),
        (["20", "3", "0", "lots", "2", "12", "1", nil], nil),
        (["20", "3", "0", "14", "2", "12", "1", "127.0.0.1 two 1"], nil),
    ] as [([String?], ConnectionSlots?)])
    func slotsRow(values: [String?], slots: ConnectionSlots?) throws {
        let row = QueryRow(statement: .connectionSlots, columns: Self.slotsNames.reversed(), values: values.reversed())
        if let slots {
            #expect(try RoleProbe.connectionSlots(from: row) == slots)
        } else {
            #expect(throws: ProbeFailure.self) { try RoleProbe.connectionSlots(from: row) }
        }
    }
}
