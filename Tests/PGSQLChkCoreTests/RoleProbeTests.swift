import Testing
@testable import PGSQLChkCore

@Suite("Role probe answer")
struct RoleProbeTests {
    static let standbyRow: [String?] = ["t", "f", "0/3000148", "0/3000060", nil, "232", "1500", "t", "streaming", "250", "3"]
    static let primaryRow: [String?] = ["f", nil, nil, nil, "0/5000000", nil, nil, "f", nil, nil, "2"]

    @Test("a standby's row reads into every signal")
    func standby() throws {
        let state = try RoleProbe.nodeState(from: Self.standbyRow, serverVersion: "15.18")
        #expect(state == NodeState(inRecovery: true, serverVersion: "15.18", timeline: 3, receivedPosition: "0/3000148",
                                   replayedPosition: "0/3000060", lagBytes: 232, replayDelay: Milliseconds(1_500), replayPaused: false,
                                   receiver: .running(status: "streaming", silence: Milliseconds(250))))
    }

    @Test("a primary's row has no standby signals")
    func primary() throws {
        let state = try RoleProbe.nodeState(from: Self.primaryRow, serverVersion: "16.4")
        #expect(state == NodeState(inRecovery: false, serverVersion: "16.4", timeline: 2, walPosition: "0/5000000"))
    }

    @Test("the receiver is unknown without pg_read_all_stats, stopped when no row says otherwise", arguments: [
        ("f", Optional<String>.none, WALReceiver.notVisible),
        ("t", nil, .stopped),
        ("t", "waiting", .running(status: "waiting", silence: Milliseconds(250))),
    ])
    func receiver(visible: String, status: String?, receiver: WALReceiver) throws {
        var row = Self.standbyRow
        row[7] = visible
        row[8] = status
        #expect(try RoleProbe.nodeState(from: row, serverVersion: "").receiver == receiver)
    }

    @Test("anything but t or f in the role column is a query failure, never a role", arguments: [
        [], [nil], ["true"], Array(repeating: nil, count: 11), ["x"] + Array(repeating: nil, count: 10),
    ] as [[String?]])
    func unexpectedAnswers(row: [String?]) {
        #expect(throws: ProbeFailure.self) { try RoleProbe.nodeState(from: row, serverVersion: "") }
    }
}
