import Testing
@testable import PGSQLChkCore

@Suite("Verdict: node state to answer")
struct VerdictTests {
    @Test("each probe outcome maps to one status, body and exit status", arguments: [
        (.success(NodeState(inRecovery: false)), .ok, "primary", 0),
        (.success(NodeState(inRecovery: true)), .partialContent, "standby", 1),
        (.failure(.noResponse(detail: "refused")), .serviceUnavailable, "no response from server", 2),
        (.failure(.authenticationFailed(detail: "28P01")), .serviceUnavailable, "authentication failed (check pgsqlchk's role and pg_hba.conf)", 2),
        (.failure(.authorizationFailed(detail: "3D000")), .serviceUnavailable, "not authorized (check the database name and CONNECT privilege)", 2),
        (.failure(.tooManyConnections(detail: "53300")), .serviceUnavailable, "too many connections", 2),
        (.failure(.notAcceptingConnections(detail: "57P03")), .serviceUnavailable, "server is not accepting connections (starting up or shutting down)", 2),
        (.failure(.connectionRejected(sqlstate: "08P01", detail: "x")), .serviceUnavailable, "connection rejected (SQLSTATE 08P01)", 2),
        (.failure(.misconfigured(detail: "bogus")), .serviceUnavailable, "invalid connection settings", 2),
        (.failure(.timedOut(phase: "logging in")), .serviceUnavailable, "timeout while logging in", 2),
        (.failure(.queryFailed(detail: "x")), .serviceUnavailable, "role query failed", 2),
    ] as [(Result<NodeState, ProbeFailure>, HTTPStatus, String, Int32)])
    func mapping(outcome: Result<NodeState, ProbeFailure>, status: HTTPStatus, body: String, exitStatus: Int32) {
        #expect(Verdict(outcome) == Verdict(status: status, body: body, exitStatus: exitStatus))
    }

    @Test("no failure detail ever reaches the body")
    func detailStaysOut() {
        let secret = "FATAL:  28P01: password authentication failed for user \"monitor\""
        let verdict = Verdict(.failure(.authenticationFailed(detail: secret)))
        #expect(!verdict.body.contains("monitor"))
        #expect(!verdict.body.contains("28P01"))
    }

    @Test("the usage exit status is EX_USAGE, apart from every health state")
    func usageExitStatus() {
        #expect(Verdict.usageExitStatus == 64)
    }
}

@Suite("Role probe answer")
struct RoleProbeTests {
    @Test("pg_is_in_recovery() reads as the node state", arguments: [
        (["t"], true),
        (["f"], false),
    ] as [([String?], Bool)])
    func knownAnswers(row: [String?], inRecovery: Bool) throws {
        #expect(try RoleProbe.nodeState(from: row) == NodeState(inRecovery: inRecovery))
    }

    @Test("anything else is a query failure, never a role", arguments: [[], [nil], ["true"], ["t", "f"], [""]] as [[String?]])
    func unexpectedAnswers(row: [String?]) {
        #expect(throws: ProbeFailure.self) { try RoleProbe.nodeState(from: row) }
    }
}
