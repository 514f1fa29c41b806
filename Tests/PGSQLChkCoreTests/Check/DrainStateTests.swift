#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PGSQLChkCore

/// Real files in a private temporary directory: `stat` and `lstat` are the
/// logic here.
@Suite("Drain file")
struct DrainStateTests {
    let directory: String

    init() throws {
        var template = Array("/tmp/pgsqlchk-drain-XXXXXX".utf8CString)
        directory = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
    }

    private func read(_ path: String) -> (DrainState, [String]) {
        var reports: [String] = []
        let state = DrainState.read(path: path) { reports.append($0) }
        return (state, reports)
    }

    @Test("a missing file, or a missing directory, is absent and quiet")
    func missing() {
        #expect(read(directory + "/maintenance") == (.absent, []))
        #expect(read(directory + "/no-such-dir/maintenance") == (.absent, []))
    }

    @Test("a file, a directory, or a link to either drains")
    func present() {
        close(open(directory + "/maintenance", O_CREAT | O_WRONLY, 0o600))
        #expect(read(directory + "/maintenance") == (.present, []))
        symlink(directory + "/maintenance", directory + "/link")
        #expect(read(directory + "/link") == (.present, []))
        #expect(read(directory) == (.present, []))
    }

    @Test("a link to nothing is absent, and says so")
    func danglingLink() {
        symlink(directory + "/gone", directory + "/link")
        let (state, reports) = read(directory + "/link")
        #expect(state == .absent)
        #expect(reports == ["drain file \(directory)/link is a symbolic link to nothing: not draining"])
    }

    @Test("a path that cannot be looked at is unreadable, reported, and routes by role")
    func unreadable() {
        close(open(directory + "/file", O_CREAT | O_WRONLY, 0o600))
        let (state, reports) = read(directory + "/file/maintenance")
        let reason = "drain file \(directory)/file/maintenance cannot be checked: Not a directory"
        #expect(state == .unreadable(reason: reason))
        #expect(reports == [reason + "; routing as if it were absent"])
    }
}
