/// One node's row of the cluster view (`/cluster`, `-o cluster`).
struct ClusterMember: Equatable, Sendable {
    /// The node as `--peers` names it; `local` without `--peers`.
    var name: String
    /// `primary` or `standby`; nil when it could not be asked.
    var role: String?
    /// `running` (a primary), the WAL receiver's state (a standby:
    /// `streaming`, `stopped`, ..., `unknown` without `pg_monitor`), or
    /// `unreachable`.
    var state: String
    var timeline: Int?
    /// A primary's current WAL position, a standby's replay position.
    var lsn: String?
    /// A standby's bytes behind the primary: the primary's current WAL
    /// position minus this standby's replay position, both read in this
    /// round; nil on a primary, and when no one primary of this cluster
    /// answered or the standby is on another timeline.
    var lag: Int64?
    /// What the primary's `pg_stat_replication` says of a standby (`sync`,
    /// `quorum`, `potential`, `async`), or `cascading`; nil when not known,
    /// and when its WAL receiver is stopped.
    var syncState: String?
    /// A primary's stale-primary guard verdict: `serving`, or why it refuses writes.
    var guardVerdict: String?
    /// Why the node could not be asked, or what could not be known of it.
    var reason: String?
}

/// The cluster at a glance, as `patronictl list` shows a Patroni cluster:
/// one row per `--peers` entry, in its order, from the answers of one round
/// (``Statement/member``, every node asked at once).
///
/// The guard's verdict of the node that ran the check is its own, fence file
/// included; another primary's is what its guard decides from the same
/// answers (``StalePrimaryGuard/decide(local:peers:)``), since its fence
/// file is on its own host.
enum ClusterView {
    /// What names the node that ran the check when there is no `--peers` list.
    static let localName = "local"

    /// The rows for the probe's `state` and, when the guard ran, its report.
    /// Without `--peers` only this node's row; empty when the node did not
    /// answer.
    static func members(of state: NodeState?, guardReport: GuardReport?) -> [ClusterMember] {
        guard let state, let local = state.position else { return [] }
        guard let peers = state.peers else {
            let itself = PeerReport(peer: PeerAddress(host: localName, port: nil), outcome: .success(local))
            return [member(itself, among: [itself], local: local, guardReport: guardReport, synchrony: .withoutPeers)]
        }
        return peers.map { member($0, among: peers, local: local, guardReport: guardReport) }
    }

    /// One report's row; `synchrony` stands in for asking the primary.
    static func member(_ report: PeerReport, among peers: [PeerReport], local: NodePosition, guardReport: GuardReport?,
                       synchrony: Synchrony? = nil) -> ClusterMember {
        let name = report.peer.description
        let position: NodePosition
        switch report.outcome {
        case .failure(let failure):
            return ClusterMember(name: name, state: "unreachable", reason: failure.reason)
        case .success(let answer):
            position = answer
        }
        var row = ClusterMember(name: name, role: position.role, state: "running", timeline: position.timeline)
        guard position.systemIdentifier == local.systemIdentifier else {
            row.reason = "another cluster: system identifier \(position.systemIdentifier)"
            return row
        }
        let details = position.member
        if !position.inRecovery {
            row.lsn = details?.walPosition
            let decision = position.isSameServer(as: local) ? guardReport?.decision : StalePrimaryGuard.decide(local: position, peers: peers).decision
            row.guardVerdict = decision.map { $0.refusal ?? "serving" }
            return row
        }
        row.state = details?.receiver.status ?? "unknown"
        row.lsn = details?.replayedPosition
        if case .success(let primary) = ClusterPrimary.find(among: peers, systemIdentifier: local.systemIdentifier),
           primary.position.timeline == position.timeline,
           let current = primary.position.member?.walPosition.flatMap(WALPosition.init),
           let replayed = details?.replayedPosition.flatMap(WALPosition.init) {
            row.lag = current.bytes(after: replayed)
        }
        // No receiver, no sender on any primary: nothing to look up, and
        // the state already says why.
        if details?.receiver == .stopped { return row }
        switch synchrony ?? Synchrony.find(identity: details?.identity, timeline: position.timeline, peers: peers) {
        case .synchronous(_, let syncState), .asynchronous(_, let syncState): row.syncState = syncState
        case .cascading: row.syncState = "cascading"
        case .unknown(let reason): row.reason = reason
        }
        return row
    }
}
