/// The answer to one check: the HTTP status, the body's text, the exit status,
/// and what was learned on the way (for JSON and debugging headers).
///
/// This is the only place that maps a node's state to an answer. With `S` a
/// standby that meets the request's ``StandbyRequirements`` and `s` one that
/// does not (``StandbyRequirements/standing(of:seenBy:)``: the limits, their
/// rejoin threshold while HAProxy's `send-state` shows it DOWN, and a
/// standby kept as the last usable one, which answers as `S`):
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
struct Verdict: Equatable, Sendable {
    /// The HTTP status of the answer.
    var status: HTTPStatus
    /// One line: the role, or why not.
    var body: String
    /// The process's exit status for this answer.
    var exitStatus: ExitCode
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
    /// How long the probe took, connect to last row.
    var probeDuration: Milliseconds?
    /// How old the probe's outcome is, when the result cache is on (zero:
    /// probed for this check).
    var age: Milliseconds?

    /// Whether the drain file was present.
    var maintenance: Bool { drain == .present }
}

extension Verdict {
    /// The answer to `request` given what the probe found.
    init(for request: CheckRequest, outcome: Result<NodeState, ProbeFailure>, drain: DrainState, guardReport: GuardReport? = nil,
         synchrony: Synchrony? = nil) {
        switch (outcome, request.endpoint) {
        case (.failure(let failure), .metrics):
            self.init(status: .ok, body: failure.reason, exitStatus: .success)
        case (.failure(let failure), .liveness) where failure.provesServerResponds:
            self.init(status: .ok, body: "responding, but \(failure.reason)", exitStatus: .success)
        case (.failure(let failure), _):
            self.init(unavailable: failure.reason)
        case (.success(let state), _):
            self.init(for: request, state: state, synchrony: synchrony ?? .withoutPeers)
        }
        self.drain = drain
        self.guardReport = guardReport
        let refusal = guardReport?.decision.refusal
        if let refusal, request.endpoint.routes, status != .serviceUnavailable {
            status = .serviceUnavailable
            body = refusal
            exitStatus = .unavailable
        }
        if maintenance, request.endpoint.routes, refusal == nil { becomeMaintenance() }
    }

    /// The answer to `request` from a node that answered, before the drain file.
    private init(for request: CheckRequest, state: NodeState, synchrony: Synchrony) {
        switch (request.endpoint, state.inRecovery) {
        case (.role, false), (.readOnly, false), (.primary, false), (.readiness, false):
            self.init(status: .ok, body: "primary", exitStatus: .success)
        case (.readiness, true):
            self.init(standby: request.streamingRequirements.standing(of: state, seenBy: request.serverState),
                      serving: .ok, exitStatus: .success)
        case (.synchronous, true), (.asynchronous, true):
            let standing = request.streamingRequirements.standing(of: state, seenBy: request.serverState)
            if case .fails(let reason, _) = standing {
                self.init(unavailable: reason)
            } else {
                self.init(wantsSynchronous: request.endpoint == .synchronous, synchrony: synchrony)
            }
            self.standing = standing
        case (.role, true):
            self.init(standby: request.requirements.standing(of: state, seenBy: request.serverState),
                      serving: .partialContent, exitStatus: .standby)
        case (.replica, true), (.readOnly, true):
            self.init(standby: request.requirements.standing(of: state, seenBy: request.serverState),
                      serving: .ok, exitStatus: .success)
        case (.primary, true):
            self.init(unavailable: "not the primary: standby")
        case (.replica, false), (.synchronous, false), (.asynchronous, false):
            self.init(unavailable: "not a standby: primary")
        case (.health, _), (.status, _), (.liveness, _), (.metrics, _), (.cluster, _):
            self.init(status: .ok, body: state.role, exitStatus: .success)
        }
        self.state = state
    }

    /// A streaming standby's answer to `/synchronous` or `/asynchronous`.
    private init(wantsSynchronous: Bool, synchrony: Synchrony) {
        switch (wantsSynchronous, synchrony) {
        case (true, .synchronous):
            self.init(status: .ok, body: "synchronous standby", exitStatus: .success)
        case (false, .asynchronous):
            self.init(status: .ok, body: "asynchronous standby", exitStatus: .success)
        case (false, .cascading(let primary)):
            self.init(status: .ok, body: "asynchronous standby (cascading: \(primary) does not stream to it)", exitStatus: .success)
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

    /// A standby's answer on an endpoint that routes reads to it: `status`
    /// while it serves (a kept one says why in the body), 503 why not.
    private init(standby standing: StandbyStanding, serving status: HTTPStatus, exitStatus: ExitCode) {
        switch standing {
        case .meets: self.init(status: status, body: "standby", exitStatus: exitStatus)
        case .kept(let why): self.init(status: status, body: "standby, \(why)", exitStatus: exitStatus)
        case .fails(let reason, _): self.init(unavailable: reason)
        }
        self.standing = standing
    }

    /// A 503 with `reason` as its body.
    init(unavailable reason: String) {
        self.init(status: .serviceUnavailable, body: reason, exitStatus: .unavailable)
    }

    /// The answer to a request that cannot be served as asked.
    init(refusing error: RequestError) {
        self.init(status: error.status, body: error.reason, exitStatus: .refused)
    }

    private mutating func becomeMaintenance() {
        status = .notFound
        body = "maintenance"
        exitStatus = .maintenance
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
