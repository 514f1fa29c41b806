/// Answers HAProxy's `agent-check` protocol: one ASCII line per connection.
///
/// Where the HTTP check says up or down, the agent tunes how much traffic a
/// server gets. It renders the ``Verdict`` that `/read-only` would get, so the
/// agent and the HTTP check can never disagree: `ready up 100%` for a primary
/// or a caught-up standby, a weight that falls as replication lag grows
/// towards the maximum, `drain` while the maintenance file exists,
/// `down #reason` when the node cannot serve (HAProxy 2.6 reads the reason
/// only when `#` starts a word of its own: `down#reason` is ignored, measured).
/// `ready` and `up` are repeated on every healthy answer so that removing the
/// drain file, or a recovered node, restores the server without an admin in HAProxy.
/// With `maxconn=auto` in `agent-send`, `ready` and `drain` lines also carry
/// `maxconn:N` (``ConnectionSlots/maxconn(for:)``), unless it is unknown:
/// HAProxy then keeps the server's maxconn as it was. With `maxconn=only`
/// the line is `maxconn:N` alone, or empty, whatever the verdict.
enum AgentReply {
    /// The smallest weight a standby within its lag limit keeps, so that it
    /// still takes some reads while it catches up.
    static let minimumWeightPercent: Int64 = 10

    /// The reply line (with its newline) to `verdict`, the answer `/read-only`
    /// gives to `request`: 200 is `ready up` with the weight, 404
    /// (maintenance) `drain`, each with the `maxconn` asked for when known;
    /// anything else `down #` and the reason. `maxconn=only` replaces all of
    /// it with the `maxconn` alone. With `keep_last_standby=1` in
    /// `agent-send`, a standby past only its lag limits gets the minimum
    /// weight instead of `down`: the agent cannot see whether it is the last
    /// usable standby, so it leaves UP and DOWN to the HTTP check, which can
    /// (`http-check send-state`).
    static func line(for verdict: Verdict, request: CheckRequest) -> String {
        switch (verdict.status, verdict.state) {
        case _ where request.maxconn?.alone == true:
            maxconnWord(verdict, request).dropFirst() + "\n"
        case (.ok, let state?):
            "ready up \(weightPercent(of: state, requirements: request.requirements))%\(maxconnWord(verdict, request))\n"
        case (.serviceUnavailable, _) where request.requirements.keepsLastStandby && verdict.standing?.isLagOnlyShortfall == true:
            "ready up \(minimumWeightPercent)%\(maxconnWord(verdict, request))\n"
        case (.notFound, _):
            "drain\(maxconnWord(verdict, request))\n"
        default:
            "down #\(verdict.body)\n"
        }
    }

    /// What `request`'s `maxconn=` gets from what the probe found; nil
    /// when it was not asked. A failed probe has found nothing.
    static func maxconn(for verdict: Verdict, request: CheckRequest) -> Maxconn? {
        guard let asked = request.maxconn else { return nil }
        guard let slots = verdict.state?.connectionSlots else { return .withheld(reason: "connection slots not probed") }
        return slots.maxconn(for: asked)
    }

    /// ` maxconn:N`, or nothing when not asked or withheld.
    private static func maxconnWord(_ verdict: Verdict, _ request: CheckRequest) -> String {
        guard case .advertised(let value) = maxconn(for: verdict, request: request) else { return "" }
        return " maxconn:\(value)"
    }

    /// The reply to an `agent-send` line that does not parse: `down` and
    /// why, but an empty line (no status change) when the line asks
    /// `maxconn=only`, whose promise is never to move the server: a typo on
    /// the ReadWrite servers must not take every primary DOWN (and, with
    /// `on-marked-down shutdown-sessions`, cut every write session). The
    /// reason still goes to the diagnostics.
    static func line(refusing error: RequestError, sent: [UInt8]) -> String {
        let line = sent.prefix { $0 != 10 && $0 != 13 }
        let asksMaxconnOnly = line.split(separator: UInt8(ascii: "&")).contains { Array($0) == Array("maxconn=only".utf8) }
        return asksMaxconnOnly ? "\n" : "down #agent-send: \(error.reason)\n"
    }

    /// 100% for a primary, or a standby with no lag limit; otherwise falling
    /// linearly from 100% at no lag to ``minimumWeightPercent`` at the limit.
    static func weightPercent(of state: NodeState, requirements: StandbyRequirements) -> Int64 {
        guard state.inRecovery, let maximum = requirements.maximumLagBytes, maximum > 0, let lag = state.lagBytes else { return 100 }
        let span = 100 - minimumWeightPercent
        return max(minimumWeightPercent, 100 - span * min(lag, maximum) / maximum)
    }
}
