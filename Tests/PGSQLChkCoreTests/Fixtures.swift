@testable import PGSQLChkCore

extension NodeState {
    /// A standby whose WAL receiver streams and has just heard from its
    /// primary, `lag` bytes behind it.
    static func standby(lag: Int64) -> NodeState {
        NodeState(inRecovery: true, behindPrimaryBytes: lag, receiver: .running(status: "streaming", silence: Milliseconds(0)))
    }
}
