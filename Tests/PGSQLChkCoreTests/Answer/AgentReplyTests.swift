import Testing
@testable import PGSQLChkCore

@Suite("HAProxy agent replies")
struct AgentReplyTests {
    static let limit = StandbyRequirements(maximumLagBytes: 100 << 20)

    @Test("each state gets the line HAProxy's agent-check understands, from the /read-only verdict", arguments: [
        (Result<NodeState, ProbeFailure>.success(NodeState(inRecovery: false)), false, StandbyRequirements(), "ready up 100%\n"),
        (.success(NodeState.standby(lag: 0)), false, limit, "ready up 100%\n"),
        (.success(NodeState.standby(lag: 50 << 20)), false, limit, "ready up 55%\n"),
        (.success(NodeState.standby(lag: 100 << 20)), false, limit, "ready up 10%\n"),
        (.success(NodeState.standby(lag: 101 << 20)), false, limit, "down #replication lag 101 MB exceeds maximum 100 MB\n"),
        (.success(NodeState.standby(lag: 1 << 40)), false, StandbyRequirements(), "ready up 100%\n"),
        (.failure(.noResponse(detail: "x")), false, limit, "down #no response from server\n"),
        (.success(NodeState(inRecovery: false)), true, limit, "drain\n"),
        (.failure(.timedOut(phase: .querying)), true, limit, "drain\n"),
    ] as [(Result<NodeState, ProbeFailure>, Bool, StandbyRequirements, String)])
    func replies(outcome: Result<NodeState, ProbeFailure>, maintenance: Bool, requirements: StandbyRequirements, line: String) {
        let request = CheckRequest(endpoint: .readOnly, requirements: requirements)
        let verdict = Verdict(for: request, outcome: outcome, drain: maintenance ? .present : .absent)
        #expect(AgentReply.line(for: verdict) == line)
    }

    static let keeping = StandbyRequirements(maximumLagBytes: 100 << 20, keepsLastStandby: true)

    @Test("with keep_last_standby=1 a lag-only shortfall gets the minimum weight, leaving UP and DOWN to the HTTP check", arguments: [
        (NodeState.standby(lag: 101 << 20), keeping, "ready up 10%\n"),
        (.standby(lag: 101 << 20), limit, "down #replication lag 101 MB exceeds maximum 100 MB\n"),
        (.standby(lag: 50 << 20), keeping, "ready up 55%\n"),
        (NodeState(inRecovery: true, behindPrimaryBytes: 101 << 20, receiver: .stopped), keeping,
         "down #replication lag unknown (WAL receiver not running)\n"),
        (NodeState(inRecovery: true, replayDelay: Milliseconds(40_000), receiver: .stopped),
         StandbyRequirements(maximumReplayDelay: Milliseconds(30_000), keepsLastStandby: true), "down #replay delay 40s exceeds maximum 30s\n"),
        (NodeState(inRecovery: true, behindPrimaryBytes: 0, replayDelay: Milliseconds(40_000), receiver: .running(status: "streaming", silence: nil)),
         StandbyRequirements(maximumReplayDelay: Milliseconds(30_000), keepsLastStandby: true), "ready up 10%\n"),
    ] as [(NodeState, StandbyRequirements, String)])
    func keepLastStandby(state: NodeState, requirements: StandbyRequirements, line: String) {
        let request = CheckRequest(endpoint: .readOnly, requirements: requirements)
        let verdict = Verdict(for: request, outcome: .success(state), drain: .absent)
        #expect(AgentReply.line(for: verdict) == line)
    }

    @Test("the weight falls linearly with lag to a floor of 10%, and only for a standby with a limit", arguments: [
        (NodeState.standby(lag: 0), limit, Int64(100)),
        (NodeState.standby(lag: 25 << 20), limit, 78),
        (NodeState.standby(lag: 100 << 20), limit, 10),
        (NodeState.standby(lag: 500 << 20), limit, 10),
        (NodeState(inRecovery: true), limit, 100),
        (NodeState(inRecovery: false, behindPrimaryBytes: 90 << 20), limit, 100),
        (NodeState.standby(lag: 90 << 20), StandbyRequirements(), 100),
    ] as [(NodeState, StandbyRequirements, Int64)])
    func weight(state: NodeState, requirements: StandbyRequirements, percent: Int64) {
        #expect(Verdict.weightPercent(of: state, requirements: requirements) == percent)
    }

    static let slots = ConnectionSlots(maxConnections: 20, superuserReservedConnections: 3, reservedConnections: 0, checkRoleLimit: 5,
                                       clientSessions: 5, clientRoleLimit: nil, clientRoleSessions: 0,
                                       byAddress: [AddressSessions(address: "127.0.0.1", sessions: 3, clientRoleSessions: 0)])

    @Test("maxconn=auto adds maxconn:N to ready and drain, never to down, and leaves it out when unknown", arguments: [
        (NodeState(inRecovery: false, connectionSlots: slots), false, "ready up 100% maxconn:10\n"),
        (NodeState(inRecovery: false, connectionSlots: slots), true, "drain maxconn:10\n"),
        (NodeState(inRecovery: false), false, "ready up 100%\n"),
        (NodeState(inRecovery: false, connectionSlots: ConnectionSlots(maxConnections: 20, superuserReservedConnections: 3, reservedConnections: 0,
                                                                       checkRoleLimit: 5, clientSessions: nil)), false, "ready up 100%\n"),
        (NodeState.standby(lag: 101 << 20), false, "down #replication lag 101 MB exceeds maximum 100 MB\n"),
    ] as [(NodeState, Bool, String)])
    func maxconn(state: NodeState, maintenance: Bool, line: String) {
        var withSlots = state
        if withSlots.inRecovery { withSlots.connectionSlots = Self.slots }
        let request = CheckRequest(endpoint: .readOnly, requirements: Self.limit, maxconn: MaxconnRequest(askerAddress: "127.0.0.1"))
        let verdict = Verdict(for: request, outcome: .success(withSlots), drain: maintenance ? .present : .absent)
        #expect(AgentReply.line(for: verdict) == line)
    }

    @Test("maxconn=only answers maxconn:N alone, or an empty line, and never up, down or drain: the HTTP check keeps those", arguments: [
        (Result<NodeState, ProbeFailure>.success(NodeState(inRecovery: false, connectionSlots: slots)), false, "maxconn:10\n"),
        (.success(NodeState(inRecovery: false, connectionSlots: slots)), true, "maxconn:10\n"),
        (.success(NodeState(inRecovery: false)), false, "\n"),
        (.failure(.tooManyConnections(detail: "53300")), false, "\n"),
        (.failure(.timedOut(phase: .querying)), true, "\n"),
    ] as [(Result<NodeState, ProbeFailure>, Bool, String)])
    func maxconnOnly(outcome: Result<NodeState, ProbeFailure>, maintenance: Bool, line: String) {
        let request = CheckRequest(endpoint: .readOnly, maxconn: MaxconnRequest(alone: true, askerAddress: "127.0.0.1"))
        let verdict = Verdict(for: request, outcome: outcome, drain: maintenance ? .present : .absent)
        #expect(AgentReply.line(for: verdict) == line)
    }

    @Test("without maxconn=auto no reply carries maxconn, even when the slots are known")
    func maxconnNotAsked() {
        let request = CheckRequest(endpoint: .readOnly)
        let verdict = Verdict(for: request, outcome: .success(NodeState(inRecovery: false, connectionSlots: Self.slots)), drain: .absent)
        #expect(AgentReply.line(for: verdict) == "ready up 100%\n")
    }

    @Test("a refused agent-send takes the server down with the reason, unless it asks maxconn=only, which never moves the server", arguments: [
        ("lag=64\n", "down #agent-send: malformed header line\n"),
        ("maxconn=auto&check_slots=-1\n", "down #agent-send: malformed header line\n"),
        ("maxconn=only&check_slots=-1\n", "\n"),
        ("maxconn_role=&maxconn=only\r\n", "\n"),
        ("maxconn=onlyx\n", "down #agent-send: malformed header line\n"),
    ])
    func refusal(sent: String, line: String) {
        #expect(AgentReply.line(refusing: .malformedHeader, sent: Array(sent.utf8)) == line)
    }
}
