#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PGSQLChkCore

@Suite("Fence file", .serialized)
struct FenceFileTests {
    static let fence = Fence(systemIdentifier: "7714142357752938336", timeline: 1, newerNode: "127.0.0.1:5433",
                             newerRole: "primary", newerTimeline: 2)
    static let valid = FenceFile.render(fence)

    @Test("what is written parses back to the same fence")
    func roundTrip() {
        #expect(FenceFile.parse(Array(Self.valid.utf8)) == .success(Self.fence))
    }

    @Test("anything but the exact format is corrupt, with the reason", arguments: [
        ("", "does not end with a newline"),
        (valid.replacingFirst("pgsqlchk-fence 1", with: "pgsqlchk-fence 2"), "expected \"pgsqlchk-fence 1\" and 5 lines"),
        (valid + "extra 1\n", "expected \"pgsqlchk-fence 1\" and 5 lines"),
        (String(valid.dropLast()), "does not end with a newline"),
        (valid.replacingFirst("timeline 1", with: "timeline one"), "bad timeline"),
        (valid.replacingFirst("timeline 1", with: "timeline 0"), "bad timeline"),
        (valid.replacingFirst("newer_timeline 2", with: "newer_timeline 1"), "bad newer_timeline"),
        (valid.replacingFirst("newer_role primary", with: "newer_role leader"), "bad newer_role"),
        (valid.replacingFirst("system_identifier 7", with: "system_identifier x"), "bad system_identifier"),
        (valid.replacingFirst("timeline 1", with: "timeline  1"), "bad timeline"),
        (valid.replacingFirst("newer_node ", with: "node "), "expected newer_node"),
        (valid.replacingFirst("127", with: "\u{1}27"), "not printable ASCII"),
        (valid + String(repeating: "x", count: 1_100), "longer than 1024 bytes"),
    ] as [(String, String)])
    func corrupt(text: String, reason: String) {
        #expect(FenceFile.parse(Array(text.utf8)) == .failure(FenceFile.FormatProblem(reason: reason)))
    }

    static let node = NodeIdentity(systemIdentifier: "7714142357752938336", port: "5432")

    /// A fresh temporary state directory, removed with its files after `body`.
    static func inStateDirectory(_ body: (String) throws -> Void) throws {
        var template = Array("/tmp/pgsqlchk-fence-XXXXXX".utf8CString)
        let directory = String(cString: try #require(mkdtemp(&template)))
        defer {
            for file in FenceFile.all(in: directory) { unlink(file.path) }
            rmdir(directory)
        }
        try body(directory)
    }

    @Test("written atomically, read back, never through a link, removed by --clear-fence's call")
    func onDisk() throws {
        try Self.inStateDirectory { directory throws in
            let file = FenceFile(stateDirectory: directory, node: Self.node)
            #expect(file.path == "\(directory)/fence-7714142357752938336-5432")
            #expect(file.read() == .absent)
            #expect(file.write(Self.fence) == nil)
            #expect(file.read() == .fence(Self.fence))
            #expect(try file.remove())
            #expect(try !file.remove())
            symlink("/etc/passwd", file.path)
            #expect(file.read() == .unreadable(reason: "fence file \(file.path) is a symbolic link"))
            // The rename replaces the link itself; its target is untouched.
            #expect(file.write(Self.fence) == nil)
            #expect(file.read() == .fence(Self.fence))
            let garbage = open(file.path, O_WRONLY | O_TRUNC)
            _ = write(garbage, "x\n", 2)
            close(garbage)
            #expect(file.read() == .unreadable(reason: "fence file \(file.path) is corrupt: expected \"pgsqlchk-fence 1\" and 5 lines"))
        }
    }

    @Test("each node has its own file, named by system identifier and port; the listing finds every node's and the legacy one")
    func perNode() throws {
        try Self.inStateDirectory { directory throws in
            let sibling = FenceFile(stateDirectory: directory, node: NodeIdentity(systemIdentifier: Self.node.systemIdentifier, port: "5433"))
            let other = FenceFile(stateDirectory: directory + "/", node: NodeIdentity(systemIdentifier: "6000000000000000001", port: "5432"))
            let own = FenceFile(stateDirectory: directory, node: Self.node)
            #expect(Set([own.path, sibling.path, other.path]).count == 3)
            for file in [own, sibling, other, FenceFile.legacy(stateDirectory: directory)] { #expect(file.write(Self.fence) == nil) }
            #expect(try own.remove())
            #expect(sibling.read() == .fence(Self.fence))
            #expect(FenceFile.all(in: directory).map(\.path)
                == ["\(directory)/fence", "\(directory)/fence-6000000000000000001-5432", "\(directory)/fence-7714142357752938336-5433"])
        }
    }

    @Test("--clear-fence removes this node's file and a legacy one of its cluster, never a neighbour's")
    func clearing() throws {
        try Self.inStateDirectory { directory throws in
            let own = FenceFile(stateDirectory: directory, node: Self.node)
            let sibling = FenceFile(stateDirectory: directory, node: NodeIdentity(systemIdentifier: Self.node.systemIdentifier, port: "5433"))
            let legacy = FenceFile.legacy(stateDirectory: directory)
            for file in [own, sibling, legacy] { #expect(file.write(Self.fence) == nil) }
            let cleared = FenceClearing.clear(for: Self.node, in: directory)
            #expect(cleared == FenceClearing.Outcome(lines: ["removed the fence file \(own.path)", "removed the fence file \(legacy.path)"]))
            #expect(sibling.read() == .fence(Self.fence))
            #expect(FenceClearing.clear(for: Self.node, in: directory).lines
                == ["no fence file for this node (system identifier 7714142357752938336, port 5432) in \(directory)"])

            let otherCluster = Fence(systemIdentifier: "6000000000000000001", timeline: 1, newerNode: "db9:5432", newerRole: "standby", newerTimeline: 3)
            #expect(legacy.write(otherCluster) == nil)
            #expect(FenceClearing.clear(for: Self.node, in: directory).exitStatus == .success)
            #expect(legacy.read() == .fence(otherCluster), "another cluster's legacy fence stays")
            #expect(FenceClearing.list(in: directory).lines == [
                "nothing removed; fence files in \(directory) (remove this node's with rm):",
                "  \(legacy.path): system identifier 6000000000000000001, timeline 1, db9:5432 was standby on timeline 3",
                "  \(sibling.path): system identifier 7714142357752938336, timeline 1, 127.0.0.1:5433 was primary on timeline 2",
            ])
        }
    }
}

private extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        return String(self[..<range.lowerBound]) + replacement + String(self[range.upperBound...])
    }
}
