#if canImport(Glibc)
import Glibc
#endif

/// One probe's outcome as the result cache keeps it: what the node said (or
/// why it could not be asked), when, how long asking took, and for which
/// ``CacheKey``. Never a
/// rendered answer: every check applies its own endpoint, limits and drain
/// file to it.
///
/// The file is text, one `name value` line per field in a fixed order, the
/// one list of lines that both writing and reading walk, versioned by its
/// first line and closed by `end`:
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

    // MARK: The format

    /// The entry's text.
    var encoded: String {
        var entry = self
        var lines = EntryLines()
        // Writing reads no line, so nothing can be corrupt.
        try! entry.lines(&lines)
        return lines.written.joined(separator: "\n") + "\n"
    }

    /// The entry `text` holds; ``Problem/corrupt(_:)`` for anything
    /// ``encoded`` would not have written.
    static func decode(_ text: String) throws(Problem) -> CacheEntry {
        var lines = EntryLines(reading: text)
        var entry = CacheEntry(key: "", boot: 0, probed: 0, probeDuration: Milliseconds(0), outcome: .failure(.noResponse(detail: "")))
        try entry.lines(&lines)
        guard lines.isAtEnd else { throw .corrupt("text after end") }
        return entry
    }

    /// Every line of an entry, in order, written from it or read into it:
    /// ``encoded`` and ``decode(_:)`` both walk this and nothing else.
    private mutating func lines(_ lines: inout EntryLines) throws(Problem) {
        try lines.constant("pgsqlchk-cache", String(Self.version))
        try lines.text("key", &key, valid: { CacheKey.isDigest(Substring($0)) })
        try lines.number("boot", &boot)
        try lines.number("probed", &probed)
        try lines.milliseconds("probe_duration_ms", &probeDuration, valid: { $0.value >= 0 })
        try Self.outcome("outcome", &outcome, &lines, success: "state", blank: NodeState(inRecovery: false), Self.lines)
        try lines.constant("end")
    }

    private static func lines(of state: inout NodeState, _ lines: inout EntryLines) throws(Problem) {
        try lines.flag("in_recovery", &state.inRecovery)
        try lines.text("server_version", &state.serverVersion)
        try lines.number("timeline", &state.timeline)
        try lines.text("wal_position", &state.walPosition)
        try lines.text("received_position", &state.receivedPosition)
        try lines.text("replayed_position", &state.replayedPosition)
        try lines.text("primary_position", &state.primaryPosition)
        try lines.number("behind_primary_bytes", &state.behindPrimaryBytes)
        try lines.milliseconds("receiver_timeout_ms", &state.receiverTimeout)
        try lines.number("replay_backlog_bytes", &state.replayBacklogBytes)
        try lines.milliseconds("replay_delay_ms", &state.replayDelay)
        try lines.flag("replay_paused", &state.replayPaused)
        try lines.variant("receiver", &state.receiver) { receiver throws(Problem) in
            try receiver.plain("none", .notApplicable)
            try receiver.plain("unknown", .notVisible)
            try receiver.plain("stopped", .stopped)
            try receiver.payload("running", blank: ("", nil),
                                 extract: { if case .running(let status, let silence) = $0 { (status, silence) } else { nil } },
                                 embed: { .running(status: $0.0, silence: $0.1) }) { running, lines throws(Problem) in
                try lines.text("receiver_status", &running.0)
                try lines.milliseconds("receiver_silence_ms", &running.1)
            }
        }
        try lines.optional("position", &state.position, blank: blankPosition) { position, lines throws(Problem) in
            try Self.lines(of: &position, prefix: "position", &lines)
        }
        try lines.optional("identity", &state.identity, blank: StandbyIdentity(systemIdentifier: "", slotName: nil, applicationName: nil)) {
            identity, lines throws(Problem) in
            try lines.text("identity_system_identifier", &identity.systemIdentifier)
            try lines.text("identity_slot", &identity.slotName)
            // A name may be anything, even "-": "=" marks one that is there.
            try lines.markedText("identity_application_name", &identity.applicationName)
        }
        try lines.list("peers", &state.peers, maximum: PeerAddress.maximumCount,
                       blank: PeerReport(peer: PeerAddress(host: "", port: nil), outcome: .failure(.noResponse(detail: "")))) {
            report, lines throws(Problem) in
            try lines.line("peer", &report.peer, write: { EntryLines.clean($0.description) }, read: { PeerAddress(Substring($0)) })
            try outcome("peer_outcome", &report.outcome, &lines, success: "position", blank: blankPosition) { position, lines throws(Problem) in
                try Self.lines(of: &position, prefix: "peer", &lines)
            }
        }
        try lines.optional("slots", &state.connectionSlots,
                           blank: ConnectionSlots(maxConnections: 0, superuserReservedConnections: 0, reservedConnections: 0, checkRoleLimit: 0)) {
            slots, lines throws(Problem) in
            try lines.number("max_connections", &slots.maxConnections)
            try lines.number("superuser_reserved_connections", &slots.superuserReservedConnections)
            try lines.number("reserved_connections", &slots.reservedConnections)
            try lines.number("check_role_limit", &slots.checkRoleLimit)
            try lines.number("client_sessions", &slots.clientSessions)
            try lines.number("client_role_limit", &slots.clientRoleLimit)
            try lines.number("client_role_sessions", &slots.clientRoleSessions)
            try lines.list("sessions_by_address", &slots.byAddress, blank: AddressSessions(address: "", sessions: 0, clientRoleSessions: 0)) {
                address, lines throws(Problem) in
                try lines.line("address", &address, write: { "\(EntryLines.clean($0.address)) \($0.sessions) \($0.clientRoleSessions)" },
                               read: addressSessions)
            }
        }
    }

    private static let blankPosition = NodePosition(inRecovery: false, timeline: 0, systemIdentifier: "", startedAt: "", port: "")

    /// A ``NodePosition``'s lines, each name starting with `prefix`, then its
    /// senders (a primary's).
    private static func lines(of position: inout NodePosition, prefix: String, _ lines: inout EntryLines) throws(Problem) {
        try lines.flag(prefix + "_in_recovery", &position.inRecovery)
        try lines.number(prefix + "_timeline", &position.timeline)
        try lines.text(prefix + "_system_identifier", &position.systemIdentifier)
        try lines.text(prefix + "_started_at", &position.startedAt)
        try lines.text(prefix + "_port", &position.port)
        try lines.list(prefix + "_standbys", &position.standbys, blank: StreamingStandby(applicationName: "", slotName: nil, syncState: "")) {
            standby, lines throws(Problem) in
            try lines.text("standby_sync_state", &standby.syncState)
            try lines.text("standby_slot", &standby.slotName)
            try lines.text("standby_application_name", &standby.applicationName)
        }
    }

    /// A probe's outcome: `name success` then the success's `lines`, or
    /// `name failure` then the failure's.
    private static func outcome<Success>(_ name: String, _ outcome: inout Result<Success, ProbeFailure>, _ lines: inout EntryLines,
                                         success tag: String, blank: Success,
                                         _ successLines: (inout Success, inout EntryLines) throws(Problem) -> Void) throws(Problem) {
        try lines.variant(name, &outcome) { outcome throws(Problem) in
            try outcome.payload(tag, blank: blank, extract: { try? $0.get() }, embed: { .success($0) }, successLines)
            try outcome.payload("failure", blank: .noResponse(detail: ""), extract: { if case .failure(let failure) = $0 { failure } else { nil } },
                                embed: { .failure($0) }, Self.lines)
        }
    }

    /// `failure NAME`, the case's own line if it has one, then its detail.
    private static func lines(of failure: inout ProbeFailure, _ lines: inout EntryLines) throws(Problem) {
        try lines.variant("failure", &failure) { failure throws(Problem) in
            try failure.detailed("no_response", { if case .noResponse(let detail) = $0 { detail } else { nil } }, ProbeFailure.noResponse)
            try failure.payload("tls_failed", blank: (.handshake, ""),
                                extract: { if case .tlsFailed(let problem, let detail) = $0 { (problem, detail) } else { nil } },
                                embed: { .tlsFailed($0.0, detail: $0.1) }) { tls, lines throws(Problem) in
                try lines.word("tls", &tls.0, tlsName)
                try lines.text("detail", &tls.1)
            }
            try failure.detailed("authentication_failed", { if case .authenticationFailed(let detail) = $0 { detail } else { nil } },
                                 ProbeFailure.authenticationFailed)
            try failure.detailed("authorization_failed", { if case .authorizationFailed(let detail) = $0 { detail } else { nil } },
                                 ProbeFailure.authorizationFailed)
            try failure.detailed("too_many_connections", { if case .tooManyConnections(let detail) = $0 { detail } else { nil } },
                                 ProbeFailure.tooManyConnections)
            try failure.detailed("not_accepting_connections", { if case .notAcceptingConnections(let detail) = $0 { detail } else { nil } },
                                 ProbeFailure.notAcceptingConnections)
            try failure.payload("connection_rejected", blank: ("", ""),
                                extract: { if case .connectionRejected(let sqlstate, let detail) = $0 { (sqlstate, detail) } else { nil } },
                                embed: { .connectionRejected(sqlstate: $0.0, detail: $0.1) }) { rejected, lines throws(Problem) in
                try lines.text("sqlstate", &rejected.0, valid: { $0.utf8.count == 5 })
                try lines.text("detail", &rejected.1)
            }
            try failure.detailed("misconfigured", { if case .misconfigured(let detail) = $0 { detail } else { nil } }, ProbeFailure.misconfigured)
            try failure.payload("timed_out", blank: .readingRequest, extract: { if case .timedOut(let phase) = $0 { phase } else { nil } },
                                embed: { .timedOut(phase: $0) }) { phase, lines throws(Problem) in
                try lines.word("phase", &phase, phaseName)
            }
            try failure.payload("query_failed", blank: (.role, ""),
                                extract: { if case .queryFailed(let statement, let detail) = $0 { (statement, detail) } else { nil } },
                                embed: { .queryFailed($0.0, detail: $0.1) }) { query, lines throws(Problem) in
                try lines.word("statement", &query.0, \.rawValue)
                try lines.text("detail", &query.1)
            }
            try failure.detailed("library_missing", { if case .libraryMissing(let detail) = $0 { detail } else { nil } },
                                 ProbeFailure.libraryMissing)
        }
    }

    /// `ADDRESS SESSIONS CLIENT_ROLE_SESSIONS`, as the `address` line holds them.
    private static func addressSessions(_ text: String) -> AddressSessions? {
        let fields = text.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 3, !fields[0].isEmpty, let sessions: Int = EntryLines.number(String(fields[1])),
              let clientRoleSessions: Int = EntryLines.number(String(fields[2])) else { return nil }
        return AddressSessions(address: String(fields[0]), sessions: sessions, clientRoleSessions: clientRoleSessions)
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
}

private extension EntryVariant where Value == ProbeFailure {
    /// A failure case whose only payload is its detail.
    mutating func detailed(_ tag: String, _ extract: (ProbeFailure) -> String?, _ embed: (String) -> ProbeFailure) throws(CacheEntry.Problem) {
        try payload(tag, blank: "", extract: extract, embed: embed) { detail, lines throws(CacheEntry.Problem) in
            try lines.text("detail", &detail)
        }
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
