/// The answer to one check: the HTTP status, the body's text, the exit status,
/// and what was learned on the way (for JSON and debugging headers).
///
/// This is the only place that maps a node's state to an answer. With `S` a
/// standby that meets the request's ``StandbyRequirements`` and `s` one that
/// does not:
///
/// | endpoint                  | primary        | standby `S`    | standby `s`  | no answer   |
/// |---------------------------|----------------|----------------|--------------|-------------|
/// | `/` (classic)             | 200 `primary`  | 206 `standby`  | 503 why      | 503 why     |
/// | `/primary` and aliases    | 200            | 503            | 503          | 503         |
/// | `/replica`, `/standby`    | 503            | 200            | 503 why      | 503         |
/// | `/read-only`              | 200            | 200            | 503 why      | 503         |
/// | `/health`                 | 200            | 200            | 200          | 503         |
/// | `/status` (JSON)          | 200            | 200            | 200          | 503         |
///
/// The drain file turns every routing answer (the first four rows) into
/// 404 `maintenance`, which HAProxy's `http-check disable-on-404` treats as
/// "drain": no new sessions, existing ones untouched.
///
public struct Verdict: Equatable, Sendable {
    /// The HTTP status of the answer.
    public var status: HTTPStatus
    /// One line: the role, or why not.
    public var body: String
    /// The process's exit status for this answer.
    public var exitStatus: ExitCode
    /// What the probe found, when it connected.
    public var state: NodeState?
    /// Whether the drain file was present.
    public var maintenance: Bool

    /// An answer as given; prefer the initialisers that derive it.
    public init(status: HTTPStatus, body: String, exitStatus: ExitCode, state: NodeState? = nil, maintenance: Bool = false) {
        self.status = status
        self.body = body
        self.exitStatus = exitStatus
        self.state = state
        self.maintenance = maintenance
    }

    /// The answer to `request` given what the probe found.
    public init(for request: CheckRequest, outcome: Result<NodeState, ProbeFailure>, maintenance: Bool) {
        switch outcome {
        case .failure(let failure):
            self.init(unavailable: failure.reason)
        case .success(let state):
            self.init(for: request, state: state)
        }
        self.maintenance = maintenance
        if maintenance, request.endpoint.honoursMaintenance { becomeMaintenance() }
    }

    /// The answer to `request` from a node that answered, before the drain file.
    private init(for request: CheckRequest, state: NodeState) {
        let unmet = state.inRecovery ? request.requirements.unmet(by: state) : nil
        switch (request.endpoint, state.inRecovery) {
        case (.role, false), (.readOnly, false), (.primary, false):
            self.init(status: .ok, body: "primary", exitStatus: .success)
        case (.role, true) where unmet == nil:
            self.init(status: .partialContent, body: "standby", exitStatus: .standby)
        case (.replica, true) where unmet == nil, (.readOnly, true) where unmet == nil:
            self.init(status: .ok, body: "standby", exitStatus: .success)
        case (.role, true), (.replica, true), (.readOnly, true):
            self.init(unavailable: unmet ?? "standby")
        case (.primary, true):
            self.init(unavailable: "not the primary: standby")
        case (.replica, false):
            self.init(unavailable: "not a standby: primary")
        case (.health, _), (.status, _):
            self.init(status: .ok, body: state.role, exitStatus: .success)
        }
        self.state = state
    }

    /// A 503 with `reason` as its body.
    public init(unavailable reason: String) {
        self.init(status: .serviceUnavailable, body: reason, exitStatus: .unavailable)
    }

    /// The answer to a request that cannot be served as asked.
    public init(refusing error: RequestError) {
        self.init(status: error.status, body: error.reason, exitStatus: .refused)
    }

    private mutating func becomeMaintenance() {
        status = .notFound
        body = "maintenance"
        exitStatus = .maintenance
    }
}

extension StandbyRequirements {
    /// The first requirement `state` fails, as the reason a 503 gives; nil when
    /// all are met. A signal the role cannot see fails a requirement on it.
    public func unmet(by state: NodeState) -> String? {
        if requiresStreaming {
            switch state.receiver {
            case .running(status: "streaming", _), .notApplicable:
                break
            case .notVisible:
                return "replication state not visible to the monitoring role (grant pg_monitor)"
            case .stopped:
                return "WAL receiver not running"
            case .running(let status, _):
                return "WAL receiver \(status), not streaming"
            }
        }
        if let maximum = maximumLagBytes {
            guard let lag = state.lagBytes else { return "replication lag unknown (no WAL received by streaming)" }
            if lag > maximum {
                var (lagText, maximumText) = (ByteCount.describe(lag), ByteCount.describe(maximum))
                if lagText == maximumText { (lagText, maximumText) = ("\(lag) bytes", "\(maximum) bytes") }
                return "replication lag \(lagText) exceeds maximum \(maximumText)"
            }
        }
        if let maximum = maximumReplayDelay {
            guard let delay = state.replayDelay else { return "replay delay unknown (no WAL received by streaming)" }
            if delay > maximum {
                return "replay delay \(delay)s exceeds maximum \(maximum)s"
            }
        }
        return nil
    }
}

/// The process's exit status: distinct for each kind of answer, and a usage
/// error apart from every health state (pg_isready's model).
public enum ExitCode: Int32, Sendable {
    /// 200: the primary on `/`, or the endpoint's condition holds.
    case success = 0
    /// 206: a standby on `/`.
    case standby = 1
    /// 503: the role cannot be verified, or the condition does not hold.
    case unavailable = 2
    /// 404: the drain file exists.
    case maintenance = 3
    /// 400 or 405: the request (or `agent-send` line) was refused.
    case refused = 4
    /// A bad command line or environment (`EX_USAGE` from sysexits.h).
    case usage = 64
    /// `--help` or `--version` could not be written (`EX_IOERR`).
    case outputFailed = 74
}
