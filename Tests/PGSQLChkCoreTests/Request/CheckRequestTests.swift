import Testing
@testable import PGSQLChkCore

@Suite("Check request targets")
struct CheckRequestTests {
    @Test("Patroni's paths and aliases name their endpoints", arguments: [
        ("/", Endpoint.role), ("/primary", .primary), ("/read-write", .primary), ("/master", .primary), ("/leader", .primary),
        ("/replica", .replica), ("/standby", .replica), ("/read-only", .readOnly), ("/health", .health), ("/status", .status),
    ])
    func paths(path: String, endpoint: Endpoint) throws {
        #expect(try CheckRequest.parse(target: path, defaults: StandbyRequirements()).endpoint == endpoint)
    }

    @Test("absolute-form targets and percent-encoding read as their origin-form, decoded once", arguments: [
        ("http://db1:23267/replica?lag=1MB", Endpoint.replica, Int64(1 << 20)),
        ("HTTP://db1/primary", .primary, nil),
        ("http://db1", .role, nil),
        ("http://db1?lag=1kB", .role, 1 << 10),
        ("/%70rimary", .primary, nil),
        ("/replica?lag=%31%36MB", .replica, 16 << 20),
        ("/replica?%6cag=1", .replica, 1),
    ] as [(String, Endpoint, Int64?)])
    func absoluteAndEncoded(target: String, endpoint: Endpoint, lag: Int64?) throws {
        let request = try CheckRequest.parse(target: target, defaults: StandbyRequirements())
        #expect(request.endpoint == endpoint)
        #expect(request.requirements.maximumLagBytes == lag)
    }

    @Test("query parameters set limits on top of the defaults", arguments: [
        ("/replica?lag=16MB", StandbyRequirements(maximumLagBytes: 16 << 20, requiresStreaming: true)),
        ("/replica?lag=1024&replay_delay=30s", StandbyRequirements(maximumLagBytes: 1024, maximumReplayDelay: Milliseconds(30_000), requiresStreaming: true)),
        ("/read-only?replication_state=streaming", StandbyRequirements(maximumLagBytes: 1 << 30, requiresStreaming: true)),
        ("/replica", StandbyRequirements(maximumLagBytes: 1 << 30, requiresStreaming: true)),
        ("/replica?", StandbyRequirements(maximumLagBytes: 1 << 30, requiresStreaming: true)),
        ("/?lag=64MB&rejoin=50%25&keep_last_standby=1",
         StandbyRequirements(maximumLagBytes: 64 << 20, requiresStreaming: true, rejoinPercent: 50, keepsLastStandby: true)),
    ])
    func parameters(target: String, requirements: StandbyRequirements) throws {
        let defaults = StandbyRequirements(maximumLagBytes: 1 << 30, requiresStreaming: true)
        #expect(try CheckRequest.parse(target: target, defaults: defaults).requirements == requirements)
    }

    @Test("bad targets are 400s that name what is wrong", arguments: [
        ("/slave", "unknown endpoint \"/slave\"; try \(Endpoint.choices)"),
        ("/replica/", "unknown endpoint \"/replica/\"; try \(Endpoint.choices)"),
        ("/replica?lag=garbage", "invalid lag \"garbage\": expected bytes such as 1048576, 16MB or 1GB"),
        ("/replica?lag=", "invalid lag \"\": expected bytes such as 1048576, 16MB or 1GB"),
        ("/replica?lag=-1", "invalid lag \"-1\": expected bytes such as 1048576, 16MB or 1GB"),
        ("/replica?lag=16XB", "invalid lag \"16XB\": expected bytes such as 1048576, 16MB or 1GB"),
        ("/replica?replay_delay=1h", "invalid replay_delay \"1h\": expected a duration such as 30s, 500ms or 2min"),
        ("/replica?replication_state=stopped", "invalid replication_state \"stopped\": only streaming is supported"),
        ("/replica?lag=1&lag=2", "parameter \"lag\" given twice"),
        ("/replica?max_lag=1", "unknown parameter \"max_lag\"; try lag, replay_backlog, replay_delay, replication_state, rejoin or keep_last_standby"),
        ("/\u{1b}[31m", "unknown endpoint \"/?[31m\"; try \(Endpoint.choices)"),
        ("/replica?lag=%3", "invalid percent-encoding in \"%3\""),
        ("/%ZZ", "invalid percent-encoding in \"/%ZZ\""),
        ("/replica?lag=%FF", "invalid percent-encoding in \"%FF\""),
        ("/%2570rimary", "unknown endpoint \"/%70rimary\"; try \(Endpoint.choices)"),
        ("/replica?lag=1%26lag=2", "invalid lag \"1&lag=2\": expected bytes such as 1048576, 16MB or 1GB"),
    ])
    func badTargets(target: String, reason: String) {
        let error = #expect(throws: RequestError.self) { try CheckRequest.parse(target: target, defaults: StandbyRequirements()) }
        #expect(error?.status == .badRequest)
        #expect(error?.reason == reason)
    }

    @Test("the endpoint hint in a 400 lists every endpoint without aliases")
    func hint() {
        #expect(Endpoint.choices == "/, /primary, /replica, /read-only, /health, /status, /liveness, /readiness, /synchronous, /asynchronous, /metrics or /cluster")
        #expect(RequestError.unknownEndpoint(path: "/x").reason.hasSuffix("; try " + Endpoint.choices))
    }

    @Test("a check asks only what its answer needs: the role alone unless a limit, a document or the peers need more", arguments: [
        ("/", ProbeDepth.role),
        ("/replica", .role),
        ("/replica?rejoin=50", .role),
        ("/?keep_last_standby=1", .role),
        ("/replica?lag=1MB", .replication),
        ("/read-only?replication_state=streaming", .replication),
        ("/readiness", .replication),
        ("/status", .replication),
        ("/sync", .synchrony),
        ("/async?lag=1MB", .synchrony),
    ])
    func depth(target: String, depth: ProbeDepth) throws {
        #expect(try CheckRequest.parse(target: target, defaults: StandbyRequirements()).depth == depth)
    }
}
