import Testing
@testable import PGSQLChkCore

@Suite("Synchronous standbys: what the primary says of this one")
struct SynchronyTests {
    static let system = "7714142357752938336"
    static let byName = StandbyIdentity(systemIdentifier: system, slotName: nil, applicationName: "db2")
    static let bySlot = StandbyIdentity(systemIdentifier: system, slotName: "db2_slot", applicationName: "walreceiver")

    static func sender(_ name: String, _ syncState: String, slot: String? = nil) -> StreamingStandby {
        StreamingStandby(applicationName: name, slotName: slot, syncState: syncState)
    }

    static func primary(_ host: String, timeline: Int = 2, system: String = system, _ senders: [StreamingStandby]) -> PeerReport {
        PeerReport(peer: PeerAddress(host: host, port: "5432"),
                   outcome: .success(NodePosition(inRecovery: false, timeline: timeline, systemIdentifier: system,
                                                  startedAt: "1700000000.5", port: "5432", standbys: senders)))
    }

    static func standby(_ host: String) -> PeerReport {
        PeerReport(peer: PeerAddress(host: host, port: "5432"),
                   outcome: .success(NodePosition(inRecovery: true, timeline: 2, systemIdentifier: system, startedAt: "1700000001.5", port: "5432")))
    }

    static func down(_ host: String) -> PeerReport {
        PeerReport(peer: PeerAddress(host: host, port: "5432"), outcome: .failure(.noResponse(detail: "refused")))
    }

    @Test("the primary among the peers decides; this standby is found by slot, else by application_name", arguments: [
        (byName, [standby("db2"), primary("db1", [sender("db2", "sync"), sender("db3", "async")])],
         Synchrony.synchronous(primary: "db1:5432", syncState: "sync")),
        (byName, [primary("db1", [sender("db2", "quorum")])], .synchronous(primary: "db1:5432", syncState: "quorum")),
        (byName, [primary("db1", [sender("db2", "potential")])], .asynchronous(primary: "db1:5432", syncState: "potential")),
        (byName, [down("db3"), primary("db1", [sender("db2", "async"), sender("pg_basebackup", "async")])],
         .asynchronous(primary: "db1:5432", syncState: "async")),
        (bySlot, [primary("db1", [sender("walreceiver", "async"), sender("walreceiver", "sync", slot: "db2_slot")])],
         .synchronous(primary: "db1:5432", syncState: "sync")),
        (byName, [primary("db1", [sender("db3", "sync")])], .cascading(primary: "db1:5432")),
        (byName, [primary("db1", timeline: 3, [sender("db3", "sync")])],
         .unknown(reason: "db1:5432 streams to no standby with application_name 'db2', and this standby is on timeline 2, the primary on 3")),
        (byName, [primary("old", timeline: 1, [sender("db2", "async")]), primary("new", timeline: 2, [sender("db2", "sync")])],
         .synchronous(primary: "new:5432", syncState: "sync")),
        (byName, [primary("db1", [sender("db2", "sync")]), primary("db3", [sender("db2", "async")])],
         .unknown(reason: "synchronous state unknown: two primaries on timeline 2: db1:5432 and db3:5432")),
        (byName, [primary("other", system: "1234", [sender("db2", "sync")]), standby("db3"), down("db1")],
         .unknown(reason: "synchronous state unknown: no primary among the peers: other:5432 (other cluster), db3:5432 (standby), db1:5432 (no response from server)")),
        (byName, [primary("db1", [sender("db2", "sync"), sender("db2", "async")])],
         .unknown(reason: "synchronous state unknown: 2 standbys of db1:5432 have application_name 'db2'; give each its own application_name in primary_conninfo")),
        (byName, [primary("db1", [sender("db2", "sync"), sender("db2", "quorum")])], .synchronous(primary: "db1:5432", syncState: "sync")),
        (byName, [primary("db1", [sender("db2", "")])],
         .unknown(reason: "synchronous state unknown: db1:5432's pg_stat_replication is not visible to the monitoring role (grant pg_monitor)")),
        (StandbyIdentity(systemIdentifier: system, slotName: nil, applicationName: nil), [primary("db1", [sender("db2", "sync")])],
         .unknown(reason: "synchronous state unknown: this standby's WAL receiver is not visible to the monitoring role (grant pg_monitor)")),
    ] as [(StandbyIdentity, [PeerReport], Synchrony)])
    func find(identity: StandbyIdentity, peers: [PeerReport], expected: Synchrony) {
        #expect(Synchrony.find(identity: identity, timeline: 2, peers: peers) == expected)
    }

    @Test("the WAL receiver's conninfo gives the name the primary knows it by", arguments: [
        ("user=replicator host=10.0.0.1 port=5432 fallback_application_name=db2 sslmode=prefer", "db2"),
        ("user=postgres passfile=/x/.pgpass channel_binding=prefer dbname=replication host=127.0.0.1 port=55432 fallback_application_name=standby sslmode=prefer",
         "standby"),
        ("host=db1 application_name=reporting fallback_application_name=standby", "reporting"),
        ("host=db1 fallback_application_name=walreceiver", "walreceiver"),
        ("host=db1 application_name=read replica 2 fallback_application_name=standby", "read replica 2"),
        ("host=db1 port=5432", nil),
        ("", nil),
    ] as [(String, String?)])
    func applicationName(conninfo: String, expected: String?) {
        #expect(StandbyIdentity.applicationName(inReceiverConninfo: conninfo) == expected)
    }

    @Test("a primary's senders read back from the query's separators; a malformed list is a query failure")
    func senderList() throws {
        #expect(try StreamingStandby.list(from: nil, answering: .standbyList) == [])
        #expect(try StreamingStandby.list(from: "sync\u{1F}s1\u{1F}db 2\u{1E}async\u{1F}\u{1F}db3", answering: .standbyList)
            == [Self.sender("db 2", "sync", slot: "s1"), Self.sender("db3", "async")])
        #expect(throws: ProbeFailure.queryFailed(.standbyList, detail: "malformed standby list: sync\u{1F}db2")) {
            try StreamingStandby.list(from: "sync\u{1F}db2", answering: .standbyList)
        }
    }
}
