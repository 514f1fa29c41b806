/// The answer to one check, before any dialect formats it: what the node
/// does for the asker (``Answer``), the body's one line, what the agent
/// advertises, and what was learned on the way (for JSON and debugging
/// headers). ``HTTPResponse`` and ``AgentReply`` only format it.
///
/// This is the only place that maps a node's state to an answer. With `S` a
/// standby that meets the request's ``StandbyRequirements`` and `s` one that
/// does not (``StandbyRequirements/standing(of:seenBy:)``: the limits, their
/// rejoin threshold while HAProxy's `send-state` shows it DOWN, and a
/// standby kept as the last usable one, which answers as `S`):
///
/// In HTTP's terms (``HTTPResponse``; the agent's words are in ``Answer``):
///
/// | endpoint                  | primary        | standby `S`    | standby `s`  | no answer   |
/// |---------------------------|----------------|----------------|--------------|-------------|
/// | `/` (classic)             | 200 `primary`  | 206 `standby`  | 503 why      | 503 why     |
/// | `/primary` and aliases    | 200            | 503            | 503          | 503         |
/// | `/replica`, `/standby`    | 503            | 200            | 503 why      | 503         |
/// | `/read-only`              | 200            | 200            | 503 why      | 503         |
/// | `/health`                 | 200            | 200            | 200          | 503         |
/// | `/status` (JSON)          | 200            | 200            | 200          | 503         |
/// | `/readiness`              | 200            | 200 if streaming | 503 why    | 503         |
/// | `/synchronous`, `/sync`   | 503            | 200 if streaming and synchronous | 503 why | 503 |
/// | `/asynchronous`, `/async` | 503            | 200 if streaming and asynchronous | 503 why | 503 |
/// | `/liveness`               | 200            | 200            | 200          | 200 if the server refused the login, else 503 |
/// | `/metrics` (Prometheus)   | 200            | 200            | 200          | 200, `pgsqlchk_up 0` |
/// | `/cluster` (JSON)         | 200            | 200            | 200          | 503         |
///
/// Only the primary knows which standbys are synchronous: `/synchronous` and
/// `/asynchronous` take its word through `--peers` (``Synchrony``), and
/// without peers answer 503 rather than guess.
///
/// The stale-primary guard (``StalePrimaryGuard``, `--peers`) turns a
/// primary's routing answers (the first four rows) into 503 with its reason
/// when it finds the node stale, fenced, or one of two primaries on a
/// timeline; `/health` and `/status` still answer 200 and report it.
///
/// The drain file turns every routing answer into 404 `maintenance`, which
/// HAProxy's `http-check disable-on-404` treats as "drain": no new sessions,
/// existing ones untouched (``DrainState``). The guard's 503 wins over the
/// drain, because a drained stale primary would keep its sessions writing.
///
/// The agent's weight falls linearly with a standby's lag, from 100% at none
/// to ``minimumWeightPercent`` at its limit (``weightPercent(of:requirements:)``).
/// With `keep_last_standby=1` a standby past only its lag limits is
/// ``Answer/behindButKept(weight:)``: 503 to HTTP, the minimum weight to the
/// agent, which cannot see whether it is the last usable standby and so
/// leaves UP and DOWN to the HTTP check, which can (`http-check send-state`).
struct Verdict: Equatable, Sendable {
    /// What the node does for the asker.
    var answer: Answer
    /// One line: the role, or why not.
    var body: String
    /// What the probe found, when it connected.
    var state: NodeState?
    /// What the drain file said.
    var drain = DrainState.absent
    /// What the stale-primary guard saw and decided; nil when it is off or
    /// the node is a standby.
    var guardReport: GuardReport?
    /// How a standby measured up to the limits its endpoint applies; nil on
    /// a primary, and on endpoints that apply none. The agent's weight and
    /// the diagnostics read it here rather than judge the standby again.
    var standing: StandbyStanding?
    /// The `maxconn` the agent advertises, or why it withholds it; nil when
    /// `agent-send` did not ask. A failed probe has found nothing.
    var maxconn: Maxconn?
    /// `maxconn=only`: the agent's reply is the `maxconn` alone and never
    /// moves the server (``MaxconnRequest/alone``).
    var leavesServerState = false
    /// How long the probe took, connect to last row.
    var probeDuration: Milliseconds?
    /// How old the probe's outcome is, when the result cache is on (zero:
    /// probed for this check).
    var age: Milliseconds?

    /// Whether the drain file was present.
    var maintenance: Bool { drain == .present }

    /// The process's exit status for this answer.
    var exitStatus: ExitCode {
        switch answer {
        case .serves: .success
        case .servesReads: .standby
        case .behindButKept, .unavailable: .unavailable
        case .drained: .maintenance
        case .refused: .refused
        }
    }

    /// The smallest weight a standby within its lag limit keeps, so that it
    /// still takes some reads while it catches up.
    static let minimumWeightPercent: Int64 = 10

    /// 100% for a primary, or a standby with no lag limit; otherwise falling
    /// linearly from 100% at no lag to ``minimumWeightPercent`` at the limit.
    static func weightPercent(of state: NodeState, requirements: StandbyRequirements) -> Int64 {
        guard state.inRecovery, let maximum = requirements.maximumLagBytes, maximum > 0, let lag = state.lagBytes else { return 100 }
        let span = 100 - minimumWeightPercent
        return max(minimumWeightPercent, 100 - span * min(lag, maximum) / maximum)
    }
}

/// What a check answers, in no dialect's words: each case lists HTTP's
/// status (``HTTPResponse``) and the agent's line (``AgentReply``).
enum Answer: Equatable, Sendable {
    /// The node is what was asked for: 200; the agent's `ready up` with
    /// `weight` percent.
    case serves(weight: Int64)
    /// A standby on the classic `/`, which routes writes to the primary: it
    /// serves reads only. 206, exit status 1; the agent (which asks
    /// `/read-only`) never gets it.
    case servesReads(weight: Int64)
    /// A standby past only its lag limits, asked with `keep_last_standby=1`
    /// where it cannot be seen to be the last usable one: 503 with why, but
    /// the agent's `ready up` with the minimum weight, not `down`.
    case behindButKept(weight: Int64)
    /// The drain file exists: 404 `maintenance`; the agent's `drain`.
    case drained
    /// The node cannot serve what was asked: 503 with why; the agent's
    /// `down #why`.
    case unavailable
    /// The request could not be answered as asked: its 400, 405 or 408.
    case refused(RequestError)
}

extension Verdict {
    /// The answer to `request` given what the probe found.
    init(for request: CheckRequest, outcome: Result<NodeState, ProbeFailure>, drain: DrainState, guardReport: GuardReport? = nil,
         synchrony: Synchrony? = nil) {
        switch (outcome, request.endpoint) {
        case (.failure(let failure), .metrics):
            self.init(answer: .serves(weight: 100), body: failure.reason)
        case (.failure(let failure), .liveness) where failure.provesServerResponds:
            self.init(answer: .serves(weight: 100), body: "responding, but \(failure.reason)")
        case (.failure(let failure), _):
            self.init(unavailable: failure.reason)
        case (.success(let state), _):
            self.init(for: request, state: state, synchrony: synchrony ?? .withoutPeers)
        }
        self.drain = drain
        self.guardReport = guardReport
        let refusal = guardReport?.decision.refusal
        if let refusal, request.endpoint.routes, answer != .unavailable {
            answer = .unavailable
            body = refusal
        }
        if maintenance, request.endpoint.routes, refusal == nil {
            answer = .drained
            body = "maintenance"
        }
        if let asked = request.maxconn {
            maxconn = state?.connectionSlots.map { $0.maxconn(for: asked) } ?? .withheld(reason: "connection slots not probed")
            leavesServerState = asked.alone
        }
    }

    /// The answer to `request` from a node that answered, before the drain file.
    private init(for request: CheckRequest, state: NodeState, synchrony: Synchrony) {
        let weight = Self.weightPercent(of: state, requirements: request.requirements)
        switch (request.endpoint, state.inRecovery) {
        case (.role, false), (.readOnly, false), (.primary, false), (.readiness, false):
            self.init(answer: .serves(weight: weight), body: "primary")
        case (.readiness, true):
            self.init(standby: request.streamingRequirements.standing(of: state, seenBy: request.serverState),
                      serving: .serves(weight: weight), keepsLastStandby: false)
        case (.synchronous, true), (.asynchronous, true):
            let standing = request.streamingRequirements.standing(of: state, seenBy: request.serverState)
            if case .fails(let reason, _) = standing {
                self.init(unavailable: reason)
            } else {
                self.init(wantsSynchronous: request.endpoint == .synchronous, synchrony: synchrony, weight: weight)
            }
            self.standing = standing
        case (.role, true):
            self.init(standby: request.requirements.standing(of: state, seenBy: request.serverState),
                      serving: .servesReads(weight: weight), keepsLastStandby: request.requirements.keepsLastStandby)
        case (.replica, true), (.readOnly, true):
            self.init(standby: request.requirements.standing(of: state, seenBy: request.serverState),
                      serving: .serves(weight: weight), keepsLastStandby: request.requirements.keepsLastStandby)
        case (.primary, true):
            self.init(unavailable: "not the primary: standby")
        case (.replica, false), (.synchronous, false), (.asynchronous, false):
            self.init(unavailable: "not a standby: primary")
        case (.health, _), (.status, _), (.liveness, _), (.metrics, _), (.cluster, _):
            self.init(answer: .serves(weight: weight), body: state.role)
        }
        self.state = state
    }

    /// A streaming standby's answer to `/synchronous` or `/asynchronous`.
    private init(wantsSynchronous: Bool, synchrony: Synchrony, weight: Int64) {
        switch (wantsSynchronous, synchrony) {
        case (true, .synchronous):
            self.init(answer: .serves(weight: weight), body: "synchronous standby")
        case (false, .asynchronous):
            self.init(answer: .serves(weight: weight), body: "asynchronous standby")
        case (false, .cascading(let primary)):
            self.init(answer: .serves(weight: weight), body: "asynchronous standby (cascading: \(primary) does not stream to it)")
        case (true, .asynchronous(let primary, let syncState)):
            self.init(unavailable: "not a synchronous standby: \(primary) lists it as \(syncState)")
        case (true, .cascading(let primary)):
            self.init(unavailable: "not a synchronous standby: \(primary) does not stream to it (cascading)")
        case (false, .synchronous(let primary, let syncState)):
            self.init(unavailable: "not an asynchronous standby: \(primary) lists it as \(syncState)")
        case (_, .unknown(let reason)):
            self.init(unavailable: reason)
        }
    }

    /// A standby's answer on an endpoint that routes reads to it: `serving`
    /// while it serves (a kept one says why in the body), 503 why not; past
    /// only its lag limits with `keepsLastStandby`, kept at the minimum weight.
    private init(standby standing: StandbyStanding, serving: Answer, keepsLastStandby: Bool) {
        switch standing {
        case .meets: self.init(answer: serving, body: "standby")
        case .kept(let why): self.init(answer: serving, body: "standby, \(why)")
        case .fails(let reason, lagOnly: true) where keepsLastStandby:
            self.init(answer: .behindButKept(weight: Self.minimumWeightPercent), body: reason)
        case .fails(let reason, _): self.init(unavailable: reason)
        }
        self.standing = standing
    }

    /// A 503 with `reason` as its body.
    init(unavailable reason: String) {
        self.init(answer: .unavailable, body: reason)
    }

    /// The answer to a request that cannot be served as asked.
    init(refusing error: RequestError) {
        self.init(answer: .refused(error), body: error.reason)
    }
}

/// The process's exit status: distinct for each kind of answer, and a usage
/// error apart from every health state (pg_isready's model).
enum ExitCode: Int32, Sendable {
    /// 200: the primary on `/`, or the endpoint's condition holds.
    case success = 0
    /// 206: a standby on `/`.
    case standby = 1
    /// 503: the role cannot be verified, or the condition does not hold.
    case unavailable = 2
    /// 404: the drain file exists.
    case maintenance = 3
    /// 400, 405 or 408: the request (or `agent-send` line) was refused.
    case refused = 4
    /// A bad command line or environment (`EX_USAGE` from sysexits.h).
    case usage = 64
    /// `--help` or `--version` could not be written (`EX_IOERR`).
    case outputFailed = 74
}
