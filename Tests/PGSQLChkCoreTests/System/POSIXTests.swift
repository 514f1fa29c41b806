#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PGSQLChkCore

@Suite("POSIX habits", .serialized)
struct POSIXTests {
    /// Reads a pipe to its end on a thread of its own, slowly, and keeps
    /// interrupting the writer (`SIGUSR2`, a handler without `SA_RESTART`):
    /// a `write()` blocked on the full pipe then returns what it had written
    /// so far, or fails with `EINTR` when it had written nothing.
    final class InterruptingReader {
        let descriptor: Int32
        let writer: pthread_t
        var received: [UInt8] = []

        init(descriptor: Int32, writer: pthread_t) {
            self.descriptor = descriptor
            self.writer = writer
        }

        func run() {
            var buffer = [UInt8](repeating: 0, count: 4_096)
            while true {
                pthread_kill(writer, SIGUSR2)
                var pause = timespec(tv_sec: 0, tv_nsec: 50_000)
                nanosleep(&pause, nil)
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { return }
                received += buffer[..<count]
            }
        }
    }

    @Test("a large write to a pipe, read slowly while signals hit the writer, arrives whole and in order")
    func writeAllAcrossShortWrites() throws {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        var previous = sigaction()
        sigaction(SIGUSR2, &action, &previous)
        defer { sigaction(SIGUSR2, &previous, nil) }

        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        let bytes = (0..<1_048_576).map { UInt8(truncatingIfNeeded: $0 * 7 + $0 / 251) }
        let reader = InterruptingReader(descriptor: ends[0], writer: pthread_self())
        var thread = pthread_t()
        let context = Unmanaged.passRetained(reader).toOpaque()
        try #require(pthread_create(&thread, nil, { context in
            Unmanaged<InterruptingReader>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context) == 0)
        var failure: Errno?
        do {
            try POSIX.writeAll(bytes, to: ends[1])
        } catch {
            failure = error
        }
        close(ends[1])
        pthread_join(thread, nil)
        close(ends[0])
        #expect(failure == nil)
        #expect(reader.received.count == bytes.count)
        #expect(reader.received == bytes)
    }

    @Test("a write that fails says why: the peer's end is closed")
    func writeAllFailure() throws {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        close(ends[0])
        var ignore = sigaction()
        ignore.__sigaction_handler.sa_handler = SIG_IGN
        var previous = sigaction()
        sigaction(SIGPIPE, &ignore, &previous)
        defer { sigaction(SIGPIPE, &previous, nil) }
        #expect(throws: Errno(EPIPE)) { try POSIX.writeAll([1, 2, 3], to: ends[1]) }
        close(ends[1])
    }

    @Test("a read stops at end of file or at the limit, whichever is first", arguments: [
        (100, 10), (10, 10), (4, 4), (0, 0),
    ])
    func readAllLimit(limit: Int, expected: Int) throws {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]) }
        let bytes: [UInt8] = Array(0..<10)
        try POSIX.writeAll(bytes, to: ends[1])
        close(ends[1])
        #expect(try POSIX.readAll(from: ends[0], limit: limit) == Array(bytes.prefix(expected)))
    }

    /// A fresh temporary directory, open, removed with its files after `body`.
    static func inDirectory(_ body: (_ path: String, _ descriptor: Int32) throws -> Void) throws {
        var template = Array("/tmp/pgsqlchk-posix-XXXXXX".utf8CString)
        let path = String(cString: try #require(mkdtemp(&template)))
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer {
            for name in ["file", "target", ".file.tmp"] { unlink("\(path)/\(name)") }
            close(descriptor)
            rmdir(path)
        }
        try body(path, descriptor)
    }

    static func contents(of path: String) throws -> [UInt8] {
        let file = open(path, O_RDONLY | O_NOFOLLOW)
        try #require(file >= 0)
        defer { close(file) }
        return try POSIX.readAll(from: file, limit: 1 << 20)
    }

    @Test("an atomic replace leaves the old file or the new one whole, never the temporary", arguments: [false, true])
    func replace(durably: Bool) throws {
        try Self.inDirectory { path, directory in
            let old = Array("old\n".utf8), new = Array(String(repeating: "new\n", count: 20_000).utf8)
            try POSIX.replace("file", in: directory, with: old, temporary: ".file.tmp", mode: 0o600, durably: durably)
            #expect(try Self.contents(of: "\(path)/file") == old)

            // A temporary left behind by a dead writer with this pid is replaced.
            close(open("\(path)/.file.tmp", O_WRONLY | O_CREAT, 0o600))
            try POSIX.replace("file", in: directory, with: new, temporary: ".file.tmp", mode: 0o600, durably: durably)
            #expect(try Self.contents(of: "\(path)/file") == new)
            #expect(access("\(path)/.file.tmp", F_OK) != 0)

            // A rename that fails (a directory in the way) keeps the old file and removes the temporary.
            mkdir("\(path)/target", 0o700)
            #expect(throws: POSIX.ReplaceFailure(step: .renaming, error: Errno(EISDIR))) {
                try POSIX.replace("target", in: directory, with: old, temporary: ".file.tmp", mode: 0o600, durably: durably)
            }
            rmdir("\(path)/target")
            #expect(access("\(path)/.file.tmp", F_OK) != 0)
            #expect(try Self.contents(of: "\(path)/file") == new)

            // A link in the file's place is replaced, its target untouched.
            unlink("\(path)/file")
            symlink("\(path)/target", "\(path)/file")
            try POSIX.replace("file", in: directory, with: old, temporary: ".file.tmp", mode: 0o600, durably: durably)
            #expect(access("\(path)/target", F_OK) != 0)
            #expect(try Self.contents(of: "\(path)/file") == old)
        }
    }

    @Test("an errno reads as the C library's text for it", arguments: [
        (ENOENT, "No such file or directory"), (EACCES, "Permission denied"), (EPIPE, "Broken pipe"),
    ])
    func errnoText(code: Int32, text: String) {
        #expect(Errno(code).description == text)
        #expect("\(Errno(code))" == text)
    }

    @Test("a getaddrinfo code reads as its own text, not an errno's")
    func lookupErrorText() {
        #expect(POSIX.lookupErrorText(EAI_NONAME) == "Name or service not known")
    }

    @Test("a call interrupted by a signal is made again; any other failure is returned with its errno")
    func retryingInterrupted() {
        var calls = 0
        let result = POSIX.retryingInterrupted { () -> Int32 in
            calls += 1
            errno = calls < 3 ? EINTR : EBADF
            return -1
        }
        #expect(result == -1)
        #expect(calls == 3)
        #expect(errno == EBADF)
    }
}
