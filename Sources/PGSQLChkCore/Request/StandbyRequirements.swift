/// What a standby must show before it is trusted with reads.
///
/// Each limit is off unless set (command line, environment or request), so a
/// check that asks for nothing answers as the classic pgsqlchk did.
struct StandbyRequirements: Equatable, Sendable {
    /// Most bytes of the primary's WAL not yet replayed here (`lag=`, as
    /// Patroni measures it: against the primary).
    var maximumLagBytes: Int64?
    /// Most bytes of received WAL not yet replayed (`replay_backlog=`):
    /// needs no privilege to see, but cannot tell a standby that stopped
    /// receiving from one that is caught up.
    var maximumReplayBacklogBytes: Int64?
    /// Most time the standby's replay may trail the last change it received
    /// (`replay_delay=`); zero whenever everything received is replayed.
    var maximumReplayDelay: Milliseconds?
    /// The WAL receiver must be streaming (`replication_state=streaming`).
    var requiresStreaming = false
    /// Share of each limit (`rejoin=75`, percent) that a standby HAProxy has out of
    /// rotation must be back at or below before it answers as serving again;
    /// one in rotation keeps serving up to the limit itself. Applies only
    /// when HAProxy says which (`http-check send-state`).
    var rejoinPercent = Self.defaultRejoinPercent
    /// Keep serving past a lag limit while HAProxy shows this standby UP as
    /// the only usable server of its backend, streaming with its lag known
    /// (`keep_last_standby=1`); for the agent, answer the minimum weight
    /// instead of `down` for such a lag-only shortfall.
    var keepsLastStandby = false

    /// The rejoin threshold's default: a quarter of the limit below it,
    /// wider than the lag's own noise as checks see it (about a tenth of the
    /// limit in `make flap-bench`; 16 MB, one WAL segment, at the sample's
    /// `lag=64MB`), while a standby out of rotation still rejoins before it
    /// is fully caught up, which under steady writes may never come.
    static let defaultRejoinPercent = 75

    /// Whether any limit is set: `rejoin=` and `keep_last_standby=` only
    /// qualify limits, so alone they need no replication signal.
    var limitsAnything: Bool {
        maximumLagBytes != nil || maximumReplayBacklogBytes != nil || maximumReplayDelay != nil || requiresStreaming
    }

    /// The query parameters, in the order a reason line suggests them.
    static let parameters = ["lag", "replay_backlog", "replay_delay", "replication_state", "rejoin", "keep_last_standby"]

    /// Sets one limit from its query parameter (`lag`, `replay_backlog`,
    /// `replay_delay`, `replication_state`, `rejoin`, `keep_last_standby`).
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
        case "rejoin":
            // A bare `%` is an invalid escape in a request target, so the
            // sign is optional: `rejoin=75`, or `rejoin=75%25` decoded.
            guard let percent = Self.percent(value.hasSuffix("%") ? value.dropLast() : Substring(value)) else {
                throw .invalidValue(parameter: name, value: value, expected: "expected a percentage of each limit from 0 to 100, such as 75")
            }
            rejoinPercent = percent
        case "keep_last_standby":
            guard value == "1" || value == "0" else {
                throw .invalidValue(parameter: name, value: value, expected: "expected 1 or 0")
            }
            keepsLastStandby = value == "1"
        default:
            throw .unknownParameter(name: name)
        }
    }

    /// How `state` measures up, seen from HAProxy as `haproxy` says (nil
    /// without `http-check send-state`: the limits apply as they are).
    ///
    /// | HAProxy shows the standby            | serves while every limited value is |
    /// |--------------------------------------|-------------------------------------|
    /// | no header, `no check`                | at or below its limit               |
    /// | `UP`, `UP n/m`, `NOLB`               | at or below its limit               |
    /// | `DOWN`, `DOWN n/m`                   | at or below ``rejoinPercent`` of it |
    ///
    /// A signal the role cannot see, or a value that is unknown, fails its
    /// requirement on either side. With ``keepsLastStandby``, a standby past
    /// only known limits, streaming with its lag known, that HAProxy shows
    /// `UP` as the only usable server of its backend is kept.
    func standing(of state: NodeState, seenBy haproxy: HAProxyServerState?) -> StandbyStanding {
        let rejoining = haproxy?.inRotation == false
        var shortfalls: [(reason: String, valuePastLimit: Bool)] = []
        if requiresStreaming {
            switch state.receiver {
            case .running(status: "streaming", _), .notApplicable:
                break
            case .notVisible:
                shortfalls.append(("replication state not visible to the monitoring role (grant pg_monitor)", false))
            case .stopped:
                shortfalls.append(("WAL receiver not running", false))
            case .running(let status, _):
                shortfalls.append(("WAL receiver \(status), not streaming", false))
            }
        }
        if let maximum = maximumLagBytes {
            if let lag = state.lagBytes {
                if let reason = bytesShortfall("replication lag", lag, maximum, rejoining: rejoining) { shortfalls.append((reason, true)) }
            } else {
                shortfalls.append(("replication lag unknown (\(Self.lagUnknownBecause(state)))", false))
            }
        }
        if let maximum = maximumReplayBacklogBytes {
            if let backlog = state.replayBacklogBytes {
                if let reason = bytesShortfall("replay backlog", backlog, maximum, rejoining: rejoining) { shortfalls.append((reason, true)) }
            } else {
                shortfalls.append(("replay backlog unknown (\(Self.replayUnknownBecause(state)))", false))
            }
        }
        if let maximum = maximumReplayDelay {
            if let delay = state.replayDelay {
                let threshold = Milliseconds(Int(rejoinThreshold(of: Int64(maximum.value))))
                if delay > maximum {
                    shortfalls.append(("replay delay \(delay)s exceeds maximum \(maximum)s", true))
                } else if rejoining, delay > threshold {
                    shortfalls.append((rejoinReason("replay delay", "\(delay)s", "\(threshold)s", "\(maximum)s"), true))
                }
            } else {
                shortfalls.append(("replay delay unknown (\(Self.replayUnknownBecause(state)))", false))
            }
        }
        guard let first = shortfalls.first else { return .meets }
        // A known lag implies a receiver that streams and heard from the
        // primary within wal_receiver_timeout.
        let lagOnly = shortfalls.allSatisfy(\.valuePastLimit) && state.lagBytes != nil
        if keepsLastStandby, lagOnly, let haproxy, haproxy.isOnlyUsableServer {
            return .kept("\(first.reason), kept as the only usable server of \(haproxy.displayName)")
        }
        return .fails(first.reason, lagOnly: lagOnly)
    }

    /// Why `value` fails `maximum`: past it, or, while HAProxy has the
    /// standby out of rotation, past the rejoin threshold below it.
    private func bytesShortfall(_ what: String, _ value: Int64, _ maximum: Int64, rejoining: Bool) -> String? {
        if value > maximum { return Self.exceeds(what, value, maximum) }
        let threshold = rejoinThreshold(of: maximum)
        guard rejoining, value > threshold else { return nil }
        var (valueText, thresholdText) = (ByteCount.describe(value), ByteCount.describe(threshold))
        if valueText == thresholdText { (valueText, thresholdText) = ("\(value) bytes", "\(threshold) bytes") }
        return rejoinReason(what, valueText, thresholdText, ByteCount.describe(maximum))
    }

    /// ``rejoinPercent`` of `maximum`, rounded down; split so that no
    /// product overflows, whatever the limit.
    private func rejoinThreshold(of maximum: Int64) -> Int64 {
        let percent = Int64(rejoinPercent)
        return maximum / 100 * percent + maximum % 100 * percent / 100
    }

    /// `replication lag 50 MB exceeds the rejoin threshold 48 MB (75% of 64 MB) while HAProxy has it DOWN`.
    private func rejoinReason(_ what: String, _ value: String, _ threshold: String, _ maximum: String) -> String {
        "\(what) \(value) exceeds the rejoin threshold \(threshold) (\(rejoinPercent)% of \(maximum)) while HAProxy has it DOWN"
    }

    /// `75` from `75`: a whole number from 0 to 100.
    private static func percent(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 3, text.allSatisfy(\.isASCIIDigit), let value = Int(text), value <= 100 else { return nil }
        return value
    }

    /// `replication lag 48 MB exceeds maximum 16 MB`, in bytes where the units would read alike.
    private static func exceeds(_ what: String, _ value: Int64, _ maximum: Int64) -> String {
        var (valueText, maximumText) = (ByteCount.describe(value), ByteCount.describe(maximum))
        if valueText == maximumText { (valueText, maximumText) = ("\(value) bytes", "\(maximum) bytes") }
        return "\(what) \(valueText) exceeds maximum \(maximumText)"
    }

    /// Why a standby's replay backlog or delay is unknown: nothing received
    /// by streaming since the standby started (`pg_last_wal_receive_lsn()`
    /// is NULL), or, with WAL received and not all of it replayed, no
    /// transaction replayed since then, so the time replay has reached is
    /// unknown (`pg_last_xact_replay_timestamp()` is NULL).
    private static func replayUnknownBecause(_ state: NodeState) -> String {
        guard state.receivedPosition != nil else { return "no WAL received by streaming since the standby started" }
        guard state.replayedPosition != nil else { return "replay position unknown" }
        return "no transaction replayed since the standby started"
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

/// How a standby measures up to its ``StandbyRequirements``.
enum StandbyStanding: Equatable, Sendable {
    /// Within every limit: it serves reads.
    case meets
    /// Past a lag limit, but serving: the only usable server of its backend
    /// (`keep_last_standby=1`); the text says which limit and why kept.
    case kept(String)
    /// Not serving, for the reason given. `lagOnly` when only known values
    /// are past their limits, on a standby that streams with its lag known:
    /// what `keep_last_standby=1` may overlook.
    case fails(String, lagOnly: Bool)

    /// Whether the standby falls short only by known values past their limits.
    var isLagOnlyShortfall: Bool {
        if case .fails(_, lagOnly: true) = self { true } else { false }
    }
}
