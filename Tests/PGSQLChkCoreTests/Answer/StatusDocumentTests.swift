import Testing
@testable import PGSQLChkCore

@Suite("Status document")
struct StatusDocumentTests {
    static let standby = NodeState(inRecovery: true, serverVersion: "15.18", timeline: 3, receivedPosition: "0/3000148",
                                   replayedPosition: "0/3000060", primaryPosition: "0/3000200", behindPrimaryBytes: 416,
                                   replayBacklogBytes: 232, replayDelay: Milliseconds(1_500), replayPaused: true,
                                   receiver: .running(status: "streaming", silence: Milliseconds(250)))

    @Test("the human line names role, timeline and version, then what matters for a standby", arguments: [
        (Verdict(answer: .serves(weight: 100), body: "primary", state: NodeState(inRecovery: false, serverVersion: "15.18", timeline: 3)),
         "primary, timeline 3, PostgreSQL 15.18"),
        (Verdict(answer: .servesReads(weight: 100), body: "standby", state: standby),
         "standby, timeline 3, PostgreSQL 15.18, lag 416 bytes, WAL receiver streaming, replay paused"),
        (Verdict(answer: .drained, body: "maintenance", state: NodeState(inRecovery: false), drain: .present),
         "primary, maintenance"),
        (Verdict(answer: .serves(weight: 100), body: "primary", state: NodeState(inRecovery: false),
                 drain: .unreadable(reason: "drain file /x cannot be checked: Permission denied")),
         "primary, drain file /x cannot be checked: Permission denied"),
        (Verdict(unavailable: "too many connections"), "unavailable: too many connections"),
    ])
    func summary(verdict: Verdict, line: String) {
        #expect(StatusDocument.summary(of: verdict) == line)
    }

    @Test("the JSON document carries every signal, unknowns as null")
    func json() {
        let verdict = Verdict(answer: .servesReads(weight: 100), body: "standby", state: Self.standby)
        #expect(StatusDocument.json(of: verdict) == """
            {"status": 206, "role": "standby", "in_recovery": true, "timeline": 3, "server_version": "15.18", \
            "wal_position": null, "received_position": "0/3000148", "replayed_position": "0/3000060", "primary_position": "0/3000200", \
            "lag_bytes": 416, "replay_backlog_bytes": 232, \
            "replay_delay_seconds": 1.5, "replay_paused": true, "receiver_state": "streaming", "receiver_silence_seconds": 0.25, \
            "maintenance": false, "maintenance_problem": null, "age": null, "reason": null}
            """)
    }

    @Test("a failure's JSON has an unknown role and the reason, escaped")
    func failureJSON() {
        let json = StatusDocument.json(of: Verdict(unavailable: "odd \"quote\"\n"))
        #expect(json.hasPrefix("{\"status\": 503, \"role\": \"unknown\", \"in_recovery\": null,"))
        #expect(json.hasSuffix("\"maintenance\": false, \"maintenance_problem\": null, \"age\": null, \"reason\": \"odd \\\"quote\\\"\\n\"}"))
    }

    @Test("an unreadable drain file is unknown maintenance, with the problem named")
    func unreadableDrainJSON() {
        let verdict = Verdict(answer: .serves(weight: 100), body: "primary", state: NodeState(inRecovery: false),
                              drain: .unreadable(reason: "drain file /x cannot be checked: Permission denied"))
        #expect(StatusDocument.json(of: verdict).hasSuffix(
            "\"maintenance\": null, \"maintenance_problem\": \"drain file /x cannot be checked: Permission denied\", \"age\": null, \"reason\": null}"))
    }
}
