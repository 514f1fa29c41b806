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
        let verdict = Verdict(for: CheckRequest(endpoint: .readOnly, requirements: requirements), outcome: outcome, drain: maintenance ? .present : .absent)
        #expect(AgentReply.line(for: verdict, requirements: requirements) == line)
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
        let verdict = Verdict(for: CheckRequest(endpoint: .readOnly, requirements: requirements), outcome: .success(state), drain: .absent)
        #expect(AgentReply.line(for: verdict, requirements: requirements) == line)
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
        #expect(AgentReply.weightPercent(of: state, requirements: requirements) == percent)
    }

    @Test("a refused agent-send takes the server down with the reason")
    func refusal() {
        #expect(AgentReply.line(refusing: .malformedHeader) == "down #agent-send: malformed header line\n")
    }
}
