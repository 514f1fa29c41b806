import Testing
@testable import PGSQLChkCore

@Suite("Stale-primary guard: the decision table")
struct StalePrimaryGuardTests {
    static let system = "7714142357752938336"
    static let local = NodePosition(inRecovery: false, timeline: 2, systemIdentifier: system, startedAt: "1700000000.000001")

    static func peer(_ name: String) -> PeerAddress { PeerAddress(host: name, port: "5432") }

    static func answer(_ name: String, standby: Bool, timeline: Int, system: String = system,
                       startedAt: String = "1700000500.5") -> PeerReport {
        PeerReport(peer: peer(name), outcome: .success(NodePosition(inRecovery: standby, timeline: timeline,
                                                                    systemIdentifier: system, startedAt: startedAt)))
    }

    static func down(_ name: String) -> PeerReport {
        PeerReport(peer: peer(name), outcome: .failure(.noResponse(detail: "refused")))
    }

    static let itself = PeerReport(peer: peer("db1"), outcome: .success(local))

    @Test("each peer's answer has one standing against a primary on timeline 2", arguments: [
        (itself, PeerStanding.itself),
        (answer("db2", standby: false, timeline: 3), .newer),
        (answer("db2", standby: true, timeline: 3), .newer),
        (answer("db2", standby: false, timeline: 2), .rival),
        (answer("db2", standby: true, timeline: 2), .consistent),
        (answer("db2", standby: true, timeline: 1), .consistent),
        (answer("db2", standby: false, timeline: 1), .consistent),
        (answer("db2", standby: false, timeline: 9, system: "1234"), .otherCluster),
        (answer("db2", standby: false, timeline: 2, system: "1234", startedAt: local.startedAt), .otherCluster),
        (down("db2"), .unreachable(reason: "no response from server")),
    ] as [(PeerReport, PeerStanding)])
    func standing(report: PeerReport, standing: PeerStanding) {
        #expect(StalePrimaryGuard.standing(of: report, local: Self.local) == standing)
    }

    @Test("the local primary's decision from all its peers", arguments: [
        ([itself, answer("db2", standby: true, timeline: 2), answer("db3", standby: true, timeline: 2)], "serving"),
        ([itself, down("db2"), down("db3")], "serving"),
        ([itself, answer("db2", standby: false, timeline: 3), down("db3")],
         "stale primary: db2:5432 is primary on timeline 3, this node is primary on timeline 2"),
        ([itself, down("db2"), answer("db3", standby: true, timeline: 3)],
         "stale primary: db3:5432 is standby on timeline 3, this node is primary on timeline 2"),
        ([answer("db2", standby: true, timeline: 4), answer("db3", standby: false, timeline: 4), itself],
         "stale primary: db3:5432 is primary on timeline 4, this node is primary on timeline 2"),
        ([answer("db2", standby: false, timeline: 3), answer("db3", standby: false, timeline: 5)],
         "stale primary: db3:5432 is primary on timeline 5, this node is primary on timeline 2"),
        ([itself, answer("db2", standby: false, timeline: 2), answer("db3", standby: true, timeline: 2)],
         "two primaries on timeline 2: this node and db2:5432; stop or rewind one"),
        ([answer("db2", standby: false, timeline: 2), answer("db3", standby: true, timeline: 3)],
         "stale primary: db3:5432 is standby on timeline 3, this node is primary on timeline 2"),
        ([answer("db2", standby: false, timeline: 1), answer("db3", standby: false, timeline: 7, system: "1")], "serving"),
    ] as [([PeerReport], String)])
    func decision(peers: [PeerReport], refusal: String) {
        let report = StalePrimaryGuard.decide(local: Self.local, peers: peers)
        #expect((report.decision.refusal ?? "serving") == refusal)
        #expect(report.findings.map(\.report) == peers)
    }

    @Test("a stale finding carries the fence that keys it by system identifier and timeline")
    func staleFence() {
        let report = StalePrimaryGuard.decide(local: Self.local, peers: [Self.answer("db2", standby: false, timeline: 3)])
        let fence = Fence(systemIdentifier: Self.system, timeline: 2, newerNode: "db2:5432", newerRole: "primary", newerTimeline: 3)
        #expect(report.decision == .stale(fence))
        #expect(fence.applies(to: Self.local))
        #expect(!fence.applies(to: NodePosition(inRecovery: false, timeline: 4, systemIdentifier: Self.system, startedAt: "1")))
        #expect(!fence.applies(to: NodePosition(inRecovery: false, timeline: 2, systemIdentifier: "99", startedAt: "1")))
    }

    @Test("unreachable peers are listed with their reasons, and decide nothing")
    func unreachable() {
        let report = StalePrimaryGuard.decide(local: Self.local, peers: [Self.itself, Self.down("db2")])
        #expect(report.decision == .serving)
        #expect(report.unreachable == ["db2:5432 (no response from server)"])
    }
}

@Suite("Stale-primary guard: the verdict")
struct StalePrimaryVerdictTests {
    static let primary = NodeState(inRecovery: false, serverVersion: "15.18", timeline: 1)
    static let fence = Fence(systemIdentifier: "1", timeline: 1, newerNode: "db2:5432", newerRole: "primary", newerTimeline: 2)
    static let stale = GuardReport(decision: .stale(fence))

    @Test("a stale primary is 503 with the reason on every routing endpoint, 200 on the reporting ones", arguments: [
        (Endpoint.role, HTTPStatus.serviceUnavailable, "stale primary: db2:5432 is primary on timeline 2, this node is primary on timeline 1"),
        (.primary, .serviceUnavailable, "stale primary: db2:5432 is primary on timeline 2, this node is primary on timeline 1"),
        (.readOnly, .serviceUnavailable, "stale primary: db2:5432 is primary on timeline 2, this node is primary on timeline 1"),
        (.replica, .serviceUnavailable, "not a standby: primary"),
        (.health, .ok, "primary"),
        (.status, .ok, "primary"),
    ] as [(Endpoint, HTTPStatus, String)])
    func endpoints(endpoint: Endpoint, status: HTTPStatus, body: String) {
        let verdict = Verdict(for: CheckRequest(endpoint: endpoint), outcome: .success(Self.primary), drain: .absent, guardReport: Self.stale)
        #expect(verdict.status == status)
        #expect(verdict.body == body)
    }

    @Test("the guard's 503 wins over the drain file, which would keep a stale primary's sessions writing")
    func winsOverDrain() {
        let verdict = Verdict(for: CheckRequest(), outcome: .success(Self.primary), drain: .present, guardReport: Self.stale)
        #expect(verdict.status == .serviceUnavailable)
        let serving = Verdict(for: CheckRequest(), outcome: .success(Self.primary), drain: .present, guardReport: GuardReport(decision: .serving))
        #expect(serving.status == .notFound)
    }

    @Test("the agent answers down with the reason")
    func agent() {
        let request = CheckRequest(endpoint: .readOnly)
        let verdict = Verdict(for: request, outcome: .success(Self.primary), drain: .absent, guardReport: Self.stale)
        #expect(AgentReply.line(for: verdict, request: request)
            == "down #stale primary: db2:5432 is primary on timeline 2, this node is primary on timeline 1\n")
    }

    @Test("an unreadable fence file is a 503 that names it")
    func unreadableFence() {
        let report = GuardReport(decision: .fenceUnreadable(reason: "fence file /s/fence is corrupt: bad timeline"))
        let verdict = Verdict(for: CheckRequest(), outcome: .success(Self.primary), drain: .absent, guardReport: report)
        #expect(verdict.body == "fence file /s/fence is corrupt: bad timeline; treated as fenced")
    }
}

@Suite("Peer addresses")
struct PeerAddressTests {
    @Test("HOST[:PORT] entries parse, IPv6 in brackets", arguments: [
        ("db1", "db1", nil, "db1"),
        ("db1:5433", "db1", "5433", "db1:5433"),
        ("10.0.0.2:5432", "10.0.0.2", "5432", "10.0.0.2:5432"),
        ("[fd00::2]:5432", "fd00::2", "5432", "[fd00::2]:5432"),
        ("[::1]", "::1", nil, "[::1]"),
        ("/run/postgresql:5433", "/run/postgresql", "5433", "/run/postgresql:5433"),
    ] as [(String, String, String?, String)])
    func valid(text: String, host: String, port: String?, shown: String) throws {
        let peer = try #require(PeerAddress(Substring(text)))
        #expect(peer == PeerAddress(host: host, port: port))
        #expect(peer.description == shown)
    }

    @Test("anything else is refused, never guessed", arguments: ["", ":5432", "db1:", "db1:0", "db1:65536", "db1:54x", "fd00::2",
                                                                "[fd00::2", "[fd00::2]x", "db 1", "db1:123456"])
    func invalid(text: String) {
        #expect(PeerAddress(Substring(text)) == nil)
    }

    @Test("a list is comma-separated, without empty or repeated entries, at most 16")
    func list() {
        #expect(PeerAddress.list("a,b:1")?.count == 2)
        #expect(PeerAddress.list("a,,b") == nil)
        #expect(PeerAddress.list("a,a") == nil)
        #expect(PeerAddress.list((1...17).map { "n\($0)" }.joined(separator: ",")) == nil)
    }

    @Test("a peer replaces only host and port, after dbname, so a conninfo in -d cannot redirect it")
    func connectionPairs() {
        let local = ConnectionSettings(host: "/run/postgresql", port: "5432", user: "pgsqlchk", dbname: "host=elsewhere dbname=postgres")
        let pairs = local.reaching(PeerAddress(host: "db2", port: "5433")).libpqPairs
        #expect(pairs.map(\.keyword) == ["host", "port", "user", "dbname", "fallback_application_name", "host", "port"])
        #expect(pairs.suffix(2).map(\.value) == ["db2", "5433"])
        #expect(local.reaching(PeerAddress(host: "db2", port: nil)).libpqPairs.last?.value == "db2")
    }
}

@Suite("Stale-primary guard: options")
struct StalePrimaryOptionsTests {
    static func parse(_ arguments: [String], environment: [String: String] = [:]) throws(UsageError) -> Invocation {
        try CommandLineOptions.parse(arguments, environment: { environment[$0] })
    }

    @Test("--peers and --state-dir, or their variables, configure the guard; it is off by default")
    func configured() throws {
        guard case .check(let plain) = try Self.parse([]) else { Issue.record("not a check"); return }
        #expect(plain.peers.isEmpty)
        #expect(plain.fenceFile.path == "/var/lib/pgsqlchk/fence")
        guard case .check(let given) = try Self.parse(["--peers=db1,db2:5433", "-S", "/srv/state"]) else { Issue.record("not a check"); return }
        #expect(given.peers == [PeerAddress(host: "db1", port: nil), PeerAddress(host: "db2", port: "5433")])
        #expect(given.fenceFile.path == "/srv/state/fence")
        let environment = ["PGSQLCHK_PEERS": "[::1]:5432", "PGSQLCHK_STATE_DIR": "/srv/s/"]
        guard case .check(let fromEnvironment) = try Self.parse([], environment: environment) else { Issue.record("not a check"); return }
        #expect(fromEnvironment.peers == [PeerAddress(host: "::1", port: "5432")])
        #expect(fromEnvironment.fenceFile.path == "/srv/s/fence")
    }

    @Test("a malformed peer list or a relative state directory is a usage error that names it", arguments: [
        (["--peers=db1,,db2"], "--peers must be \(PeerAddress.accepted), not \"db1,,db2\""),
        (["--state-dir=state"], "--state-dir must be an absolute path, not \"state\""),
    ])
    func refused(arguments: [String], message: String) {
        #expect(throws: UsageError.self) { try Self.parse(arguments) }
        do { _ = try Self.parse(arguments) } catch { #expect(error.description == message) }
    }

    @Test("--clear-fence asks for the configured state directory's fence file")
    func clearFence() throws {
        #expect(try Self.parse(["--clear-fence", "--state-dir=/srv/state"]) == .clearFence(FenceFile(stateDirectory: "/srv/state")))
    }
}
