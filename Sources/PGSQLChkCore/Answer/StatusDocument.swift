/// The node's state for people and for monitoring: one human line, or JSON.
enum StatusDocument {
    /// `primary, timeline 3, PostgreSQL 15.18`; `standby, timeline 3,
    /// PostgreSQL 15.18, lag 0 bytes, WAL receiver streaming`; or the reason.
    static func summary(of verdict: Verdict) -> String {
        guard let state = verdict.state else { return "unavailable: \(verdict.body)" }
        var parts = [state.role]
        if let timeline = state.timeline { parts.append("timeline \(timeline)") }
        if !state.serverVersion.isEmpty { parts.append("PostgreSQL \(state.serverVersion)") }
        if state.inRecovery {
            parts.append("lag " + (state.lagBytes.map(ByteCount.describe) ?? "unknown"))
            parts.append("WAL receiver \(state.receiver.status)")
            if state.replayPaused == true { parts.append("replay paused") }
        }
        switch verdict.drain {
        case .absent: break
        case .present: parts.append("maintenance")
        case .unreadable(let reason): parts.append(reason)
        }
        if verdict.status == .serviceUnavailable { parts.append("unavailable: \(verdict.body)") }
        if let guardReport = verdict.guardReport { parts.append(guardSummary(guardReport)) }
        return parts.joined(separator: ", ")
    }

    /// `peers: db1:5432 itself, db2:5432 standby timeline 1, db3:5432
    /// unreachable (no response from server)`; or that the fence decided.
    static func guardSummary(_ report: GuardReport) -> String {
        var text: String
        switch report.decision {
        case .fenced, .fenceUnreadable: text = "peers: not asked (fenced)"
        case .serving, .stale, .rivalPrimary, .quorumLost:
            text = "peers: " + report.findings.map { finding in
                let name = finding.report.peer.description
                switch (finding.report.outcome, finding.standing) {
                case (.failure(let failure), _): return "\(name) unreachable (\(failure.reason))"
                case (.success, .itself): return "\(name) itself"
                case (.success(let position), .otherCluster): return "\(name) \(position.role) of another cluster"
                case (.success(let position), _): return "\(name) \(position.role) timeline \(position.timeline)"
                }
            }.joined(separator: ", ")
        }
        if let quorum = report.quorum { text += ", quorum: \(quorum)" }
        if let blindSpot = report.blindSpot { text += ", \(blindSpot)" }
        if let reason = report.fenceFileReason { text += ", guard problem: \(reason)" }
        return text
    }

    /// The guard's view as a JSON object: the decision, how many peers were
    /// asked and how many could not be, by reason, and each peer with its
    /// role and timeline, or why it could not be asked.
    static func guardJSON(_ report: GuardReport) -> String {
        let decision = switch report.decision {
        case .serving: "serving"
        case .stale: "stale"
        case .fenced: "fenced"
        case .rivalPrimary: "rival primary"
        case .fenceUnreadable: "fence unreadable"
        case .quorumLost: "quorum lost"
        }
        let peers = report.findings.map { finding in
            var position: NodePosition?
            var failure: ProbeFailure?
            switch finding.report.outcome {
            case .success(let answer): position = answer
            case .failure(let error): failure = error
            }
            let fields: [(String, String)] = [
                ("peer", quoted(finding.report.peer.description)),
                ("standing", quoted(finding.standing.name)),
                ("role", quoted(position?.role)),
                ("timeline", literal(position?.timeline)),
                ("system_identifier", quoted(position?.systemIdentifier)),
                ("problem", quoted(failure?.reason)),
            ]
            return object(fields)
        }
        return object([
            ("decision", quoted(decision)),
            ("reason", quoted(report.decision.refusal)),
            ("problem", quoted(report.fenceFileReason)),
            ("peers_asked", literal(report.findings.count)),
            ("peers_unreachable", object(report.unreachableByReason.map { (quoted($0.reason), String($0.count)) }, quotingKeys: false)),
            ("peers", "[" + peers.joined(separator: ", ") + "]"),
        ] + (report.quorum.map { count in
            [("quorum", object([("setting", quoted(count.quorum.description)), ("reached", String(count.reached)),
                                ("members", String(count.members)), ("needed", String(count.needed))]))]
        } ?? []))
    }

    /// `fields` as a JSON object; names are quoted here unless they come
    /// quoted (and escaped) already.
    static func object(_ fields: [(String, String)], quotingKeys: Bool = true) -> String {
        "{" + fields.map { "\(quotingKeys ? "\"\($0.0)\"" : $0.0): \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// The JSON document `/status` and `Accept: application/json` return.
    ///
    /// Fields that are unknown (not applicable, or not visible to the role) are
    /// `null`; `reason` is set whenever the answer is not a success.
    static func json(of verdict: Verdict) -> String {
        let state = verdict.state
        var silence: Milliseconds?
        if case .running(_, let heard)? = state?.receiver { silence = heard }
        let fields: [(String, String)] = [
            ("status", String(verdict.status.rawValue)),
            ("role", quoted(state?.role ?? "unknown")),
            ("in_recovery", literal(state?.inRecovery)),
            ("timeline", literal(state?.timeline)),
            ("server_version", state.map { quoted($0.serverVersion) } ?? "null"),
            ("wal_position", quoted(state?.walPosition)),
            ("received_position", quoted(state?.receivedPosition)),
            ("replayed_position", quoted(state?.replayedPosition)),
            ("primary_position", quoted(state?.primaryPosition)),
            ("lag_bytes", literal(state?.lagBytes)),
            ("replay_backlog_bytes", literal(state?.replayBacklogBytes)),
            ("replay_delay_seconds", literal(state?.replayDelay)),
            ("replay_paused", literal(state?.replayPaused)),
            ("receiver_state", state.map { quoted($0.receiver.status) } ?? "null"),
            ("receiver_silence_seconds", literal(silence)),
            ("maintenance", verdict.drain.isKnown ? literal(verdict.maintenance) : "null"),
            ("maintenance_problem", quoted(verdict.drain.reason)),
            ("age", literal(verdict.age?.value)),
            ("reason", verdict.status == .ok || verdict.status == .partialContent ? "null" : quoted(verdict.body)),
        ]
        // Only with --peers on a primary, so a document without the guard is unchanged.
        let guardField = verdict.guardReport.map { [("stale_primary_guard", guardJSON($0))] } ?? []
        return object(fields + guardField)
    }

    static func literal<Value: CustomStringConvertible>(_ value: Value?) -> String {
        value.map(\.description) ?? "null"
    }

    /// A JSON string literal; control characters escaped.
    static func quoted(_ text: String?) -> String {
        guard let text else { return "null" }
        var escaped = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                escaped += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
    }
}
