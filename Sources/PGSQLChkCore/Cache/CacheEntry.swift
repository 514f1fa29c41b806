#if canImport(Glibc)
import Glibc
#endif

/// One probe's outcome as the result cache keeps it: what the node said (or
/// why it could not be asked), when, how long asking took, and for which
/// ``CacheKey``. Never a
/// rendered answer: every check applies its own endpoint, limits and drain
/// file to it.
///
/// The file is text, one `name value` line per field in a fixed order,
/// versioned by its first line and closed by `end`:
///
///     pgsqlchk-cache 6
///     key 9f1c0a7d3e5b2c41
///     boot 1767225600
///     probed 81234567890123
///     probe_duration_ms 12
///     outcome state
///     in_recovery t
///     ...
///     end
///
/// ``decode(_:)`` accepts exactly what ``encoded`` writes and nothing else:
/// a missing, extra, reordered or malformed line makes the entry corrupt.
struct CacheEntry: Equatable, Sendable {
    /// The format's version, the first line's number.
    static let version = 6
    /// The largest entry written or read. The slots' addresses take about
    /// 45 bytes each, so this holds one for every session of a server with
    /// thousands of `max_connections`; a bigger entry is neither written nor
    /// read (each check then probes, and says why).
    static let maximumSize = 262_144

    /// The ``CacheKey/digest`` the outcome answers.
    var key: String
    /// When the machine booted, in whole seconds of the wall clock
    /// (``BootClock/bootTime()``): an entry from an earlier boot never matches.
    var boot: Int64
    /// When the probe started, in nanoseconds of `CLOCK_BOOTTIME`, which
    /// counts suspend and never jumps. The node was read at some moment
    /// after this, so an age counted from it is never too young, however
    /// long the peers took: an entry is never served once the node's answer
    /// in it may be a TTL old.
    var probed: UInt64
    /// How long the probe took, connect to last row (peers included), for
    /// `pgsqlchk_probe_duration_seconds` on every check the entry answers.
    var probeDuration: Milliseconds
    /// What the probe found.
    var outcome: Result<NodeState, ProbeFailure>

    /// Why an entry was not used.
    enum Problem: Error, Equatable, Sendable {
        /// The text is not an entry this version writes.
        case corrupt(String)
        /// Another key's outcome (a digest collision, or a renamed file).
        case otherKey
        /// Written in another boot.
        case otherBoot
        /// Stamped later than now: not trusted.
        case futureDated
        /// Older than the TTL.
        case expired

        var description: String {
            switch self {
            case .corrupt(let why): "corrupt (\(why))"
            case .otherKey: "for another key"
            case .otherBoot: "from another boot"
            case .futureDated: "dated in the future"
            case .expired: "expired"
            }
        }
    }

    /// How old the entry is at `now`, if it may answer `key` for `ttl`.
    /// (Clocks: ``BootClock``.)
    func age(answering key: String, ttl: Milliseconds, now: UInt64, boot: Int64) throws(Problem) -> Milliseconds {
        guard key == self.key else { throw .otherKey }
        // The boot time is computed from two clocks read at slightly different
        // moments; more than a second apart means another boot (or a stepped
        // wall clock, which merely costs one probe).
        guard abs(boot - self.boot) <= 1 else { throw .otherBoot }
        guard probed <= now else { throw .futureDated }
        let age = Milliseconds(Int((now - probed) / 1_000_000))
        guard age < ttl else { throw .expired }
        return age
    }

    // MARK: Encoding

    /// The entry's text.
    var encoded: String {
        var lines = ["pgsqlchk-cache \(Self.version)", "key \(key)", "boot \(boot)", "probed \(probed)",
                     "probe_duration_ms \(probeDuration.value)"]
        switch outcome {
        case .success(let state):
            lines.append("outcome state")
            lines += Self.lines(of: state)
        case .failure(let failure):
            lines.append("outcome failure")
            lines += Self.lines(of: failure)
        }
        lines.append("end")
        return lines.joined(separator: "\n") + "\n"
    }

    private static func lines(of state: NodeState) -> [String] {
        var lines = [
            "in_recovery " + flag(state.inRecovery),
            "server_version " + clean(state.serverVersion),
            "timeline " + optional(state.timeline),
            "wal_position " + optional(state.walPosition.map(clean)),
            "received_position " + optional(state.receivedPosition.map(clean)),
            "replayed_position " + optional(state.replayedPosition.map(clean)),
            "primary_position " + optional(state.primaryPosition.map(clean)),
            "behind_primary_bytes " + optional(state.behindPrimaryBytes),
            "receiver_timeout_ms " + optional(state.receiverTimeout?.value),
            "replay_backlog_bytes " + optional(state.replayBacklogBytes),
            "replay_delay_ms " + optional(state.replayDelay?.value),
            "replay_paused " + optional(state.replayPaused.map(flag)),
        ]
        switch state.receiver {
        case .notApplicable: lines.append("receiver none")
        case .notVisible: lines.append("receiver unknown")
        case .stopped: lines.append("receiver stopped")
        case .running(let status, let silence):
            lines += ["receiver running", "receiver_status " + clean(status), "receiver_silence_ms " + optional(silence?.value)]
        }
        if let position = state.position {
            lines += ["position present"] + Self.lines(of: position, prefix: "position")
        } else {
            lines.append("position none")
        }
        if let identity = state.identity {
            lines += ["identity present", "identity_system_identifier " + clean(identity.systemIdentifier),
                      "identity_slot " + optional(identity.slotName.map(clean)),
                      // A name may be anything, even "-": "=" marks one that is there.
                      "identity_application_name " + (identity.applicationName.map { "=" + clean($0) } ?? "-")]
        } else {
            lines.append("identity none")
        }
        if let peers = state.peers {
            lines.append("peers \(peers.count)")
            for answer in peers {
                lines.append("peer " + clean(answer.peer.description))
                switch answer.outcome {
                case .success(let position): lines += ["peer_outcome position"] + Self.lines(of: position, prefix: "peer")
                case .failure(let failure): lines += ["peer_outcome failure"] + Self.lines(of: failure)
                }
            }
        } else {
            lines.append("peers none")
        }
        if let slots = state.connectionSlots {
            lines += ["slots present", "max_connections \(slots.maxConnections)",
                      "superuser_reserved_connections \(slots.superuserReservedConnections)",
                      "reserved_connections \(slots.reservedConnections)", "check_role_limit \(slots.checkRoleLimit)",
                      "client_sessions " + optional(slots.clientSessions), "client_role_limit " + optional(slots.clientRoleLimit),
                      "client_role_sessions " + optional(slots.clientRoleSessions), "sessions_by_address \(slots.byAddress.count)"]
            lines += slots.byAddress.map { "address \(clean($0.address)) \($0.sessions) \($0.clientRoleSessions)" }
        } else {
            lines.append("slots none")
        }
        return lines
    }

    /// A ``NodePosition``'s lines, each name starting with `prefix`, then
    /// its senders (a primary's), three lines each.
    private static func lines(of position: NodePosition, prefix: String) -> [String] {
        var lines = [prefix + "_in_recovery " + flag(position.inRecovery), prefix + "_timeline \(position.timeline)",
                     prefix + "_system_identifier " + clean(position.systemIdentifier), prefix + "_started_at " + clean(position.startedAt),
                     prefix + "_port " + clean(position.port), prefix + "_standbys \(position.standbys.count)"]
        for standby in position.standbys {
            lines += ["standby_sync_state " + clean(standby.syncState), "standby_slot " + optional(standby.slotName.map(clean)),
                      "standby_application_name " + clean(standby.applicationName)]
        }
        return lines
    }

    private static func lines(of failure: ProbeFailure) -> [String] {
        var lines = ["failure " + failureName(failure)]
        switch failure {
        case .tlsFailed(let problem, _): lines.append("tls " + tlsName(problem))
        case .connectionRejected(let sqlstate, _): lines.append("sqlstate " + clean(sqlstate))
        case .queryFailed(let statement, _): lines.append("statement " + statement.rawValue)
        case .timedOut(let phase): lines.append("phase " + phaseName(phase))
        default: break
        }
        if case .timedOut = failure {} else { lines.append("detail " + clean(failure.detail)) }
        return lines
    }

    // MARK: Decoding

    /// The entry `text` holds; ``Problem/corrupt(_:)`` for anything
    /// ``encoded`` would not have written.
    static func decode(_ text: String) throws(Problem) -> CacheEntry {
        var reader = LineReader(text)
        guard try reader.take("pgsqlchk-cache") == String(version) else { throw .corrupt("version") }
        let key = try reader.take("key")
        guard CacheKey.isDigest(Substring(key)) else { throw .corrupt("key") }
        let boot = try number(try reader.take("boot"), "boot", as: Int64.self)
        let probed = try number(try reader.take("probed"), "probed", as: UInt64.self)
        let probeDuration = try number(try reader.take("probe_duration_ms"), "probe_duration_ms", as: Int.self)
        guard probeDuration >= 0 else { throw .corrupt("probe_duration_ms") }
        let outcome: Result<NodeState, ProbeFailure>
        switch try reader.take("outcome") {
        case "state": outcome = .success(try state(from: &reader))
        case "failure": outcome = .failure(try failure(from: &reader))
        default: throw .corrupt("outcome")
        }
        guard try reader.take("end") == "" else { throw .corrupt("end") }
        guard reader.isAtEnd else { throw .corrupt("text after end") }
        return CacheEntry(key: key, boot: boot, probed: probed, probeDuration: Milliseconds(probeDuration), outcome: outcome)
    }

    private static func state(from reader: inout LineReader) throws(Problem) -> NodeState {
        guard let inRecovery = flag(try reader.take("in_recovery")) else { throw .corrupt("in_recovery") }
        var state = NodeState(inRecovery: inRecovery, serverVersion: try reader.take("server_version"))
        state.timeline = try optionalNumber(try reader.take("timeline"), "timeline", as: Int.self)
        state.walPosition = optionalText(try reader.take("wal_position"))
        state.receivedPosition = optionalText(try reader.take("received_position"))
        state.replayedPosition = optionalText(try reader.take("replayed_position"))
        state.primaryPosition = optionalText(try reader.take("primary_position"))
        state.behindPrimaryBytes = try optionalNumber(try reader.take("behind_primary_bytes"), "behind_primary_bytes", as: Int64.self)
        state.receiverTimeout = try optionalNumber(try reader.take("receiver_timeout_ms"), "receiver_timeout_ms", as: Int.self)
            .map(Milliseconds.init)
        state.replayBacklogBytes = try optionalNumber(try reader.take("replay_backlog_bytes"), "replay_backlog_bytes", as: Int64.self)
        state.replayDelay = try optionalNumber(try reader.take("replay_delay_ms"), "replay_delay_ms", as: Int.self).map(Milliseconds.init)
        let paused = try reader.take("replay_paused")
        state.replayPaused = paused == "-" ? nil : try flagOrThrow(paused, "replay_paused")
        switch try reader.take("receiver") {
        case "none": state.receiver = .notApplicable
        case "unknown": state.receiver = .notVisible
        case "stopped": state.receiver = .stopped
        case "running":
            let status = try reader.take("receiver_status")
            let silence = try optionalNumber(try reader.take("receiver_silence_ms"), "receiver_silence_ms", as: Int.self)
            state.receiver = .running(status: status, silence: silence.map(Milliseconds.init))
        default: throw .corrupt("receiver")
        }
        switch try reader.take("position") {
        case "none":
            break
        case "present": state.position = try position(from: &reader, prefix: "position")
        default: throw .corrupt("position")
        }
        switch try reader.take("identity") {
        case "none":
            break
        case "present":
            state.identity = StandbyIdentity(systemIdentifier: try reader.take("identity_system_identifier"),
                                             slotName: optionalText(try reader.take("identity_slot")),
                                             applicationName: try markedText(try reader.take("identity_application_name"),
                                                                             "identity_application_name"))
        default: throw .corrupt("identity")
        }
        let peers = try reader.take("peers")
        if peers != "none" {
            let count = try number(peers, "peers", as: Int.self)
            guard (0...PeerAddress.maximumCount).contains(count) else { throw .corrupt("peers") }
            var answers: [PeerReport] = []
            for _ in 0..<count {
                guard let peer = PeerAddress(Substring(try reader.take("peer"))) else { throw .corrupt("peer") }
                switch try reader.take("peer_outcome") {
                case "position": answers.append(PeerReport(peer: peer, outcome: .success(try position(from: &reader, prefix: "peer"))))
                case "failure": answers.append(PeerReport(peer: peer, outcome: .failure(try failure(from: &reader))))
                default: throw .corrupt("peer_outcome")
                }
            }
            state.peers = answers
        }
        switch try reader.take("slots") {
        case "none":
            break
        case "present":
            func count(_ field: String) throws(Problem) -> Int { try number(try reader.take(field), field, as: Int.self) }
            func optionalCount(_ field: String) throws(Problem) -> Int? { try optionalNumber(try reader.take(field), field, as: Int.self) }
            state.connectionSlots = ConnectionSlots(
                maxConnections: try count("max_connections"),
                superuserReservedConnections: try count("superuser_reserved_connections"),
                reservedConnections: try count("reserved_connections"),
                checkRoleLimit: try count("check_role_limit"),
                clientSessions: try optionalCount("client_sessions"),
                clientRoleLimit: try optionalCount("client_role_limit"),
                clientRoleSessions: try optionalCount("client_role_sessions"))
            let addresses = try count("sessions_by_address")
            guard addresses >= 0 else { throw .corrupt("sessions_by_address") }
            for _ in 0..<addresses {
                let fields = try reader.take("address").split(separator: " ", omittingEmptySubsequences: false)
                guard fields.count == 3, !fields[0].isEmpty else { throw .corrupt("address") }
                state.connectionSlots?.byAddress.append(AddressSessions(
                    address: String(fields[0]), sessions: try number(String(fields[1]), "address", as: Int.self),
                    clientRoleSessions: try number(String(fields[2]), "address", as: Int.self)))
            }
        default: throw .corrupt("slots")
        }
        return state
    }

    /// The ``NodePosition`` that ``lines(of:prefix:)`` wrote.
    private static func position(from reader: inout LineReader, prefix: String) throws(Problem) -> NodePosition {
        guard let inRecovery = flag(try reader.take(prefix + "_in_recovery")) else { throw .corrupt(prefix + "_in_recovery") }
        let timeline = try number(try reader.take(prefix + "_timeline"), prefix + "_timeline", as: Int.self)
        var position = NodePosition(inRecovery: inRecovery, timeline: timeline,
                                    systemIdentifier: try reader.take(prefix + "_system_identifier"),
                                    startedAt: try reader.take(prefix + "_started_at"), port: try reader.take(prefix + "_port"))
        let count = try number(try reader.take(prefix + "_standbys"), prefix + "_standbys", as: Int.self)
        guard count >= 0 else { throw .corrupt(prefix + "_standbys") }
        for _ in 0..<count {
            let syncState = try reader.take("standby_sync_state")
            let slot = optionalText(try reader.take("standby_slot"))
            position.standbys.append(StreamingStandby(applicationName: try reader.take("standby_application_name"),
                                                      slotName: slot, syncState: syncState))
        }
        return position
    }

    private static func failure(from reader: inout LineReader) throws(Problem) -> ProbeFailure {
        let name = try reader.take("failure")
        if name == "timed_out" {
            let phaseName = try reader.take("phase")
            guard let phase = CheckPhase.allCases.first(where: { self.phaseName($0) == phaseName }) else { throw .corrupt("phase") }
            return .timedOut(phase: phase)
        }
        var tls: ProbeFailure.TLSProblem?
        var sqlstate: String?
        var statement: Statement?
        if name == "tls_failed" {
            let problemName = try reader.take("tls")
            tls = ProbeFailure.TLSProblem.allCases.first { tlsName($0) == problemName }
            guard tls != nil else { throw .corrupt("tls") }
        } else if name == "connection_rejected" {
            sqlstate = try reader.take("sqlstate")
            guard sqlstate?.utf8.count == 5 else { throw .corrupt("sqlstate") }
        } else if name == "query_failed" {
            statement = Statement(rawValue: try reader.take("statement"))
            guard statement != nil else { throw .corrupt("statement") }
        }
        let detail = try reader.take("detail")
        let failure: ProbeFailure
        switch name {
        case "no_response": failure = .noResponse(detail: detail)
        case "tls_failed": failure = .tlsFailed(tls!, detail: detail)
        case "authentication_failed": failure = .authenticationFailed(detail: detail)
        case "authorization_failed": failure = .authorizationFailed(detail: detail)
        case "too_many_connections": failure = .tooManyConnections(detail: detail)
        case "not_accepting_connections": failure = .notAcceptingConnections(detail: detail)
        case "connection_rejected": failure = .connectionRejected(sqlstate: sqlstate!, detail: detail)
        case "misconfigured": failure = .misconfigured(detail: detail)
        case "query_failed": failure = .queryFailed(statement!, detail: detail)
        case "library_missing": failure = .libraryMissing(detail: detail)
        default: throw .corrupt("failure")
        }
        return failure
    }

    // MARK: Field helpers


    private static func failureName(_ failure: ProbeFailure) -> String {
        switch failure {
        case .noResponse: "no_response"
        case .tlsFailed: "tls_failed"
        case .authenticationFailed: "authentication_failed"
        case .authorizationFailed: "authorization_failed"
        case .tooManyConnections: "too_many_connections"
        case .notAcceptingConnections: "not_accepting_connections"
        case .connectionRejected: "connection_rejected"
        case .misconfigured: "misconfigured"
        case .timedOut: "timed_out"
        case .queryFailed: "query_failed"
        case .libraryMissing: "library_missing"
        }
    }

    private static func tlsName(_ problem: ProbeFailure.TLSProblem) -> String {
        switch problem {
        case .serverWithoutTLS: "server_without_tls"
        case .certificateRejected: "certificate_rejected"
        case .localFiles: "local_files"
        case .handshake: "handshake"
        }
    }

    private static func phaseName(_ phase: CheckPhase) -> String {
        switch phase {
        case .readingRequest: "reading_request"
        case .awaitingSharedProbe: "awaiting_shared_probe"
        case .resolving: "resolving"
        case .connecting: "connecting"
        case .loggingIn: "logging_in"
        case .querying: "querying"
        case .askingPeers: "asking_peers"
        }
    }

    /// Text as one line of printable characters: a newline or control
    /// character in a server's answer cannot forge a field.
    private static func clean(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : $0 }))
    }

    private static func flag(_ value: Bool) -> String { value ? "t" : "f" }

    private static func flag(_ text: String) -> Bool? {
        text == "t" ? true : text == "f" ? false : nil
    }

    private static func flagOrThrow(_ text: String, _ field: String) throws(Problem) -> Bool {
        guard let value = flag(text) else { throw .corrupt(field) }
        return value
    }

    private static func optional(_ value: (some CustomStringConvertible)?) -> String {
        value.map(\.description) ?? "-"
    }

    private static func optionalText(_ text: String) -> String? {
        text == "-" ? nil : text
    }

    /// A text that may be anything, written `=text`, or `-` when absent.
    private static func markedText(_ text: String, _ field: String) throws(Problem) -> String? {
        if text == "-" { return nil }
        guard text.hasPrefix("=") else { throw .corrupt(field) }
        return String(text.dropFirst())
    }

    /// A decimal integer as ``encoded`` writes it: digits, an optional minus
    /// sign, no leading zeros.
    private static func number<Value: FixedWidthInteger>(_ text: String, _ field: String, as type: Value.Type) throws(Problem) -> Value {
        let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit), digits == "0" || !digits.hasPrefix("0"),
              let value = Value(text) else { throw .corrupt(field) }
        return value
    }

    private static func optionalNumber<Value: FixedWidthInteger>(_ text: String, _ field: String, as type: Value.Type) throws(Problem) -> Value? {
        text == "-" ? nil : try number(text, field, as: type)
    }
}

/// Reads an entry's lines in order, each `name value`.
private struct LineReader {
    private var lines: ArraySlice<Substring>

    init(_ text: String) {
        // The text must end with a newline: the split's last piece is then
        // empty, and a file cut short anywhere else lacks its `end`.
        var pieces = text.split(separator: "\n", omittingEmptySubsequences: false)
        if pieces.last == "" { pieces.removeLast() } else { pieces.append("\u{0}truncated") }
        lines = pieces[...]
    }

    var isAtEnd: Bool { lines.isEmpty }

    /// The value of the next line, which must be `name` then a space and the
    /// value, or `name` alone (an empty value).
    mutating func take(_ name: String) throws(CacheEntry.Problem) -> String {
        guard let line = lines.popFirst() else { throw .corrupt("missing \(name)") }
        if line == name { return "" }
        guard line.hasPrefix(name + " ") else { throw .corrupt("expected \(name)") }
        return String(line.dropFirst(name.count + 1))
    }
}

/// The clocks an entry is dated by.
enum BootClock {
    /// Nanoseconds since boot, suspend included (`CLOCK_BOOTTIME`): it never
    /// jumps, so an entry's age cannot be cut or stretched by a wall-clock step.
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_BOOTTIME, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// When the machine booted, in seconds of the wall clock: the same for
    /// every check of one boot (within rounding), different after a reboot.
    /// Read from the clocks, not `/proc/sys/kernel/random/boot_id`, which a
    /// hardened unit (`ProcSubset=pid`) cannot see.
    static func bootTime() -> Int64 {
        var wall = timespec()
        var sinceBoot = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        clock_gettime(CLOCK_BOOTTIME, &sinceBoot)
        let difference = (Int64(wall.tv_sec) - Int64(sinceBoot.tv_sec)) * 1_000_000_000 + Int64(wall.tv_nsec) - Int64(sinceBoot.tv_nsec)
        return (difference + 500_000_000) / 1_000_000_000
    }
}
