import Testing
@testable import PGSQLChkCore

@Suite("Verdict: node state to answer")
struct VerdictTests {
    static let primary = NodeState(inRecovery: false, serverVersion: "15.18", timeline: 2)
    static let standby = NodeState(inRecovery: true, serverVersion: "15.18", timeline: 2, behindPrimaryBytes: 0, replayDelay: Milliseconds(0),
                                   receiver: .running(status: "streaming", silence: Milliseconds(120)))
    static let laggingStandby = NodeState(inRecovery: true, behindPrimaryBytes: 48 << 20, replayDelay: Milliseconds(4_000),
                                          receiver: .running(status: "streaming", silence: Milliseconds(100)))
    static let lagLimit = StandbyRequirements(maximumLagBytes: 16 << 20)
    static let down = ProbeFailure.noResponse(detail: "refused")

    @Test("each endpoint answers each role as its table says", arguments: [
        (Endpoint.role, primary, StandbyRequirements(), HTTPStatus.ok, "primary", ExitCode.success),
        (.role, standby, StandbyRequirements(), .partialContent, "standby", .standby),
        (.role, laggingStandby, StandbyRequirements(), .partialContent, "standby", .standby),
        (.role, laggingStandby, lagLimit, .serviceUnavailable, "replication lag 48 MB exceeds maximum 16 MB", .unavailable),
        (.primary, primary, StandbyRequirements(), .ok, "primary", .success),
        (.primary, standby, StandbyRequirements(), .serviceUnavailable, "not the primary: standby", .unavailable),
        (.replica, primary, StandbyRequirements(), .serviceUnavailable, "not a standby: primary", .unavailable),
        (.replica, standby, lagLimit, .ok, "standby", .success),
        (.replica, laggingStandby, lagLimit, .serviceUnavailable, "replication lag 48 MB exceeds maximum 16 MB", .unavailable),
        (.readOnly, primary, lagLimit, .ok, "primary", .success),
        (.readOnly, standby, lagLimit, .ok, "standby", .success),
        (.readOnly, laggingStandby, lagLimit, .serviceUnavailable, "replication lag 48 MB exceeds maximum 16 MB", .unavailable),
        (.health, primary, StandbyRequirements(), .ok, "primary", .success),
        (.health, laggingStandby, lagLimit, .ok, "standby", .success),
        (.status, laggingStandby, lagLimit, .ok, "standby", .success),
    ] as [(Endpoint, NodeState, StandbyRequirements, HTTPStatus, String, ExitCode)])
    func endpointByRole(endpoint: Endpoint, state: NodeState, requirements: StandbyRequirements,
                        status: HTTPStatus, body: String, exitStatus: ExitCode) {
        let request = CheckRequest(endpoint: endpoint, requirements: requirements)
        let verdict = Verdict(for: request, outcome: .success(state), drain: .absent)
        #expect(verdict.status == status)
        #expect(verdict.body == body)
        #expect(verdict.exitStatus == exitStatus)
        #expect(verdict.state == state)
    }

    @Test("a probe failure is a 503 with its reason on every endpoint but /metrics", arguments: Endpoint.allCases.filter { $0 != .metrics })
    func failureEverywhere(endpoint: Endpoint) {
        let verdict = Verdict(for: CheckRequest(endpoint: endpoint), outcome: .failure(Self.down), drain: .absent)
        #expect(verdict == Verdict(answer: .unavailable, body: "no response from server"))
    }

    @Test("each failure has a reason a DBA can act on", arguments: [
        (ProbeFailure.noResponse(detail: "refused"), "no response from server"),
        (.authenticationFailed(detail: "28P01"), "authentication failed (check pgsqlchk's role and pg_hba.conf)"),
        (.authorizationFailed(detail: "3D000"), "not authorized (check the database name and CONNECT privilege)"),
        (.tooManyConnections(detail: "53300"), "too many connections"),
        (.notAcceptingConnections(detail: "57P03"), "server is not accepting connections (starting up or shutting down)"),
        (.connectionRejected(sqlstate: "08P01", detail: "x"), "connection rejected (SQLSTATE 08P01)"),
        (.misconfigured(detail: "bogus"), "invalid connection settings"),
        (.timedOut(phase: .loggingIn), "timeout while logging in"),
        (.timedOut(phase: .resolving), "timeout while looking up the server's host name"),
        (.tlsFailed(.serverWithoutTLS, detail: "x"), "server does not support SSL, but sslmode requires it"),
        (.queryFailed(.role, detail: "x"), "role query failed"),
        (.queryFailed(.replication, detail: "x"), "replication query failed"),
        (.queryFailed(.connectionSlots, detail: "x"), "connection slots query failed"),
        (.queryFailed(.position, detail: "x"), "position query failed"),
    ])
    func failureReasons(failure: ProbeFailure, reason: String) {
        #expect(failure.reason == reason)
    }

    @Test("the drain file turns routing answers into 404 maintenance, whatever the node's state", arguments: [
        (Endpoint.role, Result<NodeState, ProbeFailure>.success(primary)),
        (.role, .success(standby)),
        (.primary, .success(primary)),
        (.replica, .success(standby)),
        (.readOnly, .failure(down)),
    ])
    func maintenanceDrains(endpoint: Endpoint, outcome: Result<NodeState, ProbeFailure>) {
        let verdict = Verdict(for: CheckRequest(endpoint: endpoint), outcome: outcome, drain: .present)
        #expect(verdict.status == .notFound)
        #expect(verdict.body == "maintenance")
        #expect(verdict.exitStatus == .maintenance)
        #expect(verdict.maintenance)
    }

    @Test("a drain file that cannot be looked at routes by role, and says why")
    func unreadableDrain() {
        let drain = DrainState.unreadable(reason: "drain file /x cannot be checked: Permission denied")
        let verdict = Verdict(for: CheckRequest(), outcome: .success(Self.primary), drain: drain)
        #expect(verdict.status == .ok)
        #expect(verdict.drain.reason == "drain file /x cannot be checked: Permission denied")
    }

    @Test("health and status report through maintenance instead of draining", arguments: [Endpoint.health, .status])
    func maintenanceReported(endpoint: Endpoint) {
        let verdict = Verdict(for: CheckRequest(endpoint: endpoint), outcome: .success(Self.primary), drain: .present)
        #expect(verdict.status == .ok)
        #expect(verdict.maintenance)
    }

    @Test("no failure detail ever reaches the body")
    func detailStaysOut() {
        let secret = "FATAL:  28P01: password authentication failed for user \"monitor\""
        let verdict = Verdict(for: CheckRequest(), outcome: .failure(.authenticationFailed(detail: secret)), drain: .absent)
        #expect(!verdict.body.contains("monitor"))
        #expect(!verdict.body.contains("28P01"))
    }

    @Test("a refused request keeps its 4xx status and reason, exit status 4")
    func refusal() {
        let refusal = RequestError.methodNotAllowed(method: "PUT")
        #expect(Verdict(refusing: refusal) == Verdict(answer: .refused(refusal), body: refusal.reason))
    }
}

@Suite("Kubernetes probes and metrics: node state to answer")
struct ProbeEndpointVerdictTests {
    static let primary = NodeState(inRecovery: false, timeline: 2)
    static let streaming = NodeState.standby(lag: 0)
    static let stopped = NodeState(inRecovery: true, behindPrimaryBytes: 0, receiver: .stopped)
    static let hidden = NodeState(inRecovery: true, receiver: .notVisible)

    @Test("liveness: 200 while the server responds at all, even to refuse the login; 503 only when nothing answers", arguments: [
        (Result<NodeState, ProbeFailure>.success(primary), HTTPStatus.ok, "primary"),
        (.success(stopped), .ok, "standby"),
        (.failure(.tooManyConnections(detail: "53300")), .ok, "responding, but too many connections"),
        (.failure(.notAcceptingConnections(detail: "57P03")), .ok,
         "responding, but server is not accepting connections (starting up or shutting down)"),
        (.failure(.authenticationFailed(detail: "28P01")), .ok, "responding, but authentication failed (check pgsqlchk's role and pg_hba.conf)"),
        (.failure(.noResponse(detail: "refused")), .serviceUnavailable, "no response from server"),
        (.failure(.timedOut(phase: .loggingIn)), .serviceUnavailable, "timeout while logging in"),
        (.failure(.misconfigured(detail: "x")), .serviceUnavailable, "invalid connection settings"),
    ])
    func liveness(outcome: Result<NodeState, ProbeFailure>, status: HTTPStatus, body: String) {
        let verdict = Verdict(for: CheckRequest(endpoint: .liveness), outcome: outcome, drain: .present)
        #expect(verdict.status == status)
        #expect(verdict.body == body)
    }

    @Test("readiness: the primary, or a standby that streams and meets its limits", arguments: [
        (Result<NodeState, ProbeFailure>.success(primary), StandbyRequirements(), HTTPStatus.ok, "primary"),
        (.success(streaming), StandbyRequirements(), .ok, "standby"),
        (.success(stopped), StandbyRequirements(), .serviceUnavailable, "WAL receiver not running"),
        (.success(hidden), StandbyRequirements(), .serviceUnavailable, "replication state not visible to the monitoring role (grant pg_monitor)"),
        (.success(NodeState.standby(lag: 2048)), StandbyRequirements(maximumLagBytes: 1024), .serviceUnavailable,
         "replication lag 2 kB exceeds maximum 1 kB"),
        (.failure(.noResponse(detail: "x")), StandbyRequirements(), .serviceUnavailable, "no response from server"),
    ])
    func readiness(outcome: Result<NodeState, ProbeFailure>, requirements: StandbyRequirements, status: HTTPStatus, body: String) {
        let verdict = Verdict(for: CheckRequest(endpoint: .readiness, requirements: requirements), outcome: outcome, drain: .absent)
        #expect(verdict.status == status)
        #expect(verdict.body == body)
    }

    static let rejoin = "replication lag 50 MB exceeds the rejoin threshold 48 MB (75% of 64 MB) while HAProxy has it DOWN"

    @Test("HAProxy's send-state picks the limit or its rejoin threshold, and may keep the last standby", arguments: [
        (Endpoint.role, StandbyRequirements(maximumLagBytes: 64 << 20), "UP; name=ro/pg2; weight=100/200", HTTPStatus.partialContent, "standby"),
        (.role, StandbyRequirements(maximumLagBytes: 64 << 20), nil, .partialContent, "standby"),
        (.role, StandbyRequirements(maximumLagBytes: 64 << 20), "DOWN; name=ro/pg2; weight=100/100", .serviceUnavailable, rejoin),
        (.replica, StandbyRequirements(maximumLagBytes: 64 << 20), "DOWN 1/2; name=ro/pg2; weight=100/100", .serviceUnavailable, rejoin),
        (.readiness, StandbyRequirements(maximumLagBytes: 64 << 20), "DOWN; name=ro/pg2; weight=100/100", .serviceUnavailable, rejoin),
        (.role, StandbyRequirements(maximumLagBytes: 32 << 20, keepsLastStandby: true), "UP; name=ro/pg2; weight=100/100", .partialContent,
         "standby, replication lag 50 MB exceeds maximum 32 MB, kept as the only usable server of ro/pg2"),
        (.readOnly, StandbyRequirements(maximumLagBytes: 32 << 20, keepsLastStandby: true), "UP; name=ro/pg2; weight=100/100", .ok,
         "standby, replication lag 50 MB exceeds maximum 32 MB, kept as the only usable server of ro/pg2"),
        (.role, StandbyRequirements(maximumLagBytes: 32 << 20, keepsLastStandby: true), "UP; name=ro/pg2; weight=100/200", .serviceUnavailable,
         "replication lag 50 MB exceeds maximum 32 MB"),
        (.health, StandbyRequirements(maximumLagBytes: 64 << 20), "DOWN; name=ro/pg2; weight=100/100", .ok, "standby"),
    ] as [(Endpoint, StandbyRequirements, String?, HTTPStatus, String)])
    func haproxysView(endpoint: Endpoint, requirements: StandbyRequirements, header: String?, status: HTTPStatus, body: String) {
        let request = CheckRequest(endpoint: endpoint, requirements: requirements, serverState: header.flatMap { HAProxyServerState(header: $0[...]) })
        let verdict = Verdict(for: request, outcome: .success(NodeState.standby(lag: 50 << 20)), drain: .absent)
        #expect(verdict.status == status)
        #expect(verdict.body == body)
    }

    @Test("readiness routes, so the drain file makes it 404; liveness and metrics report through it")
    func drain() {
        #expect(Verdict(for: CheckRequest(endpoint: .readiness), outcome: .success(Self.primary), drain: .present).status == .notFound)
        #expect(Verdict(for: CheckRequest(endpoint: .liveness), outcome: .success(Self.primary), drain: .present).status == .ok)
        #expect(Verdict(for: CheckRequest(endpoint: .metrics), outcome: .success(Self.primary), drain: .present).status == .ok)
    }

    @Test("a scrape succeeds whether or not PostgreSQL answered: the metrics say which")
    func metricsOnFailure() {
        let verdict = Verdict(for: CheckRequest(endpoint: .metrics), outcome: .failure(.noResponse(detail: "x")), drain: .absent)
        #expect(verdict.status == .ok)
        #expect(verdict.exitStatus == .success)
    }

    static let sync = Synchrony.synchronous(primary: "db1:5432", syncState: "sync")
    static let async = Synchrony.asynchronous(primary: "db1:5432", syncState: "potential")
    static let cascading = Synchrony.cascading(primary: "db1:5432")

    @Test("synchronous and asynchronous: a streaming standby within its limits, as the primary has it", arguments: [
        (Endpoint.synchronous, Result<NodeState, ProbeFailure>.success(streaming), Synchrony?.some(sync), HTTPStatus.ok, "synchronous standby"),
        (.synchronous, .success(streaming), async, .serviceUnavailable, "not a synchronous standby: db1:5432 lists it as potential"),
        (.synchronous, .success(streaming), cascading, .serviceUnavailable, "not a synchronous standby: db1:5432 does not stream to it (cascading)"),
        (.asynchronous, .success(streaming), async, .ok, "asynchronous standby"),
        (.asynchronous, .success(streaming), cascading, .ok, "asynchronous standby (cascading: db1:5432 does not stream to it)"),
        (.asynchronous, .success(streaming), sync, .serviceUnavailable, "not an asynchronous standby: db1:5432 lists it as sync"),
        (.synchronous, .success(streaming), nil, .serviceUnavailable,
         "synchronous state unknown: only the primary knows it; list the nodes with --peers"),
        (.asynchronous, .success(streaming), .unknown(reason: "why"), .serviceUnavailable, "why"),
        (.synchronous, .success(stopped), sync, .serviceUnavailable, "WAL receiver not running"),
        (.asynchronous, .success(NodeState.standby(lag: 2048)), async, .serviceUnavailable, "replication lag 2 kB exceeds maximum 1 kB"),
        (.synchronous, .success(primary), nil, .serviceUnavailable, "not a standby: primary"),
        (.asynchronous, .failure(.noResponse(detail: "x")), nil, .serviceUnavailable, "no response from server"),
    ] as [(Endpoint, Result<NodeState, ProbeFailure>, Synchrony?, HTTPStatus, String)])
    func synchrony(endpoint: Endpoint, outcome: Result<NodeState, ProbeFailure>, synchrony: Synchrony?, status: HTTPStatus, body: String) {
        let request = CheckRequest(endpoint: endpoint, requirements: StandbyRequirements(maximumLagBytes: 1024))
        let verdict = Verdict(for: request, outcome: outcome, drain: .absent, synchrony: synchrony)
        #expect(verdict.status == status)
        #expect(verdict.body == body)
    }

    @Test("the verdict decides the agent's answer too: weight, the kept standby's minimum, maxconn", arguments: [
        (NodeState.standby(lag: 8 << 20), StandbyRequirements(maximumLagBytes: 16 << 20), Answer.serves(weight: 55)),
        (.standby(lag: 48 << 20), StandbyRequirements(maximumLagBytes: 16 << 20), .unavailable),
        (.standby(lag: 48 << 20), StandbyRequirements(maximumLagBytes: 16 << 20, keepsLastStandby: true), .behindButKept(weight: 10)),
        (primary, StandbyRequirements(maximumLagBytes: 16 << 20, keepsLastStandby: true), .serves(weight: 100)),
    ] as [(NodeState, StandbyRequirements, Answer)])
    func agentDecisions(state: NodeState, requirements: StandbyRequirements, answer: Answer) {
        let request = CheckRequest(endpoint: .readOnly, requirements: requirements, maxconn: MaxconnRequest())
        let verdict = Verdict(for: request, outcome: .success(state), drain: .absent)
        #expect(verdict.answer == answer)
        #expect(verdict.maxconn == .withheld(reason: "connection slots not probed"))
        #expect(!verdict.leavesServerState)
    }
}
