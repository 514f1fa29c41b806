/// How many nodes of the cluster a primary must reach to keep answering 200
/// (`--quorum`, `PGSQLCHK_QUORUM`): a write quorum kept without a consensus
/// store, off unless asked for.
///
/// The nodes are those `--peers` names, with this one counted once whether
/// the list names it or not: a node finds itself in the list by who answers
/// (``NodePosition/isSameServer(as:)``), so the members are this node plus
/// every entry that did not answer as this node. An entry for this node that
/// cannot be asked is counted as another node, which can only ask for more.
enum Quorum: Equatable, Sendable, CustomStringConvertible {
    /// Every node: two primaries of the list can never both answer 200,
    /// since each must have reached the other.
    case all
    /// More than half of the nodes: an isolated primary steps down.
    case majority
    /// At least this many nodes, this one included.
    case nodes(Int)

    /// What `--quorum` accepts, for the usage error.
    static let accepted = "all, majority, or a number of nodes from 1 to those --peers names (this one included)"

    /// Reads `all`, `majority` or a positive count; nil for anything else.
    init?(_ text: String) {
        switch text {
        case "all": self = .all
        case "majority": self = .majority
        default:
            guard !text.isEmpty, text.allSatisfy(\.isASCIIDigit), let count = Int(text), count >= 1 else { return nil }
            self = .nodes(count)
        }
    }

    /// How many of `members` nodes must be reached.
    func needed(of members: Int) -> Int {
        switch self {
        case .all: members
        case .majority: members / 2 + 1
        case .nodes(let count): count
        }
    }

    /// `all`, `majority` or the count, as the option spells it.
    var description: String {
        switch self {
        case .all: "all"
        case .majority: "majority"
        case .nodes(let count): String(count)
        }
    }
}

/// How many nodes a primary reached in one check, of how many, against its quorum.
struct QuorumCount: Equatable, Sendable, CustomStringConvertible {
    var quorum: Quorum
    /// This node, plus every other node that answered as a standby or an
    /// older primary of its cluster.
    var reached: Int
    /// This node, plus every entry of `--peers` that is not this node.
    var members: Int

    /// How many nodes the quorum asks for.
    var needed: Int { quorum.needed(of: members) }

    /// Whether enough nodes answered.
    var isMet: Bool { reached >= needed }

    /// `reached 1 of 3, needs 2 (quorum majority)`.
    var description: String { "reached \(reached) of \(members), needs \(needed) (quorum \(quorum))" }

    /// Counts the findings of one check: `findings` holds every entry of
    /// `--peers` with its standing.
    init(quorum: Quorum, findings: [PeerFinding]) {
        self.quorum = quorum
        members = 1 + findings.filter { $0.standing != .itself }.count
        reached = 1 + findings.filter { $0.standing == .consistent }.count
    }
}
