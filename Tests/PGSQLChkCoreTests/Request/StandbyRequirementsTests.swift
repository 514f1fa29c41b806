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
         "replay backlog unknown (no WAL received by streaming since the standby started)"),
        (StandbyRequirements(maximumReplayDelay: Milliseconds(30_000)), NodeState(inRecovery: true, replayDelay: Milliseconds(0)), nil),
        (StandbyRequirements(maximumReplayDelay: Milliseconds(30_000)), NodeState(inRecovery: true, replayDelay: Milliseconds(42_500)),
         "replay delay 42.5s exceeds maximum 30s"),
        (StandbyRequirements(maximumReplayDelay: Milliseconds(30_000)), NodeState(inRecovery: true),
         "replay delay unknown (no WAL received by streaming since the standby started)"),
        (StandbyRequirements(maximumReplayDelay: Milliseconds(30_000)),
         NodeState(inRecovery: true, receivedPosition: "0/310C000", replayedPosition: "0/3018880", replayBacklogBytes: 997_248, receiver: streaming),
         "replay delay unknown (no transaction replayed since the standby started)"),
    ] as [(StandbyRequirements, NodeState, String?)])
    func withoutHAProxysView(requirements: StandbyRequirements, state: NodeState, reason: String?) {
        let found: String? = switch requirements.standing(of: state, seenBy: nil) {
        case .meets: nil
        case .kept(let why), .fails(let why, _): why
        }
        #expect(found == reason)
    }

    static let limits = StandbyRequirements(maximumLagBytes: 64 << 20)
    static let up = HAProxyServerState(header: "UP; name=ro/pg2; weight=100/200")
    static let goingDown = HAProxyServerState(header: "UP 1/3; name=ro/pg2; weight=100/200")
    static let draining = HAProxyServerState(header: "NOLB; name=ro/pg2; weight=0/100")
    static let down = HAProxyServerState(header: "DOWN; name=ro/pg2; weight=100/100")
    static let goingUp = HAProxyServerState(header: "DOWN 1/2; name=ro/pg2; weight=100/100")
    static let unchecked = HAProxyServerState(header: "no check; name=ro/pg2; weight=100/200")

    @Test("in rotation a standby serves up to each limit; out of it, only at or below 75% of every limit", arguments: [
        (limits, NodeState.standby(lag: 64 << 20), nil, StandbyStanding.meets),
        (limits, .standby(lag: 64 << 20), up, .meets),
        (limits, .standby(lag: 64 << 20), goingDown, .meets),
        (limits, .standby(lag: 64 << 20), draining, .meets),
        (limits, .standby(lag: 64 << 20), unchecked, .meets),
        (limits, .standby(lag: 65 << 20), up, .fails("replication lag 65 MB exceeds maximum 64 MB", lagOnly: true)),
        (limits, .standby(lag: 50 << 20), down,
         .fails("replication lag 50 MB exceeds the rejoin threshold 48 MB (75% of 64 MB) while HAProxy has it DOWN", lagOnly: true)),
        (limits, .standby(lag: 50 << 20), goingUp,
         .fails("replication lag 50 MB exceeds the rejoin threshold 48 MB (75% of 64 MB) while HAProxy has it DOWN", lagOnly: true)),
        (limits, .standby(lag: 48 << 20), down, .meets),
        (limits, .standby(lag: (48 << 20) + 1), down,
         .fails("replication lag 50331649 bytes exceeds the rejoin threshold 50331648 bytes (75% of 64 MB) while HAProxy has it DOWN",
                lagOnly: true)),
        (limits, .standby(lag: 80 << 20), down, .fails("replication lag 80 MB exceeds maximum 64 MB", lagOnly: true)),
        (StandbyRequirements(maximumReplayBacklogBytes: 64 << 20), NodeState(inRecovery: true, replayBacklogBytes: 60 << 20, receiver: .stopped),
         down, .fails("replay backlog 60 MB exceeds the rejoin threshold 48 MB (75% of 64 MB) while HAProxy has it DOWN", lagOnly: false)),
        (StandbyRequirements(maximumReplayDelay: Milliseconds(30_000)), NodeState(inRecovery: true, behindPrimaryBytes: 0, replayDelay: Milliseconds(25_000),
                                                                         receiver: .running(status: "streaming", silence: nil)),
         down, .fails("replay delay 25s exceeds the rejoin threshold 22.5s (75% of 30s) while HAProxy has it DOWN", lagOnly: true)),
        (StandbyRequirements(maximumReplayDelay: Milliseconds(30_000)), NodeState(inRecovery: true, behindPrimaryBytes: 0, replayDelay: Milliseconds(25_000),
                                                                         receiver: .running(status: "streaming", silence: nil)),
         up, .meets),
        (StandbyRequirements(maximumLagBytes: 64 << 20, rejoinPercent: 50), .standby(lag: 40 << 20), down,
         .fails("replication lag 40 MB exceeds the rejoin threshold 32 MB (50% of 64 MB) while HAProxy has it DOWN", lagOnly: true)),
        (StandbyRequirements(maximumLagBytes: 64 << 20, rejoinPercent: 100), .standby(lag: 64 << 20), down, .meets),
        (StandbyRequirements(maximumLagBytes: 64 << 20, rejoinPercent: 0), .standby(lag: 0), down, .meets),
        (StandbyRequirements(maximumLagBytes: 64 << 20, rejoinPercent: 0), .standby(lag: 1), down,
         .fails("replication lag 1 bytes exceeds the rejoin threshold 0 bytes (0% of 64 MB) while HAProxy has it DOWN", lagOnly: true)),
        (limits, NodeState(inRecovery: true, behindPrimaryBytes: 0, receiver: .stopped), down,
         .fails("replication lag unknown (WAL receiver not running)", lagOnly: false)),
        (StandbyRequirements(), .standby(lag: 1 << 40), down, .meets),
    ] as [(StandbyRequirements, NodeState, HAProxyServerState?, StandbyStanding)])
    func hysteresis(requirements: StandbyRequirements, state: NodeState, haproxy: HAProxyServerState?, standing: StandbyStanding) {
        #expect(requirements.standing(of: state, seenBy: haproxy) == standing)
    }

    static let keeping = StandbyRequirements(maximumLagBytes: 64 << 20, keepsLastStandby: true)
    static let alone = HAProxyServerState(header: "UP; name=ro/pg2; weight=100/100")
    static let aloneGoingDown = HAProxyServerState(header: "UP 2/3; name=ro/pg2; weight=10/10")
    static let kept = "replication lag 80 MB exceeds maximum 64 MB, kept as the only usable server of ro/pg2"

    @Test("keep_last_standby keeps a standby past lag limits only while it is UP alone, streaming with its lag known", arguments: [
        (keeping, NodeState.standby(lag: 80 << 20), alone, StandbyStanding.kept(kept)),
        (keeping, .standby(lag: 80 << 20), aloneGoingDown, .kept(kept)),
        (keeping, .standby(lag: 80 << 20), HAProxyServerState(header: "UP; weight=100/100"),
         .kept("replication lag 80 MB exceeds maximum 64 MB, kept as the only usable server of its backend")),
        (StandbyRequirements(maximumLagBytes: 64 << 20), .standby(lag: 80 << 20), alone,
         .fails("replication lag 80 MB exceeds maximum 64 MB", lagOnly: true)),
        (keeping, .standby(lag: 80 << 20), nil, .fails("replication lag 80 MB exceeds maximum 64 MB", lagOnly: true)),
        (keeping, .standby(lag: 80 << 20), up, .fails("replication lag 80 MB exceeds maximum 64 MB", lagOnly: true)),
        (keeping, .standby(lag: 80 << 20), draining, .fails("replication lag 80 MB exceeds maximum 64 MB", lagOnly: true)),
        (keeping, .standby(lag: 80 << 20), down, .fails("replication lag 80 MB exceeds maximum 64 MB", lagOnly: true)),
        (keeping, .standby(lag: 80 << 20), HAProxyServerState(header: "UP; name=ro/pg2; weight=0/0"),
         .fails("replication lag 80 MB exceeds maximum 64 MB", lagOnly: true)),
        (keeping, .standby(lag: 80 << 20), HAProxyServerState(header: "UP; name=ro/pg2"),
         .fails("replication lag 80 MB exceeds maximum 64 MB", lagOnly: true)),
        (keeping, NodeState(inRecovery: true, behindPrimaryBytes: 80 << 20, receiver: .stopped), alone,
         .fails("replication lag unknown (WAL receiver not running)", lagOnly: false)),
        (StandbyRequirements(maximumReplayBacklogBytes: 64 << 20, keepsLastStandby: true),
         NodeState(inRecovery: true, behindPrimaryBytes: 0, replayBacklogBytes: 80 << 20, receiver: .running(status: "streaming", silence: nil)), alone,
         .kept("replay backlog 80 MB exceeds maximum 64 MB, kept as the only usable server of ro/pg2")),
        (StandbyRequirements(maximumReplayDelay: Milliseconds(30_000), keepsLastStandby: true),
         NodeState(inRecovery: true, replayDelay: Milliseconds(40_000), receiver: .stopped), alone,
         .fails("replay delay 40s exceeds maximum 30s", lagOnly: false)),
        (StandbyRequirements(maximumLagBytes: 64 << 20, requiresStreaming: true, keepsLastStandby: true),
         NodeState(inRecovery: true, behindPrimaryBytes: 80 << 20, receiver: .running(status: "waiting", silence: nil)), alone,
         .fails("WAL receiver waiting, not streaming", lagOnly: false)),
    ] as [(StandbyRequirements, NodeState, HAProxyServerState?, StandbyStanding)])
    func keepLastStandby(requirements: StandbyRequirements, state: NodeState, haproxy: HAProxyServerState?, standing: StandbyStanding) {
        #expect(requirements.standing(of: state, seenBy: haproxy) == standing)
    }

    @Test("rejoin= and keep_last_standby= set their requirement", arguments: [
        ("rejoin", "75%", StandbyRequirements(rejoinPercent: 75)),
        ("rejoin", "0%", StandbyRequirements(rejoinPercent: 0)),
        ("rejoin", "100%", StandbyRequirements(rejoinPercent: 100)),
        ("rejoin", "75", StandbyRequirements(rejoinPercent: 75)),
        ("keep_last_standby", "1", StandbyRequirements(keepsLastStandby: true)),
        ("keep_last_standby", "0", StandbyRequirements(keepsLastStandby: false)),
    ])
    func validParameters(name: String, value: String, requirements expected: StandbyRequirements) throws {
        var requirements = StandbyRequirements(rejoinPercent: 42, keepsLastStandby: !expected.keepsLastStandby)
        try requirements.apply(parameter: name, value: value)
        #expect(name == "rejoin" ? requirements.rejoinPercent == expected.rejoinPercent : requirements.keepsLastStandby == expected.keepsLastStandby)
    }

    @Test("a bad rejoin= or keep_last_standby= is refused with what would parse", arguments: [
        ("rejoin", "101%", "invalid rejoin \"101%\": expected a percentage of each limit from 0 to 100, such as 75"),
        ("rejoin", "0.75", "invalid rejoin \"0.75\": expected a percentage of each limit from 0 to 100, such as 75"),
        ("rejoin", "-5%", "invalid rejoin \"-5%\": expected a percentage of each limit from 0 to 100, such as 75"),
        ("rejoin", "%", "invalid rejoin \"%\": expected a percentage of each limit from 0 to 100, such as 75"),
        ("keep_last_standby", "yes", "invalid keep_last_standby \"yes\": expected 1 or 0"),
    ])
    func invalidParameters(name: String, value: String, reason: String) {
        var requirements = StandbyRequirements()
        let error = #expect(throws: RequestError.self) { try requirements.apply(parameter: name, value: value) }
        #expect(error?.reason == reason)
        #expect(requirements == StandbyRequirements())
    }
}
