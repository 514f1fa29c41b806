/// How a standby is known to its primary, as far as this standby can tell:
/// what `/synchronous` and `/asynchronous` look for in the primary's
/// `pg_stat_replication`.
struct StandbyIdentity: Equatable, Sendable {
    /// `pg_control_system().system_identifier`: only a primary of the same
    /// cluster is asked about this standby.
    var systemIdentifier: String
    /// The replication slot the WAL receiver streams through
    /// (`pg_stat_wal_receiver.slot_name`): names exactly one sender on the
    /// primary, so it is matched first.
    var slotName: String?
    /// The `application_name` the WAL receiver gave the primary: the name
    /// `synchronous_standby_names` lists. nil when the receiver is not running
    /// or its `conninfo` is hidden from the monitoring role.
    var applicationName: String?

    /// Reads the row ``Statement/standbyIdentity`` returns, by column name.
    init(row: QueryRow) throws(ProbeFailure) {
        guard let system = try row.value(of: "system_identifier"), !system.isEmpty, system.allSatisfy(\.isASCIIDigit) else {
            throw .queryFailed(row.statement, detail: "incomplete answer: \(row.values)")
        }
        self.init(systemIdentifier: system, slotName: try row.value(of: "slot_name").flatMap { $0.isEmpty ? nil : $0 },
                  applicationName: try row.value(of: "conninfo").flatMap(Self.applicationName(inReceiverConninfo:)))
    }

    init(systemIdentifier: String, slotName: String?, applicationName: String?) {
        self.systemIdentifier = systemIdentifier
        self.slotName = slotName
        self.applicationName = applicationName
    }

    /// The name the WAL receiver connected under, from the `conninfo` that
    /// `pg_stat_wal_receiver` shows: `application_name` when
    /// `primary_conninfo` sets it, else `fallback_application_name`, which
    /// the receiver itself sets to `cluster_name` (or `walreceiver` when that
    /// is empty).
    ///
    /// PostgreSQL writes that conninfo as `keyword=value` pairs joined by
    /// spaces, without quoting, so a value runs up to the next
    /// ` keyword=`; a name with spaces in it is read whole.
    static func applicationName(inReceiverConninfo conninfo: String) -> String? {
        var values: [String: String] = [:]
        var keyword: String?
        for word in conninfo.split(separator: " ", omittingEmptySubsequences: false) {
            let name = word.prefix { $0 != "=" }
            if name.count < word.count, !name.isEmpty, name.allSatisfy({ $0.isLowercase || $0 == "_" }) {
                keyword = String(name)
                values[String(name)] = String(word.dropFirst(name.count + 1))
            } else if let keyword {
                values[keyword, default: ""] += " " + word
            }
        }
        let name = values["application_name"] ?? values["fallback_application_name"]
        return name.flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// One WAL sender of a primary, as `pg_stat_replication` shows it.
struct StreamingStandby: Equatable, Sendable {
    /// The standby's `application_name`.
    var applicationName: String
    /// The slot it streams through, if any (`pg_replication_slots.slot_name`
    /// of the slot this sender holds).
    var slotName: String?
    /// `sync`, `quorum`, `potential` or `async`; empty when the monitoring
    /// role may not see it (PostgreSQL hides it without `pg_read_all_stats`).
    var syncState: String

    /// Whether the primary counts this standby for synchronous commit now:
    /// `sync` (a `FIRST n` standby) or `quorum` (an `ANY n` candidate).
    var isSynchronous: Bool { syncState == "sync" || syncState == "quorum" }

    /// The primary's senders as ``Statement/standbyList`` lists them: records
    /// separated by ASCII RS, fields by US (`pg_stat_replication` replaces
    /// every non-printable character of an `application_name` with `?`, so
    /// neither can occur in one). nil or empty: no sender at all.
    static func list(from text: String?, answering statement: Statement) throws(ProbeFailure) -> [StreamingStandby] {
        guard let text, !text.isEmpty else { return [] }
        return try text.split(separator: "\u{1E}", omittingEmptySubsequences: false).map { record throws(ProbeFailure) in
            let fields = record.split(separator: "\u{1F}", omittingEmptySubsequences: false)
            guard fields.count == 3 else { throw .queryFailed(statement, detail: "malformed standby list: \(text)") }
            return StreamingStandby(applicationName: String(fields[2]), slotName: fields[1].isEmpty ? nil : String(fields[1]),
                                    syncState: String(fields[0]))
        }
    }
}

/// What the primary says of this standby's part in synchronous replication.
enum Synchrony: Equatable, Sendable {
    /// The primary counts it for synchronous commit (`sync` or `quorum`).
    case synchronous(primary: String, syncState: String)
    /// The primary streams to it without waiting for it (`async` or `potential`).
    case asynchronous(primary: String, syncState: String)
    /// The primary streams to no sender of this name or slot, and the standby
    /// is on the primary's timeline: it streams through another standby
    /// (cascading), so the primary never waits for it.
    case cascading(primary: String)
    /// Not known; the reason says why.
    case unknown(reason: String)

    /// Without `--peers` nobody can say: only the primary knows.
    static let withoutPeers = Synchrony.unknown(
        reason: "synchronous state unknown: only the primary knows it; list the nodes with --peers")

    /// What the primary among `peers` says of the standby known as `identity`
    /// on `timeline`.
    ///
    /// The primary is the one peer of the same cluster that is not in
    /// recovery; with several, the one on the highest timeline, and two on
    /// that timeline prove nothing. The standby is found among its senders
    /// by slot when it streams through one, else by `application_name`; two
    /// senders under one name that disagree prove nothing either.
    static func find(identity: StandbyIdentity?, timeline: Int?, peers: [PeerReport]) -> Synchrony {
        guard let identity else { return .unknown(reason: "synchronous state unknown: this standby's identity was not asked") }
        let primary: ClusterPrimary
        switch ClusterPrimary.find(among: peers, systemIdentifier: identity.systemIdentifier) {
        case .success(let found): primary = found
        case .failure(let missing): return .unknown(reason: "synchronous state unknown: \(missing.reason)")
        }
        let senders = primary.position.standbys
        if senders.contains(where: { $0.syncState.isEmpty }) {
            return .unknown(reason: "synchronous state unknown: \(primary.peer)'s pg_stat_replication is not visible to the monitoring role (grant pg_monitor)")
        }
        let matches: [StreamingStandby]
        let name: String
        if let slot = identity.slotName {
            matches = senders.filter { $0.slotName == slot }
            name = "slot \(slot)"
        } else if let applicationName = identity.applicationName {
            matches = senders.filter { $0.applicationName == applicationName }
            name = "application_name '\(applicationName)'"
        } else {
            return .unknown(reason: "synchronous state unknown: this standby's WAL receiver is not visible to the monitoring role (grant pg_monitor)")
        }
        guard let first = matches.first else {
            guard timeline == primary.position.timeline else {
                return .unknown(reason: "\(primary.peer) streams to no standby with \(name), and this standby is on timeline "
                    + "\(timeline.map(String.init) ?? "unknown"), the primary on \(primary.position.timeline)")
            }
            return .cascading(primary: primary.peer)
        }
        guard matches.allSatisfy({ $0.isSynchronous == first.isSynchronous }) else {
            return .unknown(reason: "synchronous state unknown: \(matches.count) standbys of \(primary.peer) have \(name); "
                + "give each its own application_name in primary_conninfo")
        }
        return first.isSynchronous ? .synchronous(primary: primary.peer, syncState: first.syncState)
                                   : .asynchronous(primary: primary.peer, syncState: first.syncState)
    }
}

/// The primary of one cluster among the peers' answers: the one peer of that
/// system identifier that is not in recovery; with several, the one on the
/// highest timeline, and two on that timeline prove nothing.
struct ClusterPrimary: Equatable, Sendable {
    /// As `--peers` names it.
    var peer: String
    var position: NodePosition

    /// Why no primary could be named.
    struct Missing: Error, Equatable {
        /// `no primary among the peers: db1:5432 (standby), ...` or
        /// `two primaries on timeline 2: db1:5432 and db2:5432`.
        var reason: String
    }

    static func find(among peers: [PeerReport], systemIdentifier: String) -> Result<ClusterPrimary, Missing> {
        var primaries: [ClusterPrimary] = []
        var notPrimaries: [String] = []
        for report in peers {
            switch report.outcome {
            case .success(let position) where !position.inRecovery && position.systemIdentifier == systemIdentifier:
                primaries.append(ClusterPrimary(peer: report.peer.description, position: position))
            case .success(let position):
                notPrimaries.append("\(report.peer) (\(position.systemIdentifier == systemIdentifier ? "standby" : "other cluster"))")
            case .failure(let failure):
                notPrimaries.append("\(report.peer) (\(failure.reason))")
            }
        }
        guard let newest = primaries.map(\.position.timeline).max() else {
            return .failure(Missing(reason: "no primary among the peers: " + notPrimaries.joined(separator: ", ")))
        }
        let onNewest = primaries.filter { $0.position.timeline == newest }
        guard onNewest.count == 1, let primary = onNewest.first else {
            return .failure(Missing(reason: "two primaries on timeline \(newest): " + onNewest.map(\.peer).joined(separator: " and ")))
        }
        return .success(primary)
    }
}
