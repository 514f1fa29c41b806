#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PGSQLChkCore

@Suite("Stale-primary guard: the decision table")
struct StalePrimaryGuardTests {
    static let system = "7714142357752938336"
    static let local = NodePosition(inRecovery: false, timeline: 2, systemIdentifier: system, startedAt: "1700000000.000001", port: "5432")

    static func peer(_ name: String) -> PeerAddress { PeerAddress(host: name, port: "5432") }

    static func answer(_ name: String, standby: Bool, timeline: Int, system: String = system,
                       startedAt: String = "1700000500.5") -> PeerReport {
        PeerReport(peer: peer(name), outcome: .success(NodePosition(inRecovery: standby, timeline: timeline,
                                                                    systemIdentifier: system, startedAt: startedAt, port: "5432")))
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
        #expect(!fence.applies(to: NodePosition(inRecovery: false, timeline: 4, systemIdentifier: Self.system, startedAt: "1", port: "5432")))
        #expect(!fence.applies(to: NodePosition(inRecovery: false, timeline: 2, systemIdentifier: "99", startedAt: "1", port: "5432")))
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
        #expect(AgentReply.line(for: verdict)
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

    @Test("a peer looked up ahead is reached at its addresses, its name repeated for the password file and TLS")
    func resolvedPairs() {
        let local = ConnectionSettings(host: "/run/postgresql", port: "5432")
        let pairs = local.reaching(PeerAddress(host: "db2", port: "5433"), at: ["10.0.0.2", "fd00::2"]).libpqPairs
        #expect(pairs.suffix(3).map(\.keyword) == ["host", "port", "hostaddr"])
        #expect(pairs.suffix(3).map(\.value) == ["db2,db2", "5433", "10.0.0.2,fd00::2"])
    }

    @Test("only a host name is looked up: addresses and socket directories go to libpq as they are", arguments: [
        ("db2.example.com", true), ("localhost", true), ("10.0.0.2", false), ("fd00::2", false), ("::1", false),
        ("/run/postgresql", false), ("@pgsqlchk", false),
    ])
    func lookupNeeded(host: String, needed: Bool) {
        #expect(HostLookup.isNeeded(for: host) == needed)
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
        #expect(plain.stateDirectory == "/var/lib/pgsqlchk")
        guard case .check(let given) = try Self.parse(["--peers=db1,db2:5433", "-S", "/srv/state"]) else { Issue.record("not a check"); return }
        #expect(given.peers == [PeerAddress(host: "db1", port: nil), PeerAddress(host: "db2", port: "5433")])
        #expect(given.stateDirectory == "/srv/state")
        let environment = ["PGSQLCHK_PEERS": "[::1]:5432", "PGSQLCHK_STATE_DIR": "/srv/s/"]
        guard case .check(let fromEnvironment) = try Self.parse([], environment: environment) else { Issue.record("not a check"); return }
        #expect(fromEnvironment.peers == [PeerAddress(host: "::1", port: "5432")])
        #expect(fromEnvironment.stateDirectory == "/srv/s/")
    }

    @Test("a malformed peer list or a relative state directory is a usage error that names it", arguments: [
        (["--peers=db1,,db2"], "--peers must be \(PeerAddress.accepted), not \"db1,,db2\""),
        (["--state-dir=state"], "--state-dir must be an absolute path, not \"state\""),
    ])
    func refused(arguments: [String], message: String) {
        #expect(throws: UsageError.self) { try Self.parse(arguments) }
        do { _ = try Self.parse(arguments) } catch { #expect(error.description == message) }
    }

    @Test("--clear-fence takes the connection options and the state directory, to find the node's own fence file")
    func clearFence() throws {
        var expected = Configuration()
        expected.stateDirectory = "/srv/state"
        expected.connection = ConnectionSettings(host: "/run/postgresql", port: "5433")
        #expect(try Self.parse(["--clear-fence", "--state-dir=/srv/state", "-h", "/run/postgresql", "-p", "5433"]) == .clearFence(expected))
    }
}

@Suite("Stale-primary guard: fences in a shared state directory", .serialized)
struct SharedStateDirectoryTests {
    static let cluster = "7714142357752938336"
    static let stale = NodePosition(inRecovery: false, timeline: 1, systemIdentifier: cluster, startedAt: "1700000000.1", port: "5432")
    static let fence = Fence(systemIdentifier: cluster, timeline: 1, newerNode: "127.0.0.1:5433", newerRole: "primary", newerTimeline: 2)

    static func state(_ position: NodePosition) -> NodeState {
        NodeState(inRecovery: position.inRecovery, timeline: position.timeline, position: position, peers: [])
    }

    /// Runs the guard for `position` on `directory`, returning its report and log.
    static func review(_ position: NodePosition, in directory: String) -> (GuardReport?, [String]) {
        var log: [String] = []
        let report = StalePrimaryGuard.review(state(position), stateDirectory: directory) { log.append($0) }
        return (report, log)
    }

    @Test("no neighbour's check removes or defeats a node's fence: other clusters, the new primary, standbys", arguments: [
        NodePosition(inRecovery: false, timeline: 1, systemIdentifier: "6000000000000000001", startedAt: "1", port: "5440"),
        NodePosition(inRecovery: true, timeline: 1, systemIdentifier: "6000000000000000001", startedAt: "1", port: "5441"),
        NodePosition(inRecovery: false, timeline: 2, systemIdentifier: cluster, startedAt: "2", port: "5433"),
        NodePosition(inRecovery: true, timeline: 2, systemIdentifier: cluster, startedAt: "3", port: "5434"),
        NodePosition(inRecovery: true, timeline: 1, systemIdentifier: cluster, startedAt: "4", port: "5435"),
    ])
    func neighbours(neighbour: NodePosition) throws {
        try FenceFileTests.inStateDirectory { directory throws in
            let file = FenceFile(stateDirectory: directory, node: Self.stale.node)
            #expect(file.write(Self.fence) == nil)
            let (report, log) = Self.review(neighbour, in: directory)
            #expect(report.map { $0.decision.refusal == nil } ?? true, "the neighbour is not fenced by another node's file")
            #expect(log.isEmpty)
            #expect(file.read() == .fence(Self.fence))
            #expect(Self.review(Self.stale, in: directory).0?.decision == .fenced(Self.fence))
        }
    }

    @Test("a node's own check removes its fence once it is a standby, or a primary on another timeline, and says what differed")
    func ownCheck() throws {
        try FenceFileTests.inStateDirectory { directory throws in
            let file = FenceFile(stateDirectory: directory, node: Self.stale.node)
            var rebuilt = Self.stale
            rebuilt.inRecovery = true
            rebuilt.timeline = 2
            #expect(file.write(Self.fence) == nil)
            #expect(Self.review(rebuilt, in: directory).1
                == ["removed the fence file \(file.path): this node (system identifier \(Self.cluster), port 5432) is a standby now"])
            #expect(file.read() == .absent)

            var promoted = Self.stale
            promoted.timeline = 3
            #expect(file.write(Self.fence) == nil)
            let (report, log) = Self.review(promoted, in: directory)
            #expect(report?.decision == .serving)
            #expect(log == ["removed the fence file \(file.path) for timeline 1: this node (system identifier \(Self.cluster), port 5432) is primary on timeline 3 now"])
            #expect(file.read() == .absent)
        }
    }

    @Test("a node's file that names another cluster is corrupt, so fenced, never removed")
    func misnamed() throws {
        try FenceFileTests.inStateDirectory { directory throws in
            let file = FenceFile(stateDirectory: directory, node: Self.stale.node)
            var foreign = Self.fence
            foreign.systemIdentifier = "6000000000000000001"
            #expect(file.write(foreign) == nil)
            let (report, _) = Self.review(Self.stale, in: directory)
            #expect(report?.decision == .fenceUnreadable(reason: "fence file \(file.path) is corrupt: it names system identifier 6000000000000000001"))
            #expect(file.read() == .fence(foreign))
        }
    }

    @Test("the legacy fence file of earlier builds still fences the primary it applies to, and no check removes it")
    func legacy() throws {
        try FenceFileTests.inStateDirectory { directory throws in
            let legacy = FenceFile.legacy(stateDirectory: directory)
            #expect(legacy.write(Self.fence) == nil)
            #expect(Self.review(Self.stale, in: directory).0?.decision == .fenced(Self.fence))
            var newer = Self.stale
            newer.timeline = 2
            newer.port = "5433"
            #expect(Self.review(newer, in: directory).0?.decision == .serving)
            var standby = Self.stale
            standby.inRecovery = true
            #expect(Self.review(standby, in: directory).0 == nil)
            #expect(legacy.read() == .fence(Self.fence))

            let garbage = open(legacy.path, O_WRONLY | O_TRUNC)
            _ = write(garbage, "x\n", 2)
            close(garbage)
            let (report, _) = Self.review(Self.stale, in: directory)
            #expect(report?.decision == .serving, "an unreadable legacy file names no node: reported, not obeyed")
            #expect(report?.fenceFileReason?.hasPrefix("fence file \(legacy.path) is corrupt") == true)
        }
    }
}

@Suite("Stale-primary guard: which checks ask the peers")
struct GuardedEndpointTests {
    @Test("only answers that depend on the peers wait for them; /health, /liveness and /replica never do", arguments: [
        (Endpoint.role, true), (.primary, true), (.readOnly, true), (.readiness, true), (.status, true), (.metrics, true),
        (.synchronous, true), (.asynchronous, true), (.replica, false), (.health, false), (.liveness, false),
    ])
    func asksPeers(endpoint: Endpoint, asks: Bool) {
        var configuration = Configuration()
        configuration.peers = [PeerAddress(host: "db2", port: nil)]
        let check = HealthCheck(configuration: configuration, mode: .byHand(.none), diagnostics: Diagnostics.forThisProcess(),
                                deadline: Deadline(after: Milliseconds(1_000)))
        #expect(check.asksPeers(CheckRequest(endpoint: endpoint)) == asks)
        let unguarded = HealthCheck(configuration: Configuration(), mode: .byHand(.none), diagnostics: Diagnostics.forThisProcess(),
                                    deadline: Deadline(after: Milliseconds(1_000)))
        #expect(!unguarded.asksPeers(CheckRequest(endpoint: endpoint)))
    }
}

@Suite("Stale-primary guard: a guard that reaches no peer shows")
struct GuardVisibilityTests {
    static let local = NodePosition(inRecovery: false, timeline: 1, systemIdentifier: "7714142357752938336", startedAt: "1", port: "5432")
    static let refused = ProbeFailure.authenticationFailed(detail: "password authentication failed")

    static func verdict(_ peers: [PeerReport]) -> Verdict {
        let report = StalePrimaryGuard.decide(local: local, peers: peers)
        return Verdict(for: CheckRequest(endpoint: .status), outcome: .success(NodeState(inRecovery: false, serverVersion: "15.18", timeline: 1)),
                       drain: .absent, guardReport: report)
    }

    static let blind = verdict([
        PeerReport(peer: PeerAddress(host: "db1", port: "5432"), outcome: .failure(refused)),
        PeerReport(peer: PeerAddress(host: "db2", port: "5432"), outcome: .failure(refused)),
        PeerReport(peer: PeerAddress(host: "db3", port: "5432"), outcome: .failure(.timedOut(phase: .resolving))),
    ])
    static let partial = verdict([
        PeerReport(peer: PeerAddress(host: "db1", port: "5432"), outcome: .success(local)),
        PeerReport(peer: PeerAddress(host: "db2", port: "5432"), outcome: .failure(refused)),
    ])

    @Test("the summary line says the guard could not ask its peers")
    func summary() {
        #expect(StatusDocument.summary(of: Self.blind) == "primary, timeline 1, PostgreSQL 15.18, peers: "
            + "db1:5432 unreachable (\(Self.refused.reason)), db2:5432 unreachable (\(Self.refused.reason)), "
            + "db3:5432 unreachable (timeout while looking up the server's host name), "
            + "stale-primary guard could not ask any of its 3 peers: it cannot see a newer primary")
        #expect(StatusDocument.summary(of: Self.partial).hasSuffix("db2:5432 unreachable (\(Self.refused.reason)), stale-primary guard could not ask 1 of 2 peers"))
    }

    @Test("/status counts the peers asked and the unreachable ones by reason")
    func json() {
        #expect(StatusDocument.json(of: Self.blind).contains(
            "\"peers_asked\": 3, \"peers_unreachable\": {\"\(Self.refused.reason)\": 2, \"timeout while looking up the server's host name\": 1}"))
        #expect(StatusDocument.json(of: Self.partial).contains("\"peers_asked\": 2, \"peers_unreachable\": {\"\(Self.refused.reason)\": 1}"))
    }

    @Test("/metrics has a gauge of unreachable peers by reason, only while the guard asked peers")
    func metrics() {
        let text = MetricsDocument.text(of: Self.blind)
        #expect(text.contains("# TYPE pgsqlchk_peers_unreachable gauge\n"
            + "pgsqlchk_peers_unreachable{reason=\"\(Self.refused.reason)\"} 2\n"
            + "pgsqlchk_peers_unreachable{reason=\"timeout while looking up the server's host name\"} 1\n"))
        let fenced = Verdict(for: CheckRequest(endpoint: .metrics), outcome: .success(NodeState(inRecovery: false, timeline: 1)), drain: .absent,
                             guardReport: GuardReport(decision: .fenced(SharedStateDirectoryTests.fence)))
        #expect(!MetricsDocument.text(of: fenced).contains("peers_unreachable"))
    }
}

@Suite("Stale-primary guard: the write quorum")
struct WriteQuorumTests {
    typealias Table = StalePrimaryGuardTests
    static let standby2 = Table.answer("db2", standby: true, timeline: 2)
    static let standby3 = Table.answer("db3", standby: true, timeline: 2)

    @Test("a primary serves only while it reaches the quorum, itself counted once whether the list names it or not", arguments: [
        ([Table.itself, standby2, standby3], Quorum.all, "reached 3 of 3, needs 3 (quorum all)", nil),
        ([Table.itself, standby2, Table.down("db3")], .all, "reached 2 of 3, needs 3 (quorum all)",
         "no write quorum: reached 2 of 3, needs 3 (quorum all)"),
        ([Table.itself, standby2, Table.down("db3")], .majority, "reached 2 of 3, needs 2 (quorum majority)", nil),
        ([Table.itself, Table.down("db2"), Table.down("db3")], .majority, "reached 1 of 3, needs 2 (quorum majority)",
         "no write quorum: reached 1 of 3, needs 2 (quorum majority)"),
        ([Table.itself, Table.down("db2"), Table.down("db3")], .nodes(1), "reached 1 of 3, needs 1 (quorum 1)", nil),
        ([Table.itself, standby2, Table.down("db3"), Table.down("db4")], .majority, "reached 2 of 4, needs 3 (quorum majority)",
         "no write quorum: reached 2 of 4, needs 3 (quorum majority)"),
        // The list without this node: it counts itself on top.
        ([standby2, standby3], .all, "reached 3 of 3, needs 3 (quorum all)", nil),
        ([standby2, Table.down("db3")], .all, "reached 2 of 3, needs 3 (quorum all)", "no write quorum: reached 2 of 3, needs 3 (quorum all)"),
        // An older primary answered: it counts (the guard of that node fences it).
        ([Table.itself, Table.answer("db2", standby: false, timeline: 1), standby3], .all, "reached 3 of 3, needs 3 (quorum all)", nil),
        // Another cluster's server is listed, not reached.
        ([Table.itself, Table.answer("db2", standby: true, timeline: 2, system: "1"), standby3], .all,
         "reached 2 of 3, needs 3 (quorum all)", "no write quorum: reached 2 of 3, needs 3 (quorum all)"),
        // Its own entry cannot be asked: it cannot tell it is listed, and asks for more.
        ([Table.down("db1"), standby2, standby3], .all, "reached 3 of 4, needs 4 (quorum all)",
         "no write quorum: reached 3 of 4, needs 4 (quorum all)"),
    ] as [([PeerReport], Quorum, String, String?)])
    func counted(peers: [PeerReport], quorum: Quorum, count: String, refusal: String?) {
        let report = StalePrimaryGuard.decide(local: Table.local, peers: peers, quorum: quorum)
        #expect(report.quorum?.description == count)
        #expect(report.decision.refusal == refusal)
    }

    @Test("a newer peer or a rival decides before the count, as without a quorum", arguments: [
        ([Table.itself, Table.answer("db2", standby: false, timeline: 3), Table.down("db3")],
         "stale primary: db2:5432 is primary on timeline 3, this node is primary on timeline 2"),
        ([Table.itself, Table.answer("db2", standby: false, timeline: 2), Table.down("db3")],
         "two primaries on timeline 2: this node and db2:5432; stop or rewind one"),
    ] as [([PeerReport], String)])
    func evidenceFirst(peers: [PeerReport], refusal: String) {
        #expect(StalePrimaryGuard.decide(local: Table.local, peers: peers, quorum: .all).decision.refusal == refusal)
    }

    /// Both primaries' decisions in a three-node list where db3 is a
    /// standby, for every pair of timelines and whether each primary
    /// reaches the other and db3.
    static func bothServe(quorum: Quorum) -> [String] {
        var cases: [String] = []
        for (timelineA, timelineB) in [(2, 2), (2, 3), (3, 2)] {
            let a = NodePosition(inRecovery: false, timeline: timelineA, systemIdentifier: Table.system, startedAt: "1", port: "5432")
            let b = NodePosition(inRecovery: false, timeline: timelineB, systemIdentifier: Table.system, startedAt: "2", port: "5432")
            let c = NodePosition(inRecovery: true, timeline: 2, systemIdentifier: Table.system, startedAt: "3", port: "5432")
            for seeEachOther in [false, true] {
                for (aSeesC, bSeesC) in [(false, false), (false, true), (true, false), (true, true)] {
                    func reports(_ me: NodePosition, other: NodePosition, seesC: Bool) -> [PeerReport] {
                        [PeerReport(peer: Table.peer(me == a ? "db1" : "db2"), outcome: .success(me)),
                         seeEachOther ? PeerReport(peer: Table.peer(me == a ? "db2" : "db1"), outcome: .success(other))
                                      : Table.down(me == a ? "db2" : "db1"),
                         seesC ? PeerReport(peer: Table.peer("db3"), outcome: .success(c)) : Table.down("db3")]
                    }
                    let serveA = StalePrimaryGuard.decide(local: a, peers: reports(a, other: b, seesC: aSeesC), quorum: quorum).decision == .serving
                    let serveB = StalePrimaryGuard.decide(local: b, peers: reports(b, other: a, seesC: bSeesC), quorum: quorum).decision == .serving
                    if serveA && serveB {
                        cases.append("timelines \(timelineA)/\(timelineB), see each other \(seeEachOther), db3 seen by \(aSeesC)/\(bSeesC)")
                    }
                }
            }
        }
        return cases
    }

    @Test("with all, two primaries of the list never both serve, however the links are cut")
    func allExcludesTwoPrimaries() {
        #expect(Self.bothServe(quorum: .all).isEmpty)
    }

    @Test("with majority, two primaries that each reach the third node but not each other both serve: the partition it does not cover")
    func majorityGap() {
        #expect(Self.bothServe(quorum: .majority) == [
            "timelines 2/2, see each other false, db3 seen by true/true",
            "timelines 2/3, see each other false, db3 seen by true/true",
            "timelines 3/2, see each other false, db3 seen by true/true",
        ])
        #expect(Self.bothServe(quorum: .majority).count < Self.bothServe(quorum: .nodes(1)).count)
    }

    @Test("a lost quorum writes no fence, so a healed partition serves again; after a promotion on the other side the heal fences")
    func lostQuorumThenHeal() throws {
        try FenceFileTests.inStateDirectory { directory throws in
            let local = Table.local
            func review(_ peers: [PeerReport]) -> (GuardReport?, [String]) {
                var log: [String] = []
                let state = NodeState(inRecovery: false, timeline: local.timeline, position: local, peers: peers)
                let report = StalePrimaryGuard.review(state, stateDirectory: directory, quorum: .majority) { log.append($0) }
                return (report, log)
            }
            let file = FenceFile(stateDirectory: directory, node: local.node)
            let partitioned = [Table.itself, Table.down("db2"), Table.down("db3")]

            let (cut, cutLog) = review(partitioned)
            #expect(cut?.decision.refusal == "no write quorum: reached 1 of 3, needs 2 (quorum majority)")
            #expect(cutLog.first == "no write quorum: reached 1 of 3, needs 2 (quorum majority)")
            #expect(file.read() == .absent)
            #expect(review([Table.itself, Self.standby2, Self.standby3]).0?.decision == .serving)

            #expect(review(partitioned).0?.decision.refusal != nil)
            let promoted = Table.answer("db2", standby: false, timeline: 3)
            let (healed, _) = review([Table.itself, promoted, Table.answer("db3", standby: true, timeline: 2)])
            let fence = Fence(systemIdentifier: Table.system, timeline: 2, newerNode: "db2:5432", newerRole: "primary", newerTimeline: 3)
            #expect(healed?.decision == .stale(fence))
            #expect(file.read() == .fence(fence))
            // Fenced from now on, whatever the peers say: even every node reached.
            #expect(review([Table.itself, Self.standby2, Self.standby3]).0?.decision == .fenced(fence))
        }
    }

    static func verdict(_ endpoint: Endpoint) -> Verdict {
        let report = StalePrimaryGuard.decide(local: Table.local, peers: [Table.itself, Table.down("db2"), Table.down("db3")], quorum: .majority)
        return Verdict(for: CheckRequest(endpoint: endpoint), outcome: .success(NodeState(inRecovery: false, serverVersion: "15.18", timeline: 2)),
                       drain: .absent, guardReport: report)
    }

    @Test("a lost quorum is a 503 that counts, and /status, the summary and /metrics report the count")
    func reported() {
        #expect(Self.verdict(.role).status == .serviceUnavailable)
        #expect(Self.verdict(.role).body == "no write quorum: reached 1 of 3, needs 2 (quorum majority)")
        #expect(StatusDocument.summary(of: Self.verdict(.status)).contains(
            ", quorum: reached 1 of 3, needs 2 (quorum majority), stale-primary guard could not ask 2 of 3 peers"))
        let json = StatusDocument.json(of: Self.verdict(.status))
        #expect(json.contains("\"decision\": \"quorum lost\", \"reason\": \"no write quorum: reached 1 of 3, needs 2 (quorum majority)\""))
        #expect(json.contains("\"quorum\": {\"setting\": \"majority\", \"reached\": 1, \"members\": 3, \"needed\": 2}"))
        let metrics = MetricsDocument.text(of: Self.verdict(.metrics))
        #expect(metrics.contains("pgsqlchk_quorum_reached_nodes 1\n"))
        #expect(metrics.contains("pgsqlchk_quorum_needed_nodes 2\n"))
        #expect(metrics.contains("pgsqlchk_stale_primary_refused 1\n"))
        let unguarded = Verdict(for: CheckRequest(endpoint: .metrics), outcome: .success(NodeState(inRecovery: false, timeline: 2)), drain: .absent,
                                guardReport: StalePrimaryGuard.decide(local: Table.local, peers: [Table.itself]))
        #expect(!MetricsDocument.text(of: unguarded).contains("quorum"))
        #expect(!StatusDocument.json(of: unguarded).contains("quorum"))
    }

    @Test("--quorum and PGSQLCHK_QUORUM set the quorum; it is off by default")
    func configured() throws {
        let parse = StalePrimaryOptionsTests.parse
        guard case .check(let plain) = try parse(["--peers=db1,db2,db3"], [:]) else { Issue.record("not a check"); return }
        #expect(plain.quorum == nil)
        for (arguments, environment, quorum) in [
            (["-P", "db1,db2,db3", "--quorum=all"], [:], Quorum.all),
            (["-P", "db1,db2,db3", "-Q", "majority"], [:], .majority),
            (["-P", "db1,db2,db3", "--quorum", "4"], ["PGSQLCHK_QUORUM": "all"], .nodes(4)),
            ([], ["PGSQLCHK_PEERS": "db1,db2", "PGSQLCHK_QUORUM": "majority"], .majority),
        ] as [([String], [String: String], Quorum)] {
            guard case .check(let configuration) = try parse(arguments, environment) else { Issue.record("not a check"); continue }
            #expect(configuration.quorum == quorum)
        }
    }

    @Test("a quorum without peers, of no node, or of more nodes than the list and this one is a usage error", arguments: [
        (["--quorum=all"], [:], "--quorum must be used with --peers (PGSQLCHK_PEERS), whose nodes it counts, not \"all\""),
        ([], ["PGSQLCHK_QUORUM": "majority"], "PGSQLCHK_QUORUM must be used with --peers (PGSQLCHK_PEERS), whose nodes it counts, not \"majority\""),
        (["-P", "db1,db2", "--quorum=0"], [:], "--quorum must be \(Quorum.accepted), not \"0\""),
        (["-P", "db1,db2", "--quorum=most"], [:], "--quorum must be \(Quorum.accepted), not \"most\""),
        (["-P", "db1,db2", "--quorum=-1"], [:], "--quorum must be \(Quorum.accepted), not \"-1\""),
        (["-P", "db1,db2", "--quorum=4"], [:], "--quorum must be at most 3, the 2 nodes of --peers and this one, not \"4\""),
    ] as [([String], [String: String], String)])
    func refused(arguments: [String], environment: [String: String], message: String) {
        #expect(throws: UsageError.self) { try StalePrimaryOptionsTests.parse(arguments, environment: environment) }
        do { _ = try StalePrimaryOptionsTests.parse(arguments, environment: environment) } catch { #expect(error.description == message) }
    }
}
