/// What one peer answered, or why it could not be asked.
struct PeerReport: Equatable, Sendable {
    var peer: PeerAddress
    var outcome: Result<NodePosition, ProbeFailure>
}

/// How one peer's answer bears on the local primary.
enum PeerStanding: Equatable, Sendable {
    /// The local server itself, found in the shared list.
    case itself
    /// A server of another cluster (another system identifier): no evidence.
    case otherCluster
    /// A primary, or a standby following one, on a higher timeline: this node is stale.
    case newer
    /// Another primary on the same timeline: neither can be shown newer.
    case rival
    /// A standby on this timeline or an older one, or an older primary.
    case consistent
    /// Down, refused, or timed out: proves nothing.
    case unreachable(reason: String)

    /// One word for `/status` and the summary.
    var name: String {
        switch self {
        case .itself: "itself"
        case .otherCluster: "other cluster"
        case .newer: "newer"
        case .rival: "rival primary"
        case .consistent: "consistent"
        case .unreachable: "unreachable"
        }
    }
}

/// A peer's answer with what it means for the local primary.
struct PeerFinding: Equatable, Sendable {
    var report: PeerReport
    var standing: PeerStanding
}

/// The evidence that this primary is stale, as the fence file keeps it: keyed
/// by the local system identifier and timeline (``FenceFile``).
struct Fence: Equatable, Sendable {
    /// The cluster both servers belong to.
    var systemIdentifier: String
    /// The local primary's timeline when it was found stale.
    var timeline: Int
    /// The peer that proved it, as `--peers` names it.
    var newerNode: String
    /// `primary`, or `standby` (following a newer primary).
    var newerRole: String
    /// The peer's timeline.
    var newerTimeline: Int

    /// Whether the fence applies to a primary at `position`: same cluster, same timeline.
    func applies(to position: NodePosition) -> Bool {
        systemIdentifier == position.systemIdentifier && timeline == position.timeline
    }
}

/// What the guard concludes for a local primary.
enum GuardDecision: Equatable, Sendable {
    /// No peer shows anything newer: route as usual.
    case serving
    /// A peer shows a newer timeline now; the fence is written.
    case stale(Fence)
    /// An earlier check found this node stale (the fence file).
    case fenced(Fence)
    /// Another primary on the same timeline.
    case rivalPrimary(peer: String, timeline: Int)
    /// The fence file exists but cannot be read or parsed: fenced, to be safe.
    case fenceUnreadable(reason: String)
    /// Fewer nodes answered than `--quorum` asks for. Not evidence of being
    /// stale, so no fence: the next check that reaches enough serves again.
    case quorumLost(QuorumCount)

    /// The 503's reason when the decision refuses writes; nil when serving.
    var refusal: String? {
        switch self {
        case .serving:
            nil
        case .stale(let fence):
            "stale primary: \(fence.newerNode) is \(fence.newerRole) on timeline \(fence.newerTimeline), this node is primary on timeline \(fence.timeline)"
        case .fenced(let fence):
            "stale primary (fenced): \(fence.newerNode) was \(fence.newerRole) on timeline \(fence.newerTimeline), this node is primary on timeline \(fence.timeline)"
        case .rivalPrimary(let peer, let timeline):
            "two primaries on timeline \(timeline): this node and \(peer); stop or rewind one"
        case .fenceUnreadable(let reason):
            "\(reason); treated as fenced"
        case .quorumLost(let count):
            "no write quorum: \(count)"
        }
    }
}

/// What the guard saw and decided, for the verdict, `/status` and the summary.
struct GuardReport: Equatable, Sendable {
    var decision: GuardDecision
    /// Each peer asked, in the order of `--peers`; empty when the fence
    /// decided without asking.
    var findings: [PeerFinding] = []
    /// Why the guard could not record the fence or clear an old one, or
    /// why it did not obey a fence file it found.
    var fenceFileReason: String?
    /// How many nodes this check reached, with `--quorum`; nil without it,
    /// or when the fence decided without asking.
    var quorum: QuorumCount?

    /// The peers that could not be asked, as `host:port (reason)`.
    var unreachable: [String] {
        findings.compactMap { finding in
            if case .unreachable(let reason) = finding.standing { return "\(finding.report.peer) (\(reason))" }
            return nil
        }
    }

    /// How many peers could not be asked for each reason, in the order the
    /// reasons first appear: what `/status` and `/metrics` count, so that a
    /// guard that reaches no peer (refused logins, say) shows where
    /// operators look, not only in the log.
    var unreachableByReason: [(reason: String, count: Int)] {
        var counts: [(reason: String, count: Int)] = []
        for finding in findings {
            guard case .unreachable(let reason) = finding.standing else { continue }
            if let index = counts.firstIndex(where: { $0.reason == reason }) {
                counts[index].count += 1
            } else {
                counts.append((reason, 1))
            }
        }
        return counts
    }

    /// `could not ask 2 of 3 peers`, or nil when every peer asked answered
    /// (or none was asked, the fence having decided).
    var blindSpot: String? {
        let missing = unreachable.count
        guard missing > 0 else { return nil }
        return missing == findings.count
            ? "stale-primary guard could not ask any of its \(missing) peers: it cannot see a newer primary"
            : "stale-primary guard could not ask \(missing) of \(findings.count) peers"
    }
}

/// The stale-primary guard's decision table, pure: the local primary's
/// position against each peer's answer.
///
/// | peer (same system identifier)          | standing    | local primary    |
/// |----------------------------------------|-------------|------------------|
/// | the local server itself                | itself      | -                |
/// | primary, higher timeline               | newer       | 503, fenced      |
/// | standby following a higher timeline    | newer       | 503, fenced      |
/// | primary, same timeline                 | rival       | 503, not fenced  |
/// | standby on the same or a lower timeline| consistent  | -                |
/// | primary on a lower timeline            | consistent  | - (it is stale)  |
/// | another system identifier              | other       | -                |
/// | unreachable                            | unreachable | - (logged)       |
///
/// A newer peer outranks a rival; among newer peers the highest timeline,
/// then a primary, then the first in the list is named. Peers that could not
/// be asked prove nothing, so a lone primary keeps serving, unless
/// `--quorum` asks it to reach more nodes (``Quorum``):
///
/// | nodes reached (itself, standbys, older primaries) | local primary       |
/// |---------------------------------------------------|---------------------|
/// | at least the quorum, none newer, no rival         | 200                 |
/// | fewer than the quorum, none newer, no rival       | 503, not fenced     |
/// | any, with a newer peer or a rival                 | as the table above  |
enum StalePrimaryGuard {
    static func standing(of report: PeerReport, local: NodePosition) -> PeerStanding {
        let peer: NodePosition
        switch report.outcome {
        case .failure(let failure): return .unreachable(reason: failure.reason)
        case .success(let position): peer = position
        }
        if peer.isSameServer(as: local) { return .itself }
        guard peer.systemIdentifier == local.systemIdentifier else { return .otherCluster }
        if peer.timeline > local.timeline { return .newer }
        if !peer.inRecovery, peer.timeline == local.timeline { return .rival }
        return .consistent
    }

    /// Each peer's report with what it means for a node at `local`.
    static func findings(of peers: [PeerReport], local: NodePosition) -> [PeerFinding] {
        peers.map { PeerFinding(report: $0, standing: standing(of: $0, local: local)) }
    }

    /// The decision for a local primary at `local` given every peer's report
    /// and, with `--quorum`, how many nodes it must reach.
    static func decide(local: NodePosition, peers: [PeerReport], quorum: Quorum? = nil) -> GuardReport {
        let findings = findings(of: peers, local: local)
        let newer = findings.compactMap { finding -> NodePosition? in
            guard finding.standing == .newer, case .success(let position) = finding.report.outcome else { return nil }
            return position
        }
        if let best = newer.indices.max(by: { rank(newer[$0], at: $0) < rank(newer[$1], at: $1) }) {
            let name = findings.filter { $0.standing == .newer }[best].report.peer.description
            let fence = Fence(systemIdentifier: local.systemIdentifier, timeline: local.timeline, newerNode: name,
                              newerRole: newer[best].role, newerTimeline: newer[best].timeline)
            return GuardReport(decision: .stale(fence), findings: findings)
        }
        if let rival = findings.first(where: { $0.standing == .rival }) {
            return GuardReport(decision: .rivalPrimary(peer: rival.report.peer.description, timeline: local.timeline), findings: findings)
        }
        let count = quorum.map { QuorumCount(quorum: $0, findings: findings) }
        if let count, !count.isMet {
            return GuardReport(decision: .quorumLost(count), findings: findings, quorum: count)
        }
        return GuardReport(decision: .serving, findings: findings, quorum: count)
    }

    /// Orders newer peers: higher timeline, then primary, then earlier in the list.
    private static func rank(_ position: NodePosition, at index: Int) -> (Int, Int, Int) {
        (position.timeline, position.inRecovery ? 0 : 1, -index)
    }
}

extension StalePrimaryGuard {
    /// The guard's part of one check, after the probe, which asked the local
    /// node its ``NodePosition`` and a primary's peers theirs
    /// (``NodeState/peers``).
    ///
    /// Only this node's own fence file is ever read, written or removed
    /// (``FenceFile/init(stateDirectory:node:)``), so nodes and clusters that
    /// share a state directory never touch each other's fence. On a standby
    /// the check removes its own file, left from when the node was a stale
    /// primary. On a primary the file decides when it applies to this system
    /// identifier and timeline, and is removed when the node has moved to
    /// another timeline since; otherwise the peers' answers decide, and a
    /// stale finding is recorded as the fence.
    ///
    /// The one `fence` file of earlier builds (``FenceFile/legacy(stateDirectory:)``)
    /// names no node, so any node of the directory may be the one it fences:
    /// it still fences every primary it applies to (system identifier and
    /// timeline), and only `--clear-fence` removes it. One that cannot be read
    /// is reported, not obeyed: it cannot be shown to concern this node, and
    /// obeying it would take every cluster sharing the directory out.
    ///
    /// A lost quorum refuses writes but writes no fence: losing sight of the
    /// other nodes proves nothing about this one, and a healed partition
    /// must give a legitimate primary back. If the other side promoted a
    /// standby meanwhile, the first check after the heal sees its newer
    /// timeline and fences this node as any stale primary.
    static func review(_ state: NodeState, stateDirectory: String, quorum: Quorum? = nil, report: (String) -> Void) -> GuardReport? {
        guard let local = state.position else { return nil }
        let fence = FenceFile(stateDirectory: stateDirectory, node: local.node)
        if state.inRecovery {
            do {
                if try fence.remove() { report("removed the fence file \(fence.path): this node (\(local.node)) is a standby now") }
            } catch {
                report(error.reason)
            }
            return nil
        }
        var fenceFileReason: String?
        switch fence.read() {
        case .unreadable(let reason):
            report(reason + "; treated as fenced (pgsqlchk --clear-fence removes it)")
            return GuardReport(decision: .fenceUnreadable(reason: reason))
        case .fence(let recorded) where recorded.systemIdentifier != local.systemIdentifier:
            // Named for this node, written for another: not a file this
            // program wrote, so fenced to be safe, as any corrupt one is.
            let reason = "fence file \(fence.path) is corrupt: it names system identifier \(recorded.systemIdentifier)"
            report(reason + "; treated as fenced (pgsqlchk --clear-fence removes it)")
            return GuardReport(decision: .fenceUnreadable(reason: reason))
        case .fence(let recorded) where recorded.applies(to: local):
            return GuardReport(decision: .fenced(recorded))
        case .fence(let recorded):
            do {
                _ = try fence.remove()
                report("removed the fence file \(fence.path) for timeline \(recorded.timeline): this node (\(local.node)) is primary on timeline \(local.timeline) now")
            } catch {
                fenceFileReason = error.reason
                report(error.reason)
            }
        case .absent:
            let legacy = FenceFile.legacy(stateDirectory: stateDirectory)
            switch legacy.read() {
            case .fence(let recorded) where recorded.applies(to: local):
                return GuardReport(decision: .fenced(recorded))
            case .unreadable(let reason):
                fenceFileReason = reason + "; not obeyed, since it names no node (pgsqlchk --clear-fence removes it)"
                report(fenceFileReason ?? "")
            case .fence, .absent:
                break
            }
        }
        let answers = state.peers ?? []
        var result = decide(local: local, peers: answers, quorum: quorum)
        result.fenceFileReason = fenceFileReason
        switch result.decision {
        case .stale(let found):
            report(result.decision.refusal ?? "")
            if let failure = fence.write(found) {
                result.fenceFileReason = "could not record the fence: \(failure)"
                report(result.fenceFileReason ?? "")
            }
        case .rivalPrimary, .quorumLost:
            report(result.decision.refusal ?? "")
        case .serving, .fenced, .fenceUnreadable:
            break
        }
        if !result.unreachable.isEmpty {
            report("stale-primary guard could not ask \(result.unreachable.count) of \(answers.count) peers: "
                + result.unreachable.joined(separator: ", "))
        }
        return result
    }
}
