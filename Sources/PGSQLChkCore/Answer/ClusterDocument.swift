/// The cluster view for people and monitoring: JSON for `/cluster`, an
/// aligned table for `-o cluster`, with the same column names in both
/// (``Column``), spelled as Patroni's `GET /cluster` spells its keys where it
/// has one.
enum ClusterDocument {
    /// The columns, in order: the JSON keys and the table's header.
    enum Column: String, CaseIterable {
        case name, role, state, timeline, lsn, lag
        case syncState = "sync_state"
        case guardVerdict = "guard"
        case problem
    }

    /// A cell: text, a number, or unknown.
    enum Value: Equatable {
        case text(String?)
        case number(Int64?)
    }

    static func value(of column: Column, in member: ClusterMember) -> Value {
        switch column {
        case .name: .text(member.name)
        case .role: .text(member.role)
        case .state: .text(member.state)
        case .timeline: .number(member.timeline.map(Int64.init))
        case .lsn: .text(member.lsn)
        case .lag: .number(member.lag)
        case .syncState: .text(member.syncState)
        case .guardVerdict: .text(member.guardVerdict)
        case .problem: .text(member.reason)
        }
    }

    /// `{"status": 200, "reason": null, "members": [{"name": ..., ...}]}`:
    /// the check's status and reason as `/status` gives them, and a row per
    /// node; unknown cells are `null`, `lag` and `timeline` numbers.
    static func json(of verdict: Verdict) -> String {
        let members = ClusterView.members(of: verdict.state, guardReport: verdict.guardReport).map { member in
            StatusDocument.object(Column.allCases.map { column in
                switch value(of: column, in: member) {
                case .text(let text): (column.rawValue, StatusDocument.quoted(text))
                case .number(let number): (column.rawValue, StatusDocument.literal(number))
                }
            })
        }
        return StatusDocument.object([
            ("status", String(verdict.status.rawValue)),
            ("reason", verdict.status == .ok || verdict.status == .partialContent ? "null" : StatusDocument.quoted(verdict.body)),
            ("members", "[" + members.joined(separator: ", ") + "]"),
        ])
    }

    /// The rows under a header of the column names, each column as wide as
    /// its widest cell and two spaces apart, `-` for an unknown cell; or
    /// `unavailable: reason` when this node did not answer.
    static func table(of verdict: Verdict) -> String {
        let members = ClusterView.members(of: verdict.state, guardReport: verdict.guardReport)
        guard !members.isEmpty else { return "unavailable: \(verdict.body)\n" }
        let rows = [Column.allCases.map(\.rawValue)] + members.map { member in
            Column.allCases.map { column in
                switch value(of: column, in: member) {
                case .text(let text): text.map(Text.oneLine) ?? "-"
                case .number(let number): number.map(String.init) ?? "-"
                }
            }
        }
        let widths = Column.allCases.indices.map { index in rows.map { $0[index].count }.max() ?? 0 }
        return rows.map { row in
            var line = zip(row, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }.joined(separator: "  ")
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }.joined(separator: "\n") + "\n"
    }
}
