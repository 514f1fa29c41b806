import Testing
@testable import PGSQLChkCore

@Suite("Cluster view: one row per node from one round")
struct ClusterViewTests {
    static let system = "7714142357752938336"

    static func node(_ host: String, recovery: Bool, timeline: Int = 1, system: String = system, started: String? = nil,
                     details: MemberDetails, senders: [StreamingStandby] = []) -> PeerReport {
        var position = NodePosition(inRecovery: recovery, timeline: timeline, systemIdentifier: system,
                                    startedAt: started ?? "started \(host)", port: "5432", standbys: senders)
        position.member = details
        return PeerReport(peer: PeerAddress(host: host, port: "5432"), outcome: .success(position))
    }

    static func primary(_ host: String, at lsn: String, timeline: Int = 1, senders: [StreamingStandby] = []) -> PeerReport {
        node(host, recovery: false, timeline: timeline, details: MemberDetails(walPosition: lsn, receiver: .notApplicable), senders: senders)
    }

    static func standby(_ host: String, replayed lsn: String, timeline: Int = 1, receiver: WALReceiver = .running(status: "streaming", silence: nil),
                        name: String? = nil) -> PeerReport {
        node(host, recovery: true, timeline: timeline,
             details: MemberDetails(receivedPosition: lsn, replayedPosition: lsn, receiver: receiver,
                                    identity: StandbyIdentity(systemIdentifier: system, slotName: nil, applicationName: name ?? host)))
    }

    static func down(_ host: String) -> PeerReport {
        PeerReport(peer: PeerAddress(host: host, port: "5432"), outcome: .failure(.noResponse(detail: "refused")))
    }

    static func sender(_ name: String, _ syncState: String) -> StreamingStandby {
        StreamingStandby(applicationName: name, slotName: nil, syncState: syncState)
    }

    static func position(_ report: PeerReport) -> NodePosition {
        guard case .success(let position) = report.outcome else { fatalError("not an answer") }
        return position
    }

    /// The rows `local` (one of `peers`) shows, the guard deciding for it
    /// as a primary's check would.
    static func rows(_ peers: [PeerReport], local: PeerReport, fence: GuardDecision? = nil) -> [ClusterMember] {
        let own = position(local)
        var state = NodeState(inRecovery: own.inRecovery, timeline: own.timeline)
        state.position = own
        state.peers = peers
        var report = own.inRecovery ? nil : StalePrimaryGuard.decide(local: own, peers: peers)
        if let fence { report?.decision = fence }
        return ClusterView.members(of: state, guardReport: report)
    }

    static let db1 = primary("db1", at: "0/3000100", senders: [sender("db2", "sync"), sender("db3", "async")])
    static let db2 = standby("db2", replayed: "0/3000000")
    static let db3 = standby("db3", replayed: "0/3000100")

    @Test("a primary, a synchronous and an asynchronous standby: lag is the primary's position minus the replay position")
    func healthyCluster() {
        #expect(Self.rows([Self.db1, Self.db2, Self.db3], local: Self.db2) == [
            ClusterMember(name: "db1:5432", role: "primary", state: "running", timeline: 1, lsn: "0/3000100", guardVerdict: "serving"),
            ClusterMember(name: "db2:5432", role: "standby", state: "streaming", timeline: 1, lsn: "0/3000000", lag: 256, syncState: "sync"),
            ClusterMember(name: "db3:5432", role: "standby", state: "streaming", timeline: 1, lsn: "0/3000100", lag: 0, syncState: "async"),
        ])
    }

    @Test("each row, in the cases an admin looks at the view for", arguments: [
        // A peer that cannot be asked says why, as peers_unreachable does.
        ([db1, db2, down("db3")], 2, ClusterMember(name: "db3:5432", state: "unreachable", reason: "no response from server")),
        // Another initdb: shown, never compared.
        ([db1, node("other", recovery: false, system: "1234", details: MemberDetails(walPosition: "0/1", receiver: .notApplicable))], 1,
         ClusterMember(name: "other:5432", role: "primary", state: "running", timeline: 1,
                       reason: "another cluster: system identifier 1234")),
        // A standby left on an old timeline: its LSN distance means nothing.
        ([primary("db1", at: "0/5000000", timeline: 2, senders: [sender("db3", "async")]), standby("db2", replayed: "0/3000000")], 1,
         ClusterMember(name: "db2:5432", role: "standby", state: "streaming", timeline: 1, lsn: "0/3000000",
                       reason: "db1:5432 streams to no standby with application_name 'db2', and this standby is on timeline 1, the primary on 2")),
        // Streaming through another standby.
        ([db1, standby("db4", replayed: "0/3000080")], 1,
         ClusterMember(name: "db4:5432", role: "standby", state: "streaming", timeline: 1, lsn: "0/3000080", lag: 128, syncState: "cascading")),
        // Without pg_monitor the receiver is hidden, and so is how the primary knows it.
        ([db1, node("db2", recovery: true, details: MemberDetails(replayedPosition: "0/3000000", receiver: .notVisible,
                                                                    identity: StandbyIdentity(systemIdentifier: system, slotName: nil, applicationName: nil)))], 1,
         ClusterMember(name: "db2:5432", role: "standby", state: "unknown", timeline: 1, lsn: "0/3000000", lag: 256,
                       reason: "synchronous state unknown: this standby's WAL receiver is not visible to the monitoring role (grant pg_monitor)")),
        // A stopped receiver streams from no one: its lag still shows, no sync_state is looked up.
        ([db1, node("db3", recovery: true, details: MemberDetails(replayedPosition: "0/3000000", receiver: .stopped,
                                                                    identity: StandbyIdentity(systemIdentifier: system, slotName: nil, applicationName: nil)))], 1,
         ClusterMember(name: "db3:5432", role: "standby", state: "stopped", timeline: 1, lsn: "0/3000000", lag: 256)),
        // No primary answered: no lag, and the reason.
        ([down("db1"), db2], 1,
         ClusterMember(name: "db2:5432", role: "standby", state: "streaming", timeline: 1, lsn: "0/3000000",
                       reason: "synchronous state unknown: no primary among the peers: db1:5432 (no response from server), db2:5432 (standby)")),
    ] as [([PeerReport], Int, ClusterMember)])
    func row(peers: [PeerReport], index: Int, expected: ClusterMember) {
        #expect(Self.rows(peers, local: Self.db2)[index] == expected)
    }

    @Test("the guard column: this node's own verdict, fence included; another primary's from the same answers")
    func guardVerdicts() {
        let old = Self.primary("db1", at: "0/3000100")
        let newer = Self.primary("db2", at: "0/4000000", timeline: 2)
        let rows = Self.rows([old, newer, Self.down("db3")], local: old)
        #expect(rows.map(\.guardVerdict) == ["stale primary: db2:5432 is primary on timeline 2, this node is primary on timeline 1", "serving", nil])
        let fence = Fence(systemIdentifier: Self.system, timeline: 1, newerNode: "db2:5432", newerRole: "primary", newerTimeline: 2)
        let fenced = Self.rows([old, Self.down("db2")], local: old, fence: .fenced(fence))
        #expect(fenced[0].guardVerdict == "stale primary (fenced): db2:5432 was primary on timeline 2, this node is primary on timeline 1")
        let rivals = Self.rows([Self.primary("db1", at: "0/1"), Self.primary("db3", at: "0/2")], local: Self.primary("db1", at: "0/1"))
        #expect(rivals.map(\.guardVerdict) == ["two primaries on timeline 1: this node and db3:5432; stop or rewind one",
                                               "two primaries on timeline 1: this node and db1:5432; stop or rewind one"])
    }

    @Test("without --peers only this node's row, named local; a node that did not answer has none")
    func withoutPeers() {
        var state = NodeState(inRecovery: true, timeline: 1)
        state.position = Self.position(Self.db2)
        #expect(ClusterView.members(of: state, guardReport: nil) == [
            ClusterMember(name: "local", role: "standby", state: "streaming", timeline: 1, lsn: "0/3000000", reason: "synchronous state unknown: only the primary knows it; list the nodes with --peers"),
        ])
        state.position = Self.position(Self.db1)
        #expect(ClusterView.members(of: state, guardReport: nil).map(\.guardVerdict) == [nil], "no --peers, no guard")
        #expect(ClusterView.members(of: nil, guardReport: nil) == [])
    }

    @Test("only the cluster view asks the nodes for WAL positions and receivers: every other question and output keeps its statements",
          arguments: Endpoint.allCases)
    func ordinaryChecksDoNotPay(endpoint: Endpoint) {
        var configuration = Configuration()
        configuration.peers = [PeerAddress(host: "db2", port: nil)]
        let request = CheckRequest(endpoint: endpoint)
        for mode in [Mode.checkConnection, .byHand(.http), .byHand(.summary), .byHand(.json), .byHand(.none), .byHand(.cluster)] {
            let check = HealthCheck(configuration: configuration, mode: mode, diagnostics: Diagnostics.forThisProcess(),
                                    deadline: Deadline(after: Milliseconds(1_000)))
            let depth = check.depth(for: request)
            let viewed = endpoint == .cluster && mode != .byHand(.summary) && mode != .byHand(.json) || mode == .byHand(.cluster)
            #expect((depth == .cluster) == viewed, "\(endpoint) \(mode)")
            #expect((depth.peerStatement == .member) == viewed, "\(endpoint) \(mode)")
            #expect((depth.positionStatement == .member) == viewed, "\(endpoint) \(mode)")
            if viewed { #expect(check.asksPeers(request), "the view asks every peer") }
        }
    }

    @Test("the depths' statements: peers get the position, /synchronous adds the senders, the view its positions and receivers", arguments: [
        (ProbeDepth.role, Statement.position, Statement.position), (.replication, .position, .position), (.connectionSlots, .position, .position),
        (.synchrony, .position, .standbyList), (.cluster, .member, .member),
    ])
    func statements(depth: ProbeDepth, own: Statement, peers: Statement) {
        #expect(depth.positionStatement == own)
        #expect(depth.peerStatement == peers)
    }

    @Test("WAL positions read as PostgreSQL prints them; anything else is unknown", arguments: [
        ("0/3000148", UInt64(0x3000148)), ("16/B374D848", UInt64(0x16_B374_D848)), ("FFFFFFFF/FFFFFFFF", UInt64.max),
        ("0/0", 0), ("", nil), ("3000148", nil), ("0/", nil), ("/1", nil), ("1/2/3", nil), ("0/+1", nil), ("0/G", nil), ("100000000/0", nil),
    ] as [(String, UInt64?)])
    func walPosition(text: String, offset: UInt64?) {
        #expect(WALPosition(text)?.offset == offset)
    }

    @Test("bytes between positions never go negative: a position read a moment later may be ahead")
    func walDistance() throws {
        let primary = try #require(WALPosition("1/0")), standby = try #require(WALPosition("0/FFFFFF00"))
        #expect(primary.bytes(after: standby) == 256)
        #expect(standby.bytes(after: primary) == 0)
    }
}

@Suite("Cluster view: JSON and table")
struct ClusterDocumentTests {
    static func verdict(_ peers: [PeerReport], local: PeerReport) -> Verdict {
        let own = ClusterViewTests.position(local)
        var state = NodeState(inRecovery: own.inRecovery, timeline: own.timeline)
        state.position = own
        state.peers = peers
        return Verdict(answer: .serves(weight: 100), body: own.role, state: state,
                       guardReport: own.inRecovery ? nil : StalePrimaryGuard.decide(local: own, peers: peers))
    }

    static let cluster = verdict([ClusterViewTests.db1, ClusterViewTests.db2, ClusterViewTests.down("db3")], local: ClusterViewTests.db1)

    @Test("the table: a header of the column names, each column as wide as its widest cell, - for unknown")
    func table() {
        #expect(ClusterDocument.table(of: Self.cluster) == """
            name      role     state        timeline  lsn        lag  sync_state  guard    problem
            db1:5432  primary  running      1         0/3000100  -    -           serving  -
            db2:5432  standby  streaming    1         0/3000000  256  sync        -        -
            db3:5432  -        unreachable  -         -          -    -           -        no response from server

            """)
    }

    @Test("the JSON document: the check's status and reason, and the same rows under the same names")
    func json() {
        #expect(ClusterDocument.json(of: Self.cluster) == """
            {"status": 200, "reason": null, "members": [\
            {"name": "db1:5432", "role": "primary", "state": "running", "timeline": 1, "lsn": "0/3000100", "lag": null, "sync_state": null, "guard": "serving", "problem": null}, \
            {"name": "db2:5432", "role": "standby", "state": "streaming", "timeline": 1, "lsn": "0/3000000", "lag": 256, "sync_state": "sync", "guard": null, "problem": null}, \
            {"name": "db3:5432", "role": null, "state": "unreachable", "timeline": null, "lsn": null, "lag": null, "sync_state": null, "guard": null, "problem": "no response from server"}]}
            """)
    }

    @Test("JSON keys and table header are one list of names, in one order")
    func sameColumns() throws {
        let header = try #require(ClusterDocument.table(of: Self.cluster).split(separator: "\n").first)
        #expect(header.split(separator: " ").map(String.init) == ClusterDocument.Column.allCases.map(\.rawValue))
        let json = ClusterDocument.json(of: Self.cluster)
        let firstMember = try #require(json.split(separator: "{").dropFirst().first)
        let keys = firstMember.split(separator: ", \"").map { String($0.drop { $0 == "\"" }.prefix { $0 != "\"" }) }
        #expect(keys == ClusterDocument.Column.allCases.map(\.rawValue))
    }

    @Test("a node that did not answer: the 503's reason, no rows")
    func unavailable() {
        let verdict = Verdict(for: CheckRequest(endpoint: .cluster), outcome: .failure(.noResponse(detail: "refused")), drain: .absent)
        #expect(verdict.status == .serviceUnavailable)
        #expect(ClusterDocument.json(of: verdict) == #"{"status": 503, "reason": "no response from server", "members": []}"#)
        #expect(ClusterDocument.table(of: verdict) == "unavailable: no response from server\n")
    }

    @Test("GET /cluster is JSON with the view; HEAD the same headers without the body; Accept changes nothing")
    func http() throws {
        let get = try CheckRequest.parse(target: "/cluster", defaults: StandbyRequirements())
        #expect(get.endpoint == .cluster)
        #expect(get.format == .cluster)
        #expect(get.depth == .cluster)
        let verdict = Verdict(for: get, outcome: .success(Self.cluster.state!), drain: .absent, guardReport: Self.cluster.guardReport)
        #expect(verdict.status == .ok)
        let body = ClusterDocument.json(of: verdict) + "\n"
        let full = String(decoding: HTTPResponse.render(verdict, format: get.format), as: UTF8.self)
        #expect(full.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"))
        #expect(full.hasSuffix("\r\n\r\n" + body))
        let head = String(decoding: HTTPResponse.render(verdict, format: get.format, omitsBody: true), as: UTF8.self)
        #expect(head + body == full)
    }
}
