#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PGSQLChkCore

/// The result cache on a real directory, with probes that are closures: what
/// is written, how old it is when served, and how many files it leaves.
@Suite("Result cache directory: only the node's answers, dated when the node was read, in bounded files")
struct ResultCacheDirectoryTests {
    static let primary = Result<NodeState, ProbeFailure>.success(NodeState(inRecovery: false, serverVersion: "15.18", timeline: 1))

    let directory: String

    init() throws {
        var template = Array("/tmp/pgsqlchk-cache-unit.XXXXXX".utf8CString)
        directory = String(cString: try #require(mkdtemp(&template)))
    }

    func removeDirectory() {
        for name in files() { unlink(directory + "/" + name) }
        rmdir(directory)
    }

    func cache(ttl: Milliseconds = Milliseconds(5_000)) -> ResultCache {
        ResultCache(settings: CacheSettings(ttl: ttl, directory: directory), report: { _ in })
    }

    static func key(_ role: String? = nil) -> CacheKey {
        CacheKey(ConnectionSettings(host: "/run/postgresql", port: "5432"), depth: .connectionSlots, environment: [], user: 100)
            .adding("maxconn_role", role)
    }

    /// One check: the answer, and whether it ran `probe`.
    func check(_ key: CacheKey = key(), ttl: Milliseconds = Milliseconds(5_000),
               probe: () -> Result<NodeState, ProbeFailure> = { primary }) -> (answer: ResultCache.Answer, probed: Bool) {
        var probed = false
        let answer = cache(ttl: ttl).outcome(for: key, before: Deadline(after: Milliseconds(1_500))) {
            probed = true
            return probe()
        }
        return (answer, probed)
    }

    func files() -> [String] {
        guard let stream = opendir(directory) else { return [] }
        defer { closedir(stream) }
        var names: [String] = []
        while let item = readdir(stream) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Sets a file's modification time `seconds` into the past.
    func age(_ name: String, by seconds: Int) {
        var times = [timespec(tv_sec: time(nil) - seconds, tv_nsec: 0), timespec(tv_sec: time(nil) - seconds, tv_nsec: 0)]
        utimensat(AT_FDCWD, directory + "/" + name, &times, 0)
    }

    /// What a failure says: about the node (shared with every check of the
    /// key) or about the check that asked (never written).
    @Test("a failure is shared only when it is the node's answer", arguments: [
        (ProbeFailure.noResponse(detail: "refused"), true),
        (.tooManyConnections(detail: "53300"), true),
        (.notAcceptingConnections(detail: "57P03"), true),
        (.connectionRejected(sqlstate: "08P01", detail: "protocol"), true),
        (.authorizationFailed(detail: "3D000"), true),
        (.queryFailed(.replication, detail: "canceling statement"), true),
        (.timedOut(phase: .querying), false),
        (.timedOut(phase: .connecting), false),
        (.authenticationFailed(detail: "fe_sendauth: no password supplied"), false),
        (.tlsFailed(.localFiles, detail: "could not open certificate file"), false),
        (.misconfigured(detail: "invalid sslmode value"), false),
        (.libraryMissing(detail: "libpq.so.5"), false),
    ])
    func sharing(failure: ProbeFailure, shared: Bool) {
        defer { removeDirectory() }
        #expect(ResultCache.shares(.failure(failure)) == shared)
        let first = check { .failure(failure) }
        #expect(first.probed && first.answer.outcome == .failure(failure))
        // The next check with the same key gets it only if it was shared.
        let second = check()
        #expect(second.probed == !shared)
        #expect(second.answer.outcome == (shared ? .failure(failure) : Self.primary))
    }

    @Test("an entry's age counts from the start of its probe: a slow probe leaves less of the TTL")
    func datedWhenTheNodeWasRead() {
        defer { removeDirectory() }
        let ttl = Milliseconds(500)
        let slow = check(ttl: ttl) {
            usleep(300_000)
            return Self.primary
        }
        #expect(slow.probed && slow.answer.age == Milliseconds(0))
        let hit = check(ttl: ttl)
        #expect(!hit.probed)
        #expect((hit.answer.age?.value ?? 0) >= 300, "served age \(String(describing: hit.answer.age))")
        // 300 ms of probe and 250 ms since: past the TTL, though written 250 ms ago.
        usleep(250_000)
        #expect(check(ttl: ttl).probed, "an entry was served past its TTL")
    }

    @Test("a hit reports the duration of the probe that wrote the entry")
    func probeDurationKept() {
        defer { removeDirectory() }
        let slow = check {
            usleep(200_000)
            return Self.primary
        }
        let hit = check()
        #expect(!hit.probed)
        #expect(slow.answer.probeDuration.value >= 200)
        #expect(hit.answer.probeDuration == slow.answer.probeDuration)
    }

    @Test("a directory the cache may not use gives no age: the cache is off for the check")
    func unusableDirectoryHasNoAge() {
        defer { removeDirectory() }
        chmod(directory, 0o755)
        let answer = check()
        #expect(answer.probed)
        #expect(answer.answer.age == nil)
    }

    @Test("200 distinct maxconn roles leave at most two files an entry, up to the maximum number of entries")
    func boundedByCount() {
        defer { removeDirectory() }
        for role in 0..<200 {
            _ = check(Self.key("role\(role)"))
        }
        let left = files()
        #expect(left.count <= 2 * ResultCache.maximumEntries, "\(left.count) files")
        #expect(left.filter { $0.hasSuffix(".entry") }.count == ResultCache.maximumEntries)
        // The newest stay: the last role's is a hit.
        #expect(!check(Self.key("role199")).probed)
    }

    @Test("a write removes entries older than the longest TTL, their locks, and orphaned locks; a held lock stays")
    func oldFilesRemoved() throws {
        defer { removeDirectory() }
        _ = check(Self.key("old"))
        _ = check(Self.key("held"))
        let old = Self.key("old").digest, held = Self.key("held").digest
        let orphan = "0123456789abcdef.lock"
        close(open(directory + "/" + orphan, O_CREAT | O_WRONLY, 0o600))
        for name in [old + ".entry", held + ".entry"] { age(name, by: 61) }
        // Another check is probing for "held": it holds the lock.
        let holder = open(directory + "/" + held + ".lock", O_RDWR)
        try #require(holder >= 0 && flock(holder, LOCK_EX) == 0)
        defer { close(holder) }
        _ = check(Self.key("new"))
        let left = files()
        #expect(!left.contains(old + ".entry") && !left.contains(old + ".lock"), "\(left)")
        #expect(!left.contains(orphan), "\(left)")
        #expect(left.contains(held + ".entry") && left.contains(held + ".lock"), "\(left)")
        #expect(left.contains(Self.key("new").digest + ".entry"))
    }

    @Test("a directory reached through a link, as systemd links /run/pgsqlchk into /run/private, is used; a link to an open one is not")
    func linkedDirectory() throws {
        defer { removeDirectory() }
        let link = directory + ".link"
        try #require(symlink(directory, link) == 0)
        defer { unlink(link) }
        func checkThroughLink() -> ResultCache.Answer {
            ResultCache(settings: CacheSettings(ttl: Milliseconds(5_000), directory: link), report: { _ in })
                .outcome(for: Self.key(), before: Deadline(after: Milliseconds(1_500))) { Self.primary }
        }
        #expect(checkThroughLink().age == Milliseconds(0))
        #expect(files() == [Self.key().digest + ".entry", Self.key().digest + ".lock"])
        chmod(directory, 0o755)
        #expect(checkThroughLink().age == nil, "a directory others may enter was used through the link")
        chmod(directory, 0o700)
    }
}
