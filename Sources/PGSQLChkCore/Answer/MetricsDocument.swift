/// The node's state in Prometheus's text exposition format (version 0.0.4),
/// for `/metrics`.
///
/// Names follow Prometheus's conventions: a `pgsqlchk_` prefix, base units
/// (`_bytes`, `_seconds`), 0 or 1 for yes or no, and the version as the
/// labels of an `_info` gauge. A value that is unknown (not applicable to the
/// role, or not visible to the monitoring role) is left out rather than
/// written as a made-up number. A scrape is one check: it shares the
/// deadline, and PostgreSQL being down is `pgsqlchk_up 0` on a 200 answer,
/// as an exporter reports a failed probe.
enum MetricsDocument {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    static func text(of verdict: Verdict) -> String {
        var document = ""
        func gauge(_ name: String, _ help: String, _ value: String?, labels: String = "") {
            guard let value else { return }
            document += "# HELP pgsqlchk_\(name) \(help)\n# TYPE pgsqlchk_\(name) gauge\npgsqlchk_\(name)\(labels) \(value)\n"
        }
        let state = verdict.state
        let standby = state?.inRecovery == true ? state : nil
        gauge("info", "pgsqlchk's version.", "1", labels: "{version=\"\(pgsqlchkVersion)\"}")
        gauge("up", "Whether PostgreSQL answered the probe.", flag(state != nil))
        gauge("probe_duration_seconds", "How long the probe behind this answer took, connect to last row, also when a cache entry answered.", verdict.probeDuration.map(\.description))
        gauge("in_recovery", "Whether the node is a standby (pg_is_in_recovery()).", state.map { flag($0.inRecovery) })
        gauge("timeline", "The timeline the node writes, or a standby receives.", state?.timeline.map(String.init))
        gauge("replication_lag_bytes", "WAL of the primary not yet replayed here, as the WAL receiver last heard of it.",
              standby?.lagBytes.map(String.init))
        gauge("replay_backlog_bytes", "WAL received but not yet replayed.", standby?.replayBacklogBytes.map(String.init))
        gauge("replay_delay_seconds", "How far replay trails the last change received; zero when caught up.",
              standby?.replayDelay.map(\.description))
        gauge("replay_paused", "Whether WAL replay is paused.", standby?.replayPaused.map(flag))
        var streaming: String?, silence: String?
        switch standby?.receiver {
        case .running(let status, let heard)?:
            (streaming, silence) = (flag(status == "streaming"), heard.map(\.description))
        case .stopped?:
            streaming = flag(false)
        case .notVisible?, .notApplicable?, nil:
            break
        }
        gauge("wal_receiver_streaming", "Whether the WAL receiver streams from its primary.", streaming)
        gauge("wal_receiver_silence_seconds", "Time since the WAL receiver last heard from its primary.", silence)
        gauge("maintenance", "Whether the drain file takes the node out of rotation.", verdict.drain.isKnown ? flag(verdict.maintenance) : nil)
        gauge("stale_primary_refused", "Whether the stale-primary guard refuses this primary.",
              verdict.guardReport.map { flag($0.decision.refusal != nil) })
        gauge("quorum_reached_nodes", "Nodes this primary reached in this check, itself included (--quorum).",
              verdict.guardReport?.quorum.map { String($0.reached) })
        gauge("quorum_needed_nodes", "Nodes this primary must reach to answer 200 (--quorum).",
              verdict.guardReport?.quorum.map { String($0.needed) })
        if let report = verdict.guardReport, !report.findings.isEmpty {
            document += """
                # HELP pgsqlchk_peers_unreachable Peers the stale-primary guard could not ask in this check, by reason; \
                they prove nothing, so while every peer is unreachable the guard cannot see a newer primary.
                # TYPE pgsqlchk_peers_unreachable gauge

                """
            for (reason, count) in report.unreachableByReason {
                document += "pgsqlchk_peers_unreachable{reason=\"\(labelValue(reason))\"} \(count)\n"
            }
        }
        return document
    }

    /// A label value as the exposition format escapes it.
    private static func labelValue(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    private static func flag(_ value: Bool) -> String {
        value ? "1" : "0"
    }
}
