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
    /// The reply line (with its newline) to `verdict`, the answer `/read-only`
    /// gives: ``Answer`` lists each answer's words; `ready` and `drain` carry
    /// the verdict's `maxconn` when it is advertised. A verdict that leaves
    /// the server's state alone (`maxconn=only`) is that `maxconn` alone.
    ///
    /// The weight is the bare `N%`: HAProxy 2.6's agent reads only that form
    /// (its manual lists no other; `weight:55%` left a server at 100,
    /// measured with 2.6.12).
    static func line(for verdict: Verdict) -> String {
        let maxconn = if case .advertised(let value)? = verdict.maxconn { " maxconn:\(value)" } else { "" }
        if verdict.leavesServerState { return maxconn.dropFirst() + "\n" }
        switch verdict.answer {
        case .serves(let weight), .servesReads(let weight), .behindButKept(let weight):
            return "ready up \(weight)%\(maxconn)\n"
        case .drained:
            return "drain\(maxconn)\n"
        case .unavailable, .refused:
            return "down #\(verdict.body)\n"
        }
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
}
