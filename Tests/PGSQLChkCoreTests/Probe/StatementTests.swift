import Testing
@testable import PGSQLChkCore

/// Every statement in ``Statement``, new ones included, held to the rules its
/// doc comment gives (the CVE-2018-1058 pattern).
@Suite("SQL statements")
struct StatementTests {
    @Test("no operator in any statement resolves through the search path", arguments: Statement.allCases)
    func operatorsQualified(statement: Statement) {
        #expect(Self.unqualifiedOperators(in: statement.sql) == [])
    }

    @Test("no function in any statement resolves through the search path", arguments: Statement.allCases)
    func functionsQualified(statement: Statement) {
        #expect(Self.unqualifiedFunctions(in: statement.sql) == [])
    }

    @Test("the operator guard itself catches an unqualified operator", arguments: ["SELECT 1 * 2", "SELECT a <= b", "SELECT 'x' || y", "SELECT -1"])
    func operatorGuardCatches(statement: String) {
        #expect(Self.unqualifiedOperators(in: statement) != [])
    }

    @Test("the function guard itself catches an unqualified function", arguments: [
        "SELECT pg_is_in_recovery()", "SELECT public.pg_is_in_recovery()", "SELECT count(a.pid) FROM a",
        "SELECT pg_catalog.max(x) FILTER (WHERE upper(y) OPERATOR(pg_catalog.=) 'Y')",
    ])
    func functionGuardCatches(statement: String) {
        #expect(Self.unqualifiedFunctions(in: statement) != [])
    }

    @Test("a row that cannot be read fails the statement it answers, and the 503 names that statement", arguments: Statement.allCases)
    func failureNamesStatement(statement: Statement) {
        let row = QueryRow(statement: statement, columns: ["in_recovery"], values: ["t"])
        let error = #expect(throws: ProbeFailure.self) { try row.value(of: "timeline") }
        #expect(error?.reason == "\(statement.rawValue) query failed")
    }

    @Test("a peer's malformed answer names the statement it was asked", arguments: [Statement.position, .standbyList])
    func positionFailureNamesStatement(statement: Statement) {
        let row = QueryRow(statement: statement, columns: ["in_recovery", "timeline", "system_identifier", "started_at", "port", "standbys"],
                           values: ["f", "1", "7714142357752938336", "1767225600.5", "5432", "sync"])
        #expect(throws: ProbeFailure.queryFailed(statement, detail: "malformed standby list: sync")) { try NodePosition(row: row) }
    }

    @Test("the README's 503 table names every statement a query failure can name", arguments: Statement.allCases)
    func readmeNamesStatement(statement: Statement) throws {
        let readme = try #require(DeploymentSampleTests.lines(of: "README.md"))
        let row = try #require(readme.first { $0.hasPrefix("| `role query failed`") }, "README.md has no `role query failed` row")
        #expect(row.containsText("`\(statement.rawValue)`"))
    }

    /// `statement` with the text of every string literal left out: what is
    /// quoted is never an operator or a call.
    static func withoutLiterals(_ statement: String) -> Substring {
        Substring(statement.split(separator: "'", omittingEmptySubsequences: false).enumerated()
            .map { $0.offset.isMultiple(of: 2) ? $0.element : "" }.joined(separator: "''"))
    }

    /// Operator characters outside string literals and outside
    /// `OPERATOR(pg_catalog.x)`; `::` casts, `(`, `)`, `,` and `.` are syntax.
    static func unqualifiedOperators(in statement: String) -> [String] {
        let operatorCharacters = Set("+-*/<>=~!@#%^&|`?")
        var found: [String] = []
        var text = withoutLiterals(statement)
        while let character = text.first {
            if text.hasPrefix("OPERATOR(pg_catalog.") {
                text = text.drop { $0 != ")" }.dropFirst()
            } else if text.hasPrefix("::") {
                text = text.dropFirst(2)
            } else if operatorCharacters.contains(character) {
                found.append(String(text.prefix { operatorCharacters.contains($0) }))
                text = text.drop { operatorCharacters.contains($0) }
            } else {
                text = text.dropFirst()
            }
        }
        return found
    }

    /// SQL's own syntax that is written like a call but resolves in
    /// `pg_catalog` alone, and `bit(32)`, a type's length.
    static let callSyntax: Set<Substring> = ["COALESCE", "GREATEST", "extract", "OPERATOR", "bit"]

    /// Names called outside string literals (a name directly followed by
    /// `(`, as every statement writes its calls) that are neither
    /// `pg_catalog.`-qualified nor ``callSyntax``.
    static func unqualifiedFunctions(in statement: String) -> [String] {
        let nameCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")
        var found: [String] = []
        var text = withoutLiterals(statement)
        while let character = text.first {
            if nameCharacters.contains(character) {
                let name = text.prefix { nameCharacters.contains($0) }
                text = text.dropFirst(name.count)
                guard text.first == "(" else { continue }
                let qualified = name.hasPrefix("pg_catalog.") && name.dropFirst("pg_catalog.".count).allSatisfy { $0 != "." }
                if !qualified, !Self.callSyntax.contains(name) { found.append(String(name)) }
            } else {
                text = text.dropFirst()
            }
        }
        return found
    }
}
