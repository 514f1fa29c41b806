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

    @Test("written atomically, read back, never through a link, removed by --clear-fence's call")
    func onDisk() throws {
        var template = Array("/tmp/pgsqlchk-fence-XXXXXX".utf8CString)
        let directory = String(cString: try #require(mkdtemp(&template)))
        defer {
            unlink(directory + "/fence")
            rmdir(directory)
        }
        let file = FenceFile(stateDirectory: directory)
        #expect(file.read() == .absent)
        #expect(file.write(Self.fence) == nil)
        #expect(file.read() == .fence(Self.fence))
        #expect(try file.remove())
        #expect(try !file.remove())
        symlink("/etc/passwd", file.path)
        #expect(file.read() == .unreadable(reason: "fence file \(directory)/fence is a symbolic link"))
        // The rename replaces the link itself; its target is untouched.
        #expect(file.write(Self.fence) == nil)
        #expect(file.read() == .fence(Self.fence))
        let garbage = open(file.path, O_WRONLY | O_TRUNC)
        _ = write(garbage, "x\n", 2)
        close(garbage)
        #expect(file.read() == .unreadable(reason: "fence file \(directory)/fence is corrupt: expected \"pgsqlchk-fence 1\" and 5 lines"))
    }
}

private extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        return String(self[..<range.lowerBound]) + replacement + String(self[range.upperBound...])
    }
}
