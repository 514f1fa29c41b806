import Testing
@testable import PGSQLChkCore

@Suite("Result cache entries")
struct CacheEntryTests {
    static let standby = NodeState(inRecovery: true, serverVersion: "15.18", timeline: 3, receivedPosition: "0/3000148",
                                   replayedPosition: "0/3000060", primaryPosition: "0/3000200",
                                   behindPrimaryBytes: 416, receiverTimeout: Milliseconds(60_000), replayBacklogBytes: 232, replayDelay: Milliseconds(1_500), replayPaused: false,
                                   receiver: .running(status: "streaming", silence: Milliseconds(250)))

    static let outcomes: [Result<NodeState, ProbeFailure>] = [
        .success(NodeState(inRecovery: false, serverVersion: "15.18", timeline: 1, walPosition: "0/301B770")),
        .success(NodeState(inRecovery: false, timeline: 2,
                           position: NodePosition(inRecovery: false, timeline: 2, systemIdentifier: "7312345678901234567", startedAt: "1764550000.123456", port: "5432"))),
        .success(NodeState(inRecovery: false, timeline: 2,
                           position: NodePosition(inRecovery: false, timeline: 2, systemIdentifier: "7312345678901234567", startedAt: "1764550000.123456", port: "5432",
                                                  standbys: [StreamingStandby(applicationName: "db 2", slotName: "db2", syncState: "sync"),
                                                             StreamingStandby(applicationName: "walreceiver", slotName: nil, syncState: "")]))),
        .success(NodeState(inRecovery: true, receiver: .running(status: "streaming", silence: nil),
                           identity: StandbyIdentity(systemIdentifier: "7312345678901234567", slotName: nil, applicationName: "standby"),
                           peers: [
                               PeerReport(peer: PeerAddress(host: "db1", port: "5432"),
                                          outcome: .success(NodePosition(inRecovery: false, timeline: 3, systemIdentifier: "7312345678901234567",
                                                                         startedAt: "1764550000.5", port: "5432",
                                                                         standbys: [StreamingStandby(applicationName: "standby", slotName: nil, syncState: "sync")]))),
                               PeerReport(peer: PeerAddress(host: "fd00::2", port: nil), outcome: .failure(.timedOut(phase: .loggingIn))),
                               PeerReport(peer: PeerAddress(host: "db3", port: "6432"), outcome: .failure(.noResponse(detail: "refused"))),
                           ])),
        .success(NodeState(inRecovery: false, peers: [])),
        .success(NodeState(inRecovery: true, receiver: .running(status: "streaming", silence: nil),
                           identity: StandbyIdentity(systemIdentifier: "7312345678901234567", slotName: nil, applicationName: "-"))),
        .success(NodeState(inRecovery: true, receiver: .notVisible,
                           identity: StandbyIdentity(systemIdentifier: "7312345678901234567", slotName: "db3", applicationName: nil))),
        .success(standby),
        .success(NodeState(inRecovery: true, receiver: .notVisible)),
        .success(NodeState(inRecovery: true, receiver: .stopped)),
        .success(NodeState(inRecovery: true, receiver: .running(status: "waiting", silence: nil))),
        .success(NodeState(inRecovery: false, connectionSlots: ConnectionSlots(
            maxConnections: 100, superuserReservedConnections: 3, reservedConnections: 2, checkRoleLimit: -1,
            clientSessions: 9, clientRoleLimit: 80, clientRoleSessions: 6,
            byAddress: [AddressSessions(address: "192.0.2.10", sessions: 2, clientRoleSessions: 2),
                        AddressSessions(address: "2001:db8::1", sessions: 3, clientRoleSessions: 0)]))),
        .success(NodeState(inRecovery: true, connectionSlots: ConnectionSlots(
            maxConnections: 20, superuserReservedConnections: 3, reservedConnections: 0, checkRoleLimit: 14))),
        .failure(.noResponse(detail: "connection to server on socket \"/x\" failed: No such file or directory")),
        .failure(.tlsFailed(.certificateRejected, detail: "certificate verify failed")),
        .failure(.authenticationFailed(detail: "28P01")),
        .failure(.authorizationFailed(detail: "3D000")),
        .failure(.tooManyConnections(detail: "53300")),
        .failure(.notAcceptingConnections(detail: "57P03")),
        .failure(.connectionRejected(sqlstate: "08P01", detail: "protocol")),
        .failure(.misconfigured(detail: "invalid sslmode value")),
        .failure(.timedOut(phase: .loggingIn)),
        .failure(.queryFailed(.replication, detail: "")),
        .failure(.queryFailed(.standbyList, detail: "ERROR:  permission denied")),
        .failure(.libraryMissing(detail: "libpq.so.5: cannot open shared object file")),
    ]

    static func entry(_ outcome: Result<NodeState, ProbeFailure>) -> CacheEntry {
        CacheEntry(key: "0123456789abcdef", boot: 1_767_225_600, probed: 5_000_000_000, probeDuration: Milliseconds(12), outcome: outcome)
    }

    @Test("every outcome, state or failure, reads back exactly as written", arguments: outcomes)
    func roundTrip(outcome: Result<NodeState, ProbeFailure>) throws {
        let entry = Self.entry(outcome)
        #expect(try CacheEntry.decode(entry.encoded) == entry)
    }

    /// A standby with every field of every part set, none left at its
    /// default, so that a field the format drops or misreads cannot read back equal.
    static let everyField = NodeState(
        inRecovery: true, serverVersion: "16.4", timeline: 4, walPosition: "0/5000000", receivedPosition: "0/4000148",
        replayedPosition: "0/4000060", primaryPosition: "0/4000200", behindPrimaryBytes: 416, receiverTimeout: Milliseconds(60_000),
        replayBacklogBytes: 232, replayDelay: Milliseconds(1_500), replayPaused: true,
        receiver: .running(status: "streaming", silence: Milliseconds(250)),
        position: NodePosition(inRecovery: true, timeline: 4, systemIdentifier: "7312345678901234567", startedAt: "1764550000.25", port: "5433",
                               standbys: [StreamingStandby(applicationName: "cascade", slotName: "cascade_slot", syncState: "async")]),
        identity: StandbyIdentity(systemIdentifier: "7312345678901234567", slotName: "db2", applicationName: "db 2"),
        peers: [
            PeerReport(peer: PeerAddress(host: "db1", port: "5432"),
                       outcome: .success(NodePosition(inRecovery: false, timeline: 4, systemIdentifier: "7312345678901234567",
                                                      startedAt: "1764550000.5", port: "5432",
                                                      standbys: [StreamingStandby(applicationName: "db 2", slotName: "db2", syncState: "sync")]))),
            PeerReport(peer: PeerAddress(host: "fd00::3", port: "6432"), outcome: .failure(.connectionRejected(sqlstate: "08P01", detail: "protocol"))),
        ],
        connectionSlots: ConnectionSlots(maxConnections: 100, superuserReservedConnections: 3, reservedConnections: 2, checkRoleLimit: 5,
                                         clientSessions: 9, clientRoleLimit: 80, clientRoleSessions: 6,
                                         byAddress: [AddressSessions(address: "192.0.2.10", sessions: 2, clientRoleSessions: 1)]))

    /// The paths of the fields `value` leaves empty (nil or ""), at any depth.
    static func emptyFields(of value: Any, at path: String = "entry") -> [String] {
        Mirror(reflecting: value).children.flatMap { child -> [String] in
            let name = path + "." + (child.label ?? "?")
            if let text = child.value as? String { return text.isEmpty ? [name] : [] }
            let inner = Mirror(reflecting: child.value)
            guard inner.displayStyle == .optional else { return emptyFields(of: child.value, at: name) }
            guard let wrapped = inner.children.first else { return [name] }
            return emptyFields(of: wrapped.value, at: name)
        }
    }

    @Test("an entry with every field set reads back equal: the one table writes and reads each field alike")
    func everyFieldRoundTrip() throws {
        let entry = Self.entry(.success(Self.everyField))
        // A node's cluster-view details are never written: the view's depth
        // bypasses the cache (ProbeCache), so an entry has no line for them.
        let neverCached = ["entry.outcome.success.position.member", "entry.outcome.success.peers.?.outcome.success.member"]
        #expect(Self.emptyFields(of: entry) == neverCached, "fields a round trip of this fixture cannot check")
        #expect(try CacheEntry.decode(entry.encoded) == entry)
    }

    @Test("a primary's entry is these lines, in this order")
    func format() {
        #expect(Self.entry(Self.outcomes[0]).encoded == """
            pgsqlchk-cache 6
            key 0123456789abcdef
            boot 1767225600
            probed 5000000000
            probe_duration_ms 12
            outcome state
            in_recovery f
            server_version 15.18
            timeline 1
            wal_position 0/301B770
            received_position -
            replayed_position -
            primary_position -
            behind_primary_bytes -
            receiver_timeout_ms -
            replay_backlog_bytes -
            replay_delay_ms -
            replay_paused -
            receiver none
            position none
            identity none
            peers none
            slots none
            end

            """)
    }

    @Test("a newline in a server's text cannot forge a field")
    func newlinesFlattened() throws {
        let entry = Self.entry(.failure(.queryFailed(.role, detail: "x\nin_recovery f\nend")))
        #expect(entry.encoded.split(separator: "\n").count == 10)
        #expect(try CacheEntry.decode(entry.encoded).outcome == .failure(.queryFailed(.role, detail: "x in_recovery f end")))
    }

    /// Each line is a change to a valid entry's text that must make it corrupt.
    @Test("anything but what encoded writes is corrupt", arguments: [
        ("pgsqlchk-cache 6", "pgsqlchk-cache 5"),
        ("probe_duration_ms 12\n", ""),
        ("probe_duration_ms 12", "probe_duration_ms -12"),
        ("identity none", "identity"),
        ("peers none", "peers 1"),
        ("peers none", "peers -1"),
        ("peers none", "peers 17"),
        ("peers none", "peers many"),
        ("replay_paused -", "replay_paused maybe"),
        ("key 0123456789abcdef", "key 0123456789ABCDEF"),
        ("key 0123456789abcdef", "key ../../etc/passwd"),
        ("boot 1767225600", "boot 1767225600.5"),
        ("probed 5000000000", "probed 05000000000"),
        ("probed 5000000000", "probed -5"),
        ("in_recovery f", "in_recovery false"),
        ("timeline 1", "timeline one"),
        ("behind_primary_bytes -", "behind_primary_bytes"),
        ("position none", "position maybe"),
        ("receiver none", "receiver elsewhere"),
        ("slots none", "slots present"),
        ("slots none", "slots 17"),
        ("outcome state", "outcome answer"),
        ("replay_paused -\n", ""),
        ("end\n", ""),
        ("end\n", "end"),
        ("end\n", "end\nextra\n"),
        ("timeline 1\nwal_position 0/301B770", "wal_position 0/301B770\ntimeline 1"),
    ])
    func corrupt(original: String, replacement: String) throws {
        let text = Self.entry(Self.outcomes[0]).encoded
        try #require(text.containsText(original))
        let damaged = text.replacingFirst(original, with: replacement)
        #expect(throws: CacheEntry.Problem.self) { try CacheEntry.decode(damaged) }
    }

    @Test("an empty file and a foreign one are corrupt", arguments: ["", "\n", "HTTP/1.1 200 OK\r\n\r\nprimary\n"])
    func notEntries(text: String) {
        #expect(throws: CacheEntry.Problem.self) { try CacheEntry.decode(text) }
    }

    /// (probed, now, boot, key) -> age or problem; TTL 1000 ms, written at 5 s after boot.
    @Test("an entry answers only its key, in its boot, from its stamp up to the TTL", arguments: [
        (UInt64(5_000_000_000), Int64(1_767_225_600), "0123456789abcdef", Result<Int, CacheEntry.Problem>.success(0)),
        (5_999_000_000, 1_767_225_600, "0123456789abcdef", .success(999)),
        (6_000_000_000, 1_767_225_600, "0123456789abcdef", .failure(.expired)),
        (4_999_999_999, 1_767_225_600, "0123456789abcdef", .failure(.futureDated)),
        (5_500_000_000, 1_767_225_601, "0123456789abcdef", .success(500)),
        (5_500_000_000, 1_767_225_610, "0123456789abcdef", .failure(.otherBoot)),
        (5_500_000_000, 1_767_225_600, "fedcba9876543210", .failure(.otherKey)),
    ])
    func expiry(now: UInt64, boot: Int64, key: String, expected: Result<Int, CacheEntry.Problem>) {
        let entry = Self.entry(Self.outcomes[0])
        let age = Result { () throws(CacheEntry.Problem) -> Int in
            try entry.age(answering: key, ttl: Milliseconds(1_000), now: now, boot: boot).value
        }
        #expect(age == expected)
    }
}

@Suite("Result cache keys")
struct CacheKeyTests {
    static let settings = ConnectionSettings(host: "/run/postgresql", port: "5432", user: "pgsqlchk", dbname: "postgres")

    static func digest(_ settings: ConnectionSettings = settings, depth: ProbeDepth = .role,
                       environment: [String] = [], user: UInt32 = 100) -> String {
        CacheKey(settings, depth: depth, environment: environment, user: user).digest
    }

    @Test("the digest is sixteen lower-case hex digits and the same for the same question")
    func stable() {
        let digest = Self.digest()
        #expect(digest.count == 16 && digest.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(digest == Self.digest())
    }

    @Test("anything that can change the answer changes the key", arguments: [
        digest(depth: .replication),
        digest(depth: .connectionSlots),
        digest(ConnectionSettings(host: "/run/postgresql", port: "5433", user: "pgsqlchk", dbname: "postgres")),
        digest(ConnectionSettings(host: "/run/postgresql", port: "5432", user: "pgsqlchk", dbname: nil)),
        digest(ConnectionSettings(host: "/run/postgresql", port: "5432", user: "pgsqlchk", dbname: "postgres sslmode=require")),
        digest(environment: ["PGSSLMODE=require"]),
        digest(environment: ["PGSERVICE=node2"]),
        digest(environment: ["PGSERVICEFILE=/etc/pgsqlchk/service.conf"]),
        digest(environment: ["PGSYSCONFDIR=/etc/postgresql-common"]),
        digest(environment: ["PGHOSTADDR=192.0.2.21"]),
        digest(environment: ["PGOPTIONS=-c default_transaction_read_only=on"]),
        digest(environment: ["PGTARGETSESSIONATTRS=read-write"]),
        digest(environment: ["PGLOADBALANCEHOSTS=random"]),
        // ~/.pg_service.conf: `-d service=node` names another server in another HOME.
        digest(environment: ["HOME=/var/lib/pgsqlchk-standby"]),
        digest(user: 101),
        CacheKey(settings, depth: .role, environment: [], user: 100).adding("peers", "10.0.0.2:5432").digest,
    ])
    func changes(other: String) {
        #expect(other != Self.digest())
    }

    /// Credentials say who asks, not whom: systemd hands each check its
    /// pgpass at a path of its own (`%d/pgpass`), which must not make every
    /// key new.
    @Test("who asks leaves the key alone: credentials and their paths, other variables, their order", arguments: [
        ["PGPASSWORD=secret"],
        ["PGPASSFILE=/run/credentials/pgsqlchk@7-10.0.0.1:23267-192.0.2.10:41234.service/pgpass"],
        ["PGSSLCERT=/run/credentials/x/cert", "PGSSLKEY=/run/credentials/x/key", "PGSSLROOTCERT=/etc/ssl/root.crt"],
        ["PGAPPNAME=x", "PGSQLCHK_TIMEOUT=0.01", "PGSQLCHK_CACHE_DIR=/tmp/c", "LANG=C", "PGDATA=/srv"],
    ])
    func unchanged(environment: [String]) {
        #expect(Self.digest(environment: environment) == Self.digest())
        #expect(Self.digest(environment: ["PGSSLMODE=require", "PGCONNECT_TIMEOUT=2"])
                == Self.digest(environment: ["PGCONNECT_TIMEOUT=2", "PGSSLMODE=require"]))
    }

    @Test("parts cannot run together: host \"a\" port \"bc\" is not host \"ab\" port \"c\"")
    func unambiguous() {
        #expect(Self.digest(ConnectionSettings(host: "a", port: "bc")) != Self.digest(ConnectionSettings(host: "ab", port: "c")))
        #expect(Self.digest(ConnectionSettings(host: nil, port: "x")) != Self.digest(ConnectionSettings(host: "port=x", port: nil)))
    }
}

private extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let end = indexAfter(target) else { return self }
        let start = index(end, offsetBy: -target.count)
        return String(self[..<start]) + replacement + String(self[end...])
    }
}
