import Testing
@testable import PGSQLChkCore

@Suite("Prometheus metrics")
struct MetricsDocumentTests {
    @Test("a standby's every signal, in base units, with HELP and TYPE lines")
    func standby() {
        var verdict = Verdict(answer: .serves(weight: 100), body: "standby",
                              state: NodeState(inRecovery: true, timeline: 3, behindPrimaryBytes: 4096, replayBacklogBytes: 1024,
                                               replayDelay: Milliseconds(1_500), replayPaused: false,
                                               receiver: .running(status: "streaming", silence: Milliseconds(250))))
        verdict.probeDuration = Milliseconds(4)
        #expect(MetricsDocument.text(of: verdict) == """
            # HELP pgsqlchk_info pgsqlchk's version.
            # TYPE pgsqlchk_info gauge
            pgsqlchk_info{version="\(pgsqlchkVersion)"} 1
            # HELP pgsqlchk_up Whether PostgreSQL answered the probe.
            # TYPE pgsqlchk_up gauge
            pgsqlchk_up 1
            # HELP pgsqlchk_probe_duration_seconds How long the probe behind this answer took, connect to last row, also when a cache entry answered.
            # TYPE pgsqlchk_probe_duration_seconds gauge
            pgsqlchk_probe_duration_seconds 0.004
            # HELP pgsqlchk_in_recovery Whether the node is a standby (pg_is_in_recovery()).
            # TYPE pgsqlchk_in_recovery gauge
            pgsqlchk_in_recovery 1
            # HELP pgsqlchk_timeline The timeline the node writes, or a standby receives.
            # TYPE pgsqlchk_timeline gauge
            pgsqlchk_timeline 3
            # HELP pgsqlchk_replication_lag_bytes WAL of the primary not yet replayed here, as the WAL receiver last heard of it.
            # TYPE pgsqlchk_replication_lag_bytes gauge
            pgsqlchk_replication_lag_bytes 4096
            # HELP pgsqlchk_replay_backlog_bytes WAL received but not yet replayed.
            # TYPE pgsqlchk_replay_backlog_bytes gauge
            pgsqlchk_replay_backlog_bytes 1024
            # HELP pgsqlchk_replay_delay_seconds How far replay trails the last change received; zero when caught up.
            # TYPE pgsqlchk_replay_delay_seconds gauge
            pgsqlchk_replay_delay_seconds 1.5
            # HELP pgsqlchk_replay_paused Whether WAL replay is paused.
            # TYPE pgsqlchk_replay_paused gauge
            pgsqlchk_replay_paused 0
            # HELP pgsqlchk_wal_receiver_streaming Whether the WAL receiver streams from its primary.
            # TYPE pgsqlchk_wal_receiver_streaming gauge
            pgsqlchk_wal_receiver_streaming 1
            # HELP pgsqlchk_wal_receiver_silence_seconds Time since the WAL receiver last heard from its primary.
            # TYPE pgsqlchk_wal_receiver_silence_seconds gauge
            pgsqlchk_wal_receiver_silence_seconds 0.25
            # HELP pgsqlchk_maintenance Whether the drain file takes the node out of rotation.
            # TYPE pgsqlchk_maintenance gauge
            pgsqlchk_maintenance 0

            """)
    }

    @Test("PostgreSQL down: up 0 and no made-up values", arguments: [
        "pgsqlchk_in_recovery", "pgsqlchk_timeline", "pgsqlchk_replication_lag_bytes", "pgsqlchk_wal_receiver_streaming",
    ])
    func down(absent: String) {
        let text = MetricsDocument.text(of: Verdict(for: CheckRequest(endpoint: .metrics), outcome: .failure(.noResponse(detail: "x")), drain: .absent))
        #expect(text.contains("\npgsqlchk_up 0\n"))
        #expect(!text.contains(absent))
    }

    @Test("the HTTP answer says which exposition format it is")
    func contentType() {
        let verdict = Verdict(answer: .serves(weight: 100), body: "primary")
        let rendered = String(decoding: HTTPResponse.render(verdict, format: .prometheus), as: UTF8.self)
        #expect(rendered.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
    }
}
