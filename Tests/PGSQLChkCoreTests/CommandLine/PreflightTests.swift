import Testing
@testable import PGSQLChkCore
#if canImport(Glibc)
import Glibc
#endif

@Suite("Preflight: what it sees, judged line by line")
struct PreflightTests {
    static let system = "7714142357752938336"
    static let primary = NodePosition(inRecovery: false, timeline: 2, systemIdentifier: system, startedAt: "1700000000.000001", port: "5432")
    static let standby = NodePosition(inRecovery: true, timeline: 2, systemIdentifier: system, startedAt: "1700000100.5", port: "5433")

    static func login(_ position: NodePosition = primary, readsAllStats: Bool = true, superuser: Bool = false,
                      duration: Int = 4) -> Preflight.Login {
        Preflight.Login(state: NodeState(inRecovery: position.inRecovery, serverVersion: "15.18", timeline: position.timeline),
                        position: position, role: "pgsqlchk", readsAllStats: readsAllStats, superuser: superuser,
                        duration: Milliseconds(duration))
    }

    static func peer(_ name: String, _ outcome: Result<NodePosition, ProbeFailure>) -> PeerReport {
        PeerReport(peer: PeerAddress(host: name, port: "5432"), outcome: outcome)
    }

    /// A healthy deployment's observations: every line ok.
    static func healthy(peers: [PeerReport]? = [peer("db1", .success(primary)), peer("db2", .success(standby))]) -> Preflight.Observations {
        Preflight.Observations(login: .success(login()), peers: peers, stateDirectory: .usable, fence: .absent,
                               cacheDirectory: nil, drain: .absent, drainDirectoryExists: true, effectiveUser: 103, clustersOnHost: 1)
    }

    static var guarded: Configuration {
        var configuration = Configuration()
        configuration.peers = [PeerAddress(host: "db1", port: "5432"), PeerAddress(host: "db2", port: "5432")]
        return configuration
    }

    /// The grade and subject of every line that is not ok.
    static func complaints(_ observations: Preflight.Observations, _ configuration: Configuration = guarded) -> [String] {
        Preflight.findings(observations, configuration: configuration).filter { $0.grade != .ok }.map { "\($0.grade.rawValue) \($0.subject)" }
    }

    @Test("a healthy guarded primary passes every line, and says what it checked")
    func healthyDeployment() {
        let findings = Preflight.findings(Self.healthy(), configuration: Self.guarded)
        #expect(findings.allSatisfy { $0.grade == .ok })
        #expect(findings.map(\.subject) == ["login", "privileges", "peer db1:5432", "peer db2:5432",
                                            "state directory /var/lib/pgsqlchk", "drain file /etc/pgsqlchk/maintenance"])
        #expect(findings[0].detail == "PostgreSQL 15.18, primary on timeline 2, as role pgsqlchk, in 0.004s of the 1.5s deadline")
        #expect(findings[3].detail == "standby on timeline 2, same cluster")
    }

    @Test("each peer that cannot vouch for the guard is a problem that names it", arguments: [
        (peer("db2", .failure(.authenticationFailed(detail: "password authentication failed"))), "FAIL peer db2:5432"),
        (peer("db2", .failure(.timedOut(phase: .resolving))), "FAIL peer db2:5432"),
        (peer("db2", .success(NodePosition(inRecovery: true, timeline: 1, systemIdentifier: "42", startedAt: "1", port: "5432"))), "FAIL peer db2:5432"),
        (peer("db2", .success(NodePosition(inRecovery: false, timeline: 3, systemIdentifier: system, startedAt: "2", port: "5432"))), "FAIL peer db2:5432"),
        (peer("db2", .success(NodePosition(inRecovery: false, timeline: 2, systemIdentifier: system, startedAt: "2", port: "5432"))), "FAIL peer db2:5432"),
    ] as [(PeerReport, String)])
    func peerProblems(report: PeerReport, complaint: String) {
        #expect(Self.complaints(Self.healthy(peers: [Self.peer("db1", .success(Self.primary)), report])) == [complaint])
    }

    @Test("on a standby, a primary peer on its timeline is its primary, not a rival")
    func standbyPeers() {
        var observations = Self.healthy(peers: [Self.peer("db1", .success(Self.primary)), Self.peer("db2", .success(Self.standby))])
        observations.login = .success(Self.login(Self.standby))
        #expect(Self.complaints(observations) == [])
    }

    /// One thing a deployment gets wrong, applied to healthy observations.
    enum Fault: String, CaseIterable, Sendable {
        case loginRefused, loginPastDeadline, loginPastHalfDeadline, noMonitorRole, superuserRole, thisNodeNotInPeers
        case stateDirectoryNotOwn, fenced, drained, drainDirectoryMissing, runAsRoot, severalClusters, cacheDirectoryUnusable

        func apply(to observations: inout Preflight.Observations) {
            switch self {
            case .loginRefused: observations.login = .failure(.authenticationFailed(detail: "peer authentication failed"))
            case .loginPastDeadline: observations.login = .success(login(duration: 1_600))
            case .loginPastHalfDeadline: observations.login = .success(login(duration: 800))
            case .noMonitorRole: observations.login = .success(login(readsAllStats: false))
            case .superuserRole: observations.login = .success(login(superuser: true))
            case .thisNodeNotInPeers: observations.peers = [peer("db2", .success(standby))]
            case .stateDirectoryNotOwn: observations.stateDirectory = .unusable(reason: "owned by uid 0")
            case .fenced:
                observations.fence = .fence(Fence(systemIdentifier: system, timeline: 2, newerNode: "db2:5432",
                                                  newerRole: "primary", newerTimeline: 3))
            case .drained: observations.drain = .present
            case .drainDirectoryMissing: observations.drainDirectoryExists = false
            case .runAsRoot: observations.effectiveUser = 0
            case .severalClusters: observations.clustersOnHost = 2
            case .cacheDirectoryUnusable: observations.cacheDirectory = .unusable(reason: "must belong to uid 103")
            }
        }
    }

    @Test("what the deployment gets wrong around the server, line by line", arguments: [
        (Fault.loginRefused, ["FAIL login"]),
        (.loginPastDeadline, ["FAIL login"]),
        (.loginPastHalfDeadline, ["warn login"]),
        (.noMonitorRole, ["warn privileges"]),
        (.superuserRole, ["warn privileges"]),
        (.thisNodeNotInPeers, ["warn peers"]),
        (.stateDirectoryNotOwn, ["FAIL state directory /var/lib/pgsqlchk"]),
        (.fenced, ["FAIL fence"]),
        (.drained, ["warn drain file /etc/pgsqlchk/maintenance"]),
        (.drainDirectoryMissing, ["FAIL drain file /etc/pgsqlchk/maintenance"]),
        (.runAsRoot, ["warn user"]),
        (.severalClusters, ["warn host"]),
        (.cacheDirectoryUnusable, ["FAIL result cache /run/pgsqlchk"]),
    ] as [(Fault, [String])])
    func deploymentProblems(fault: Fault, complaints: [String]) {
        var observations = Self.healthy()
        fault.apply(to: &observations)
        #expect(Self.complaints(observations) == complaints)
    }

    @Test("a configured lag limit makes a role without pg_monitor a problem, not a warning")
    func lagNeedsMonitor() {
        var configuration = Self.guarded
        configuration.question.requirements.maximumLagBytes = 16 << 20
        var observations = Self.healthy()
        observations.login = .success(Self.login(readsAllStats: false))
        #expect(Self.complaints(observations, configuration) == ["FAIL privileges"])
    }

    @Test("without --peers the guard is reported off, and neither the state directory nor a fence is judged")
    func unguarded() {
        var observations = Self.healthy(peers: nil)
        observations.stateDirectory = .unusable(reason: "missing")
        #expect(Self.complaints(observations, Configuration()) == ["warn peers"])
    }

    @Test("a directory of this user's is writable; another's is named with both uids")
    func stateDirectory() throws {
        var template = Array("/tmp/pgsqlchk-preflight-XXXXXX".utf8CString)
        let path = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer { rmdir(path) }
        #expect(Preflight.writableDirectory(path) == .usable)
        #expect(Preflight.privateDirectory(path) == .usable)
        chmod(path, 0o755)
        #expect(Preflight.privateDirectory(path) == .unusable(reason: "must belong to uid \(geteuid()) with mode 0700 (owner uid \(geteuid()), mode 755)"))
        #expect(Preflight.writableDirectory(path + "/missing") == .unusable(reason: "cannot be used: No such file or directory"))
        #expect(Preflight.privateDirectory(path + "/missing") == .usable)
    }
}

@Suite("Preflight: the write quorum")
struct PreflightQuorumTests {
    typealias Base = PreflightTests

    static func quorumLine(_ quorum: Quorum, peers: [PeerReport], login: NodePosition = Base.primary) -> String? {
        var configuration = Base.guarded
        configuration.quorum = quorum
        var observations = Base.healthy(peers: peers)
        observations.login = .success(Base.login(login))
        return Preflight.findings(observations, configuration: configuration).first { $0.subject.hasPrefix("quorum") }
            .map { "\($0.grade.rawValue) \($0.subject): \($0.detail)" }
    }

    @Test("the quorum is judged against the nodes the list and this node make, and on a primary against those reached", arguments: [
        (Quorum.majority, [Base.peer("db1", .success(Base.primary)), Base.peer("db2", .success(Base.standby))], Base.primary,
         "ok   quorum majority: reached 2 of 2, needs 2 (quorum majority)"),
        (.nodes(3), [Base.peer("db1", .success(Base.primary)), Base.peer("db2", .success(Base.standby))], Base.primary,
         "FAIL quorum 3: needs 3 nodes, but the cluster has 2 (--peers, this node included): a primary always answers 503"),
        (.all, [Base.peer("db1", .success(Base.primary)), Base.peer("db2", .failure(.timedOut(phase: .connecting)))], Base.primary,
         "FAIL quorum all: reached 1 of 2, needs 2 (quorum all): this primary answers 503 until it reaches more nodes"),
        (.all, [Base.peer("db1", .success(Base.primary)), Base.peer("db2", .failure(.timedOut(phase: .connecting)))], Base.standby,
         "ok   quorum all: needs 3 of 3 nodes on a primary"),
    ] as [(Quorum, [PeerReport], NodePosition, String)])
    func judged(quorum: Quorum, peers: [PeerReport], login: NodePosition, line: String) {
        #expect(Self.quorumLine(quorum, peers: peers, login: login) == line)
    }
}
