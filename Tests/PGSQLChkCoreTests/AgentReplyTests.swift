import Testing
@testable import PGSQLChkCore

@Suite("HAProxy agent replies")
struct AgentReplyTests {
    static let limit = StandbyRequirements(maximumLagBytes: 100 << 20)

    @Test("each state gets one line HAProxy's agent-check understands", arguments: [
        (Result<NodeState, ProbeFailure>.success(NodeState(inRecovery: false)), false, StandbyRequirements(), "ready up 100%\n"),
        (.success(NodeState(inRecovery: true, lagBytes: 0)), false, limit, "ready up 100%\n"),
        (.success(NodeState(inRecovery: true, lagBytes: 50 << 20)), false, limit, "ready up 55%\n"),
        (.success(NodeState(inRecovery: true, lagBytes: 100 << 20)), false, limit, "ready up 10%\n"),
        (.success(NodeState(inRecovery: true, lagBytes: 101 << 20)), false, limit, "down#replication lag 101 MB exceeds maximum 100 MB\n"),
        (.success(NodeState(inRecovery: true, lagBytes: 1 << 40)), false, StandbyRequirements(), "ready up 100%\n"),
        (.failure(.noResponse(detail: "x")), false, limit, "down#no response from server\n"),
        (.success(NodeState(inRecovery: false)), true, limit, "drain\n"),
        (.failure(.timedOut(phase: "querying")), true, limit, "drain\n"),
    ] as [(Result<NodeState, ProbeFailure>, Bool, StandbyRequirements, String)])
    func replies(outcome: Result<NodeState, ProbeFailure>, maintenance: Bool, requirements: StandbyRequirements, line: String) {
        #expect(AgentReply.line(outcome: outcome, maintenance: maintenance, requirements: requirements) == line)
    }

    @Test("agent-send reads as query parameters over the defaults", arguments: [
        ("", StandbyRequirements(maximumLagBytes: 7)),
        ("\n", StandbyRequirements(maximumLagBytes: 7)),
        ("lag=16MB\n", StandbyRequirements(maximumLagBytes: 16 << 20)),
        ("replication_state=streaming\r\n", StandbyRequirements(maximumLagBytes: 7, requiresStreaming: true)),
    ])
    func agentSend(line: String, requirements: StandbyRequirements) throws {
        let parsed = try AgentReply.requirements(fromAgentSend: Array(line.utf8), defaults: StandbyRequirements(maximumLagBytes: 7))
        #expect(parsed == requirements)
    }

    @Test("a bad agent-send takes the server down with the reason, never passes silently")
    func badAgentSend() {
        #expect(throws: RequestError(.badRequest, "invalid lag \"lots\": expected bytes such as 1048576, 16MB or 1GB")) {
            try AgentReply.requirements(fromAgentSend: Array("lag=lots\n".utf8), defaults: StandbyRequirements())
        }
        #expect(AgentReply.line(refusing: RequestError(.badRequest, "why")) == "down#agent-send: why\n")
    }
}

@Suite("Status document")
struct StatusDocumentTests {
    static let standby = NodeState(inRecovery: true, serverVersion: "15.18", timeline: 3, receivedPosition: "0/3000148",
                                   replayedPosition: "0/3000060", lagBytes: 232, replayDelay: Milliseconds(1_500), replayPaused: true,
                                   receiver: .running(status: "streaming", silence: Milliseconds(250)))

    @Test("the human line names role, timeline and version, then what matters for a standby", arguments: [
        (Verdict(status: .ok, body: "primary", exitStatus: 0, state: NodeState(inRecovery: false, serverVersion: "15.18", timeline: 3)),
         "primary, timeline 3, PostgreSQL 15.18"),
        (Verdict(status: .partialContent, body: "standby", exitStatus: 1, state: standby),
         "standby, timeline 3, PostgreSQL 15.18, lag 232 bytes, WAL receiver streaming, replay paused"),
        (Verdict(status: .notFound, body: "maintenance", exitStatus: 3, state: NodeState(inRecovery: false), maintenance: true),
         "primary, maintenance"),
        (Verdict(unavailable: "too many connections"), "unavailable: too many connections"),
    ])
    func summary(verdict: Verdict, line: String) {
        #expect(StatusDocument.summary(of: verdict) == line)
    }

    @Test("the JSON document carries every signal, unknowns as null")
    func json() {
        let verdict = Verdict(status: .partialContent, body: "standby", exitStatus: 1, state: Self.standby)
        #expect(StatusDocument.json(of: verdict) == """
            {"status": 206, "role": "standby", "in_recovery": true, "timeline": 3, "server_version": "15.18", \
            "wal_position": null, "received_position": "0/3000148", "replayed_position": "0/3000060", "lag_bytes": 232, \
            "replay_delay_seconds": 1.5, "replay_paused": true, "receiver_state": "streaming", "receiver_silence_seconds": 0.25, \
            "maintenance": false, "reason": null}
            """)
    }

    @Test("a failure's JSON has an unknown role and the reason, escaped")
    func failureJSON() {
        let json = StatusDocument.json(of: Verdict(unavailable: "odd \"quote\"\n"))
        #expect(json.hasPrefix("{\"status\": 503, \"role\": \"unknown\", \"in_recovery\": null,"))
        #expect(json.hasSuffix("\"maintenance\": false, \"reason\": \"odd \\\"quote\\\"\\n\"}"))
    }
}
