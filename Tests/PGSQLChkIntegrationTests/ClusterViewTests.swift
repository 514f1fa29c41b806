import Foundation
import ParsedResponse
import Testing

/// `/cluster` and `-o cluster` on the guard's three-node cluster: in its
/// suite, so that no other test promotes or stops a node meanwhile.
extension StalePrimaryGuardTests {
    /// The view's column names, as the README lists them: the JSON keys and
    /// the table's header alike.
    static let clusterColumns = ["name", "role", "state", "timeline", "lsn", "lag", "sync_state", "guard", "problem"]

    /// `GET /cluster` on `node`: the response, and its members with every
    /// cell as text (`-` for null), by column name.
    func clusterJSON(_ node: GuardNode) throws -> (response: ParsedResponse, members: [[String: String]]) {
        let answer = try response(cluster.check(node, request: "GET /cluster HTTP/1.0\r\n\r\n"))
        let document = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
                                    "not a JSON object: \(answer.body)")
        let members = try #require(document["members"] as? [[String: Any]], "no members: \(answer.body)")
        // JSONSerialization keeps no order: the raw text shows the keys' order.
        let first = try #require(answer.body.firstRange(of: "\"members\": [{"), "no member: \(answer.body)")
        var keyOrder: [String] = []
        var rest = answer.body[first.upperBound...]
        for column in Self.clusterColumns {
            guard let key = rest.firstRange(of: "\"\(column)\": ") else { break }
            keyOrder.append(column)
            rest = rest[key.upperBound...]
        }
        #expect(keyOrder == Self.clusterColumns, "the JSON keys in the table's order")
        return (answer, members.map { member in
            #expect(Set(member.keys) == Set(Self.clusterColumns))
            return member.mapValues { value in value is NSNull ? "-" : "\(value)" }
        })
    }

    /// `-o cluster` by hand on `node`: the header and each row by column name.
    func clusterTable(_ node: GuardNode, options: [String] = []) throws -> (header: [String], rows: [[String: String]]) {
        let run = Child.run(cluster.command(port: cluster.ports[node]!, stateDirectory: cluster.stateDirectory(of: node)) + ["-o", "cluster"] + options,
                            input: .null)
        let lines = run.text.split(separator: "\n").map(String.init)
        let header = try #require(lines.first, "no output: \(run.text)").split(separator: " ").map(String.init)
        // The last column (problem) may hold spaces: cells are cut at the header's column starts.
        let starts = header.map { try! #require(lines[0].firstRange(of: $0)).lowerBound.utf16Offset(in: lines[0]) }
        let rows = lines.dropFirst().map { line in
            Dictionary(uniqueKeysWithValues: zip(header, starts.indices.map { index in
                let from = line.utf16.index(line.startIndex, offsetBy: min(starts[index], line.utf16.count))
                let to = index + 1 < starts.count ? line.utf16.index(line.startIndex, offsetBy: min(starts[index + 1], line.utf16.count)) : line.endIndex
                return String(line[from..<to]).trimmingCharacters(in: .whitespaces)
            }))
        }
        return (header, rows)
    }

    @Test("/cluster and -o cluster: a primary, a synchronous and a paused asynchronous standby with its lag in bytes; a stopped one says why")
    func clusterView() throws {
        try cluster.reset()
        try cluster.await(.primary, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'", prints: "2")
        try makeSynchronous("standby", expecting: "standby=sync,standby2=async")
        // Replay paused on standby2 and WAL written: it falls behind by a known distance.
        _ = try cluster.query(.standby2, "SELECT pg_wal_replay_pause()")
        _ = try cluster.query(.primary, "CREATE TABLE cluster_view AS SELECT generate_series(1, 1000) AS n")
        try cluster.await(.standby2, "SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()", prints: "t")
        let names = GuardNode.allCases.map(cluster.address(of:))

        for node in GuardNode.allCases {
            let (answer, members) = try clusterJSON(node)
            #expect(answer.status == 200, "\(node)")
            #expect(answer.headers["content-type"] == "application/json")
            #expect(members.map { $0["name"] } == names)
            #expect(members.map { $0["role"] } == ["primary", "standby", "standby"])
            #expect(members.map { $0["state"] } == ["running", "streaming", "streaming"])
            #expect(members.map { $0["timeline"] } == ["1", "1", "1"])
            #expect(members.map { $0["sync_state"] } == ["-", "sync", "async"])
            #expect(members.map { $0["guard"] } == ["serving", "-", "-"])
            #expect(members.map { $0["problem"] } == ["-", "-", "-"])
            #expect(members[0]["lag"] == "-")
            let paused = members[2]
            #expect(paused["lsn"] == (try cluster.query(.standby2, "SELECT pg_last_wal_replay_lsn()")), "a standby's lsn is its replay position")
            // The lag is PostgreSQL's own distance between the two positions the row shows.
            let distance = try cluster.query(.primary, "SELECT pg_wal_lsn_diff('\(members[0]["lsn"]!)', '\(paused["lsn"]!)')::bigint")
            #expect(paused["lag"] == distance)
            #expect(Int(paused["lag"] ?? "") ?? 0 > 8192, "the paused standby is behind by the table's WAL")
        }

        let (header, rows) = try clusterTable(.standby2)
        #expect(header == Self.clusterColumns, "the table's header is the JSON's keys")
        let (_, members) = try clusterJSON(.standby2)
        for column in ["name", "role", "state", "timeline", "sync_state", "guard", "problem"] {
            #expect(rows.map { $0[column] } == members.map { $0[column] }, "\(column) agrees")
        }
        #expect(rows[2]["lsn"] == members[2]["lsn"], "replay is paused: the same position both times")

        let head = cluster.check(.primary, request: "HEAD /cluster HTTP/1.0\r\n\r\n").text
        #expect(head.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "), "\(head)")
        #expect(head.hasSuffix("Connection: close\r\n\r\n"), "HEAD: the headers, no body: \(head)")

        let alone = Child.run([TestCluster.binary, "-h", cluster.socketDirectory, "-p", cluster.ports[.standby]!, "-U", "pgsqlchk",
                               "-d", "postgres", "-o", "cluster"], input: .null)
        let lines = alone.text.split(separator: "\n")
        #expect(lines.count == 2, "without --peers only this node: \(alone.text)")
        #expect(lines.last?.hasPrefix("local  standby  streaming") == true, "\(alone.text)")

        _ = try cluster.query(.standby2, "SELECT pg_wal_replay_resume()")
        try cluster.stop(.standby2)
        let (down, stopped) = try clusterJSON(.primary)
        #expect(down.status == 200, "a stopped peer is a row, not an outage")
        #expect(stopped[2]["state"] == "unreachable")
        #expect(stopped[2]["role"] == "-")
        #expect(stopped[2]["problem"] == "no response from server")
        let status = try response(cluster.check(.primary, request: "GET /status HTTP/1.0\r\n\r\n"))
        #expect(status.body.contains("\"peers_unreachable\": {\"no response from server\": 1}"), "the same reason as /status counts: \(status.body)")
        #expect(try clusterTable(.primary).rows[2]["problem"] == "no response from server")
    }

    @Test("after a failover the view shows the stale primary's verdict from every node, fenced once its own check ran, and the old standby left behind")
    func clusterViewAfterFailover() throws {
        try cluster.reset()
        let newer = cluster.address(of: .standby)
        try cluster.stop(.primary)
        try cluster.promote(.standby)
        try cluster.start(.primary)
        let stale = "stale primary: \(newer) is primary on timeline 2, this node is primary on timeline 1"

        // From the third node first: the old primary's own check has not run, so no fence yet.
        let (_, seen) = try clusterJSON(.standby2)
        #expect(seen.map { $0["role"] } == ["primary", "primary", "standby"])
        #expect(seen.map { $0["timeline"] } == ["1", "2", "1"])
        #expect(seen.map { $0["guard"] } == [stale, "serving", "-"])
        #expect(seen[2]["lag"] == "-", "on the old timeline: no distance to the new primary means anything")
        // Its receiver reconnects to the old primary when that one is back; until then it is stopped.
        if seen[2]["state"] == "streaming" {
            #expect(seen[2]["problem"]?.hasPrefix("\(newer) streams to no standby with application_name 'standby2'") == true, "\(seen[2])")
        } else {
            #expect(seen[2]["state"] == "stopped")
            #expect(seen[2]["problem"] == "-", "a stopped receiver: nothing to look up")
        }

        let (answer, own) = try clusterJSON(.primary)
        #expect(answer.status == 200, "/cluster reports; it does not route")
        #expect(own.map { $0["guard"] } == [stale, "serving", "-"])

        try cluster.stop(.standby)
        let (_, fenced) = try clusterJSON(.primary)
        #expect(fenced[0]["guard"] == "stale primary (fenced): \(newer) was primary on timeline 2, this node is primary on timeline 1",
                "the node's own verdict includes its fence file")
        #expect(fenced[1]["state"] == "unreachable")
        #expect(try clusterTable(.primary).rows[0]["guard"] == fenced[0]["guard"])
    }
}
