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
        return parts.joined(separator: ", ")
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
            ("lag_bytes", literal(state?.lagBytes)),
            ("replay_delay_seconds", literal(state?.replayDelay)),
            ("replay_paused", literal(state?.replayPaused)),
            ("receiver_state", state.map { quoted($0.receiver.status) } ?? "null"),
            ("receiver_silence_seconds", literal(silence)),
            ("maintenance", verdict.drain.isKnown ? literal(verdict.maintenance) : "null"),
            ("maintenance_problem", quoted(verdict.drain.problem)),
            ("age", literal(verdict.age?.value)),
            ("reason", verdict.status == .ok || verdict.status == .partialContent ? "null" : quoted(verdict.body)),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
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
