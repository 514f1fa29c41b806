import Testing
@testable import PGSQLChkCore

@Suite("Standby requirements")
struct StandbyRequirementsTests {
    static let streaming = WALReceiver.running(status: "streaming", silence: nil)

    @Test("the first unmet requirement is the reason; unknown signals never pass", arguments: [
        (StandbyRequirements(), NodeState(inRecovery: true, receiver: .stopped), nil),
        (StandbyRequirements(requiresStreaming: true), NodeState(inRecovery: true, receiver: streaming), nil),
        (StandbyRequirements(requiresStreaming: true), NodeState(inRecovery: true, receiver: .stopped), "WAL receiver not running"),
        (StandbyRequirements(requiresStreaming: true), NodeState(inRecovery: true, receiver: .running(status: "waiting", silence: nil)),
         "WAL receiver waiting, not streaming"),
        (StandbyRequirements(requiresStreaming: true), NodeState(inRecovery: true, receiver: .notVisible),
         "replication state not visible to the monitoring role (grant pg_monitor)"),
        (StandbyRequirements(maximumLagBytes: 1024), NodeState.standby(lag: 1024), nil),
        (StandbyRequirements(maximumLagBytes: 1024), NodeState.standby(lag: 1025), "replication lag 1025 bytes exceeds maximum 1024 bytes"),
        (StandbyRequirements(maximumLagBytes: 1024), NodeState(inRecovery: true, behindPrimaryBytes: 0, receiver: .stopped),
         "replication lag unknown (WAL receiver not running)"),
        (StandbyRequirements(maximumLagBytes: 1024), NodeState(inRecovery: true, behindPrimaryBytes: 0, receiver: .notVisible),
         "replication lag unknown (not visible to the monitoring role; grant pg_monitor)"),
        (StandbyRequirements(maximumLagBytes: 1024),
         NodeState(inRecovery: true, behindPrimaryBytes: 0, receiverTimeout: Milliseconds(60_000), receiver: .running(status: "streaming", silence: Milliseconds(61_000))),
         "replication lag unknown (no word from the primary for 61s, over wal_receiver_timeout)"),
        (StandbyRequirements(maximumLagBytes: 1024),
         NodeState(inRecovery: true, behindPrimaryBytes: 0, receiverTimeout: Milliseconds(0), receiver: .running(status: "streaming", silence: Milliseconds(61_000))),
         nil),
        (StandbyRequirements(maximumLagBytes: 1024), NodeState(inRecovery: true, receiver: .running(status: "waiting", silence: nil)),
         "replication lag unknown (WAL receiver waiting, not streaming)"),
        (StandbyRequirements(maximumReplayBacklogBytes: 1024), NodeState(inRecovery: true, replayBacklogBytes: 4096, receiver: .stopped),
         "replay backlog 4 kB exceeds maximum 1 kB"),
        (StandbyRequirements(maximumReplayBacklogBytes: 1024), NodeState(inRecovery: true, receiver: .stopped),
         "replay backlog unknown (no WAL received by streaming)"),
        (StandbyRequirements(maximumReplayDelay: Milliseconds(30_000)), NodeState(inRecovery: true, replayDelay: Milliseconds(0)), nil),
        (StandbyRequirements(maximumReplayDelay: Milliseconds(30_000)), NodeState(inRecovery: true, replayDelay: Milliseconds(42_500)),
         "replay delay 42.5s exceeds maximum 30s"),
        (StandbyRequirements(maximumReplayDelay: Milliseconds(30_000)), NodeState(inRecovery: true),
         "replay delay unknown (no WAL received by streaming)"),
    ] as [(StandbyRequirements, NodeState, String?)])
    func unmet(requirements: StandbyRequirements, state: NodeState, reason: String?) {
        #expect(requirements.unmet(by: state) == reason)
    }
}
