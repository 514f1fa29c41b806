/// What a standby must show before it is trusted with reads.
///
/// Each limit is off unless set (command line, environment or request), so a
/// check that asks for nothing answers as the classic pgsqlchk did.
struct StandbyRequirements: Equatable, Sendable {
    /// Most bytes of the primary's WAL not yet replayed here (`lag=`, as
    /// Patroni measures it: against the primary).
    var maximumLagBytes: Int64?
    /// Most bytes of received WAL not yet replayed (`replay_backlog=`): what
    /// `lag=` meant before 0.2, and needs no privilege to see.
    var maximumReplayBacklogBytes: Int64?
    /// Most time the standby's replay may trail the last change it received
    /// (`replay_delay=`); zero whenever everything received is replayed.
    var maximumReplayDelay: Milliseconds?
    /// The WAL receiver must be streaming (`replication_state=streaming`).
    var requiresStreaming = false

    /// The query parameters, in the order a reason line suggests them.
    static let parameters = ["lag", "replay_backlog", "replay_delay", "replication_state"]

    /// Sets one limit from its query parameter (`lag`, `replay_delay`,
    /// `replication_state`).
    mutating func apply(parameter name: String, value: String) throws(RequestError) {
        switch name {
        case "lag":
            guard let bytes = ByteCount.parse(value) else {
                throw .invalidValue(parameter: name, value: value, expected: "expected bytes such as 1048576, 16MB or 1GB")
            }
            maximumLagBytes = bytes
        case "replay_backlog":
            guard let bytes = ByteCount.parse(value) else {
                throw .invalidValue(parameter: name, value: value, expected: "expected bytes such as 1048576, 16MB or 1GB")
            }
            maximumReplayBacklogBytes = bytes
        case "replay_delay":
            guard let delay = Milliseconds(duration: value) else {
                throw .invalidValue(parameter: name, value: value, expected: "expected a duration such as 30s, 500ms or 2min")
            }
            maximumReplayDelay = delay
        case "replication_state":
            guard value == "streaming" else {
                throw .invalidValue(parameter: name, value: value, expected: "only streaming is supported")
            }
            requiresStreaming = true
        default:
            throw .unknownParameter(name: name)
        }
    }

    /// The first requirement `state` fails, as the reason a 503 gives; nil when
    /// all are met. A signal the role cannot see fails a requirement on it.
    func unmet(by state: NodeState) -> String? {
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
            guard let lag = state.lagBytes else { return "replication lag unknown (\(Self.lagUnknownBecause(state)))" }
            if lag > maximum { return Self.exceeds("replication lag", lag, maximum) }
        }
        if let maximum = maximumReplayBacklogBytes {
            guard let backlog = state.replayBacklogBytes else { return "replay backlog unknown (no WAL received by streaming)" }
            if backlog > maximum { return Self.exceeds("replay backlog", backlog, maximum) }
        }
        if let maximum = maximumReplayDelay {
            guard let delay = state.replayDelay else { return "replay delay unknown (no WAL received by streaming)" }
            if delay > maximum {
                return "replay delay \(delay)s exceeds maximum \(maximum)s"
            }
        }
        return nil
    }

    /// `replication lag 48 MB exceeds maximum 16 MB`, in bytes where the units would read alike.
    private static func exceeds(_ what: String, _ value: Int64, _ maximum: Int64) -> String {
        var (valueText, maximumText) = (ByteCount.describe(value), ByteCount.describe(maximum))
        if valueText == maximumText { (valueText, maximumText) = ("\(value) bytes", "\(maximum) bytes") }
        return "\(what) \(valueText) exceeds maximum \(maximumText)"
    }

    /// Why a standby's lag behind the primary is unknown.
    private static func lagUnknownBecause(_ state: NodeState) -> String {
        switch state.receiver {
        case .notVisible: "not visible to the monitoring role; grant pg_monitor"
        case .stopped, .notApplicable: "WAL receiver not running"
        case .running(status: "streaming", _) where state.behindPrimaryBytes == nil: "no position received from the primary yet"
        case .running(status: "streaming", let silence):
            "no word from the primary for \(silence.map { "\($0)s" } ?? "an unknown time"), over wal_receiver_timeout"
        case .running(let status, _): "WAL receiver \(status), not streaming"
        }
    }
}
