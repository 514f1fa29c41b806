import CBackstop
#if canImport(Glibc)
import Glibc
#endif

/// What the asker sent before the check stopped reading, and why it stopped.
struct ReceivedRequest: Equatable, Sendable {
    enum End: Equatable, Sendable {
        /// The dialect's end of a request arrived.
        case complete
        /// The asker closed its side (or the read failed) first.
        case askerClosed
        /// ``CheckSocket/requestLimit`` bytes arrived without an end.
        case limitReached
        /// The time allowed for waiting ran out first.
        case waitEnded
    }

    var bytes: [UInt8]
    var end: End
}

/// The I/O of one check: the request in, the answer out. ``StandardStreams``
/// is the connection a super-server hands over (or an admin's terminal);
/// unit tests drive ``HealthCheck`` with one of their own.
protocol CheckConnection {
    /// What the asker sent, up to the end of its request
    /// (``CheckSocket/readRequest(before:isComplete:)``).
    func readRequest(before stop: Deadline, isComplete: ([UInt8]) -> Bool) -> ReceivedRequest
    /// The asking HAProxy's address (``CheckSocket/askerAddress()``).
    func askerAddress() -> String?
    /// Writes the whole answer; with `finishing`, then ends the connection
    /// cleanly (``CheckSocket/finish()``).
    func send(_ bytes: [UInt8], finishing: Bool) throws(Errno)
}

/// Standard input and output, through ``CheckSocket``.
struct StandardStreams: CheckConnection {
    func readRequest(before stop: Deadline, isComplete: ([UInt8]) -> Bool) -> ReceivedRequest {
        CheckSocket.readRequest(before: stop, isComplete: isComplete)
    }

    func askerAddress() -> String? {
        CheckSocket.askerAddress()
    }

    func send(_ bytes: [UInt8], finishing: Bool) throws(Errno) {
        defer { if finishing { CheckSocket.finish() } }
        try CheckSocket.write(bytes)
    }
}

/// The check connection a super-server hands over as stdin and stdout.
///
/// Whoever opened it (HAProxy, Prometheus, curl) is the *asker*; a *peer* in
/// this code is always a database node that `--peers` names.
///
/// The asker has usually sent its request before we run; if we closed the socket
/// with that request unread, the kernel would answer with a reset instead of a
/// normal close, and HAProxy 2.2+ reports such checks as socket errors. So the
/// request is read (bounded in bytes and time) before the answer is written,
/// the answer goes out in one `write()`, and the rest is drained after
/// `shutdown(SHUT_WR)`.
enum CheckSocket {
    /// The most of a request head we read; HAProxy's check request is under
    /// 100 bytes, about 250 with `http-check send-state`.
    static let requestLimit = 8_192
    /// How long and how much we drain after answering, before closing.
    static let drainWait = Milliseconds(200)
    /// The most bytes drained after answering.
    static let drainLimit = 65_536

    /// Whether stdin is a connected socket: a check connection, not an admin's
    /// terminal, pipe or file. (C: `fstat`.)
    static func isServing() -> Bool {
        var status = stat()
        return fstat(STDIN_FILENO, &status) == 0 && (status.st_mode & S_IFMT) == S_IFSOCK
    }

    /// Points stderr at /dev/null when it is the check's own socket (xinetd
    /// hands the connection over as stdin, stdout and stderr alike).
    ///
    /// pgsqlchk itself then reports to syslog, but libraries write to stderr
    /// on their own: libpq warns about a world-readable `.pgpass` there, and
    /// any such line would land in front of the HTTP answer. systemd's
    /// `StandardError=journal` is another socket and is left alone.
    /// (C: `fstat`, `dup2`.)
    static func silenceSharedStandardError() {
        var output = stat(), error = stat()
        guard fstat(STDOUT_FILENO, &output) == 0, fstat(STDERR_FILENO, &error) == 0,
              output.st_dev == error.st_dev, output.st_ino == error.st_ino
        else { return }
        let null = open("/dev/null", O_WRONLY)
        guard null >= 0 else { return }
        dup2(null, STDERR_FILENO)
        close(null)
    }

    /// Reads what the asker sent, up to the end of its request.
    ///
    /// Returns as soon as `isComplete` holds, the asker stops sending,
    /// ``requestLimit`` bytes were read, or `stop` passes.
    static func readRequest(before stop: Deadline, isComplete: ([UInt8]) -> Bool) -> ReceivedRequest {
        var head: [UInt8] = []
        while true {
            if isComplete(head) { return ReceivedRequest(bytes: head, end: .complete) }
            if head.count >= requestLimit { return ReceivedRequest(bytes: head, end: .limitReached) }
            switch read(upTo: requestLimit - head.count, before: stop) {
            case .bytes(let chunk): head += chunk
            case .closed: return ReceivedRequest(bytes: head, end: .askerClosed)
            case .timedOut: return ReceivedRequest(bytes: head, end: .waitEnded)
            }
        }
    }

    /// The address of the asker on stdin, as PostgreSQL's `inet` prints it
    /// (`192.0.2.10`, `2001:db8::10`); an IPv4 asker that reached an IPv6
    /// socket (`::ffff:192.0.2.10`) as its IPv4 address, which is how
    /// `pg_stat_activity.client_addr` shows that host's connections to an
    /// IPv4 listener. Nil when stdin is no IP socket.
    /// (C: `getpeername`, `inet_ntop`.)
    static func askerAddress() -> String? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(STDIN_FILENO, $0, &length) }
        }
        guard named == 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch Int32(storage.ss_family) {
        case AF_INET:
            var address = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr } }
            guard inet_ntop(AF_INET, &address, &text, socklen_t(text.count)) != nil else { return nil }
        case AF_INET6:
            var address = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr } }
            let bytes = withUnsafeBytes(of: &address) { Array($0) }
            if bytes[..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
                var mapped = in_addr()
                withUnsafeMutableBytes(of: &mapped) { $0.copyBytes(from: bytes[12...]) }
                guard inet_ntop(AF_INET, &mapped, &text, socklen_t(text.count)) != nil else { return nil }
            } else {
                guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else { return nil }
            }
        default:
            return nil
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Writes the whole answer to stdout in one call, continuing only what a
    /// signal or a full socket buffer cut short.
    ///
    /// Throws the failed write's `errno` (EPIPE when the asker has gone).
    static func write(_ bytes: [UInt8]) throws(Errno) {
        try POSIX.writeAll(bytes, to: STDOUT_FILENO)
    }

    /// Ends the connection with a normal close: FIN after the answer, then reads
    /// whatever the asker still sends (bounded) so that no unread byte turns the
    /// close into a reset. The same C function serves the backstop.
    static func finish() {
        pgsqlchk_finish_connection(drainWait.value, drainLimit)
    }

    private enum Chunk {
        case bytes([UInt8])
        case closed
        case timedOut
    }

    /// One `read()` after `poll()`.
    private static func read(upTo count: Int, before stop: Deadline) -> Chunk {
        switch stop.wait(for: Int16(POLLIN), on: STDIN_FILENO) {
        case .timedOut:
            return .timedOut
        case .failed:
            return .closed
        case .ready:
            guard let chunk = try? POSIX.readSome(from: STDIN_FILENO, upTo: count), !chunk.isEmpty else { return .closed }
            return .bytes(chunk)
        }
    }
}
