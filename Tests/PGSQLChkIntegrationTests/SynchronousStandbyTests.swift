import ParsedResponse
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `/synchronous` and `/asynchronous` on the guard's three-node cluster: in
/// its suite, so that no other test promotes or stops a node meanwhile.
extension StalePrimaryGuardTests {
    func ask(_ node: GuardNode, _ path: String) throws -> ParsedResponse {
        try response(cluster.check(node, request: "GET \(path) HTTP/1.0\r\n\r\n"))
    }

    /// Sets the primary's synchronous_standby_names to `names` and waits
    /// until pg_stat_replication shows `states`.
    func makeSynchronous(_ names: String, expecting states: String) throws {
        _ = try cluster.query(.primary, "ALTER SYSTEM SET synchronous_standby_names = '\(names)'")
        _ = try cluster.query(.primary, "SELECT pg_reload_conf()")
        try cluster.await(.primary, "SELECT string_agg(application_name || '=' || sync_state, ',' ORDER BY application_name, sync_state) FROM pg_stat_replication",
                          prints: states)
    }

    @Test("/sync and /async follow the primary's synchronous_standby_names, and answer 503 where only a guess could")
    func synchronousStandbys() throws {
        try cluster.reset()
        try cluster.await(.primary, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'", prints: "2")
        #expect(try ask(.standby, "/async").status == 200)
        let notSync = try ask(.standby, "/sync")
        #expect(notSync.status == 503)
        #expect(notSync.body == "not a synchronous standby: \(cluster.address(of: .primary)) lists it as async")

        try makeSynchronous("standby", expecting: "standby=sync,standby2=async")
        #expect(try ask(.standby, "/sync").body == "synchronous standby")
        #expect(try ask(.standby, "/synchronous").status == 200)
        #expect(try ask(.standby, "/async").body == "not an asynchronous standby: \(cluster.address(of: .primary)) lists it as sync")
        #expect(try ask(.standby2, "/sync").status == 503)
        #expect(try ask(.standby2, "/asynchronous").body == "asynchronous standby")
        #expect(try ask(.primary, "/sync").body == "not a standby: primary")

        try makeSynchronous("ANY 1 (standby, standby2)", expecting: "standby=quorum,standby2=quorum")
        #expect(try ask(.standby2, "/sync").status == 200)

        let withoutPeers = Child.run([TestCluster.binary, "-h", cluster.socketDirectory, "-p", cluster.ports[.standby]!,
                                      "-U", "pgsqlchk", "-d", "postgres"],
                                     input: .socket(request: "GET /sync HTTP/1.0\r\n\r\n", hangUp: false))
        #expect(try response(withoutPeers).body == "synchronous state unknown: only the primary knows it; list the nodes with --peers")

        try cluster.stop(.primary)
        let orphan = try ask(.standby, "/sync")
        #expect(orphan.status == 503)
        #expect(orphan.body.hasPrefix("WAL receiver") || orphan.body.hasPrefix("synchronous state unknown: no primary among the peers"),
                "\(orphan.body)")
    }

    @Test("a standby that streams through a slot is told apart from another of the same application_name; the other is ambiguous")
    func slotIdentifies() throws {
        try cluster.reset()
        _ = try cluster.query(.primary, "SELECT pg_create_physical_replication_slot('standby2_slot')")
        let conninfo = try cluster.query(.standby2, "SHOW primary_conninfo")
        _ = try cluster.query(.standby2, "ALTER SYSTEM SET primary_conninfo = '\(conninfo.replacing("'", with: "''")) application_name=standby'")
        _ = try cluster.query(.standby2, "ALTER SYSTEM SET primary_slot_name = 'standby2_slot'")
        _ = try cluster.query(.standby2, "SELECT pg_reload_conf()")
        try cluster.await(.primary, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'standby2_slot' AND active", prints: "1")
        try makeSynchronous("standby", expecting: "standby=potential,standby=sync")

        let slotState = try cluster.query(.primary, """
            SELECT r.sync_state FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid
            WHERE s.slot_name = 'standby2_slot'
            """)
        let bySlot = try ask(.standby2, "/sync")
        #expect(bySlot.body == (slotState == "sync" ? "synchronous standby"
                                : "not a synchronous standby: \(cluster.address(of: .primary)) lists it as \(slotState)"))
        let ambiguous = try ask(.standby, "/sync")
        #expect(ambiguous.status == 503)
        #expect(ambiguous.body == "synchronous state unknown: 2 standbys of \(cluster.address(of: .primary)) have application_name 'standby'; "
            + "give each its own application_name in primary_conninfo")
    }
}
