#if canImport(Glibc)
import Glibc
#endif

/// The other end of the check: HAProxy over a socket, or an admin at a terminal.
///
/// A super-server hands the accepted connection over as stdin and stdout. The
/// peer has usually sent its request before we run; if we closed the socket
/// with that request unread, the kernel would answer with a reset instead of a
/// normal close, and HAProxy 2.2+ reports such checks as socket errors. So the
/// request is read (bounded in bytes and time) before the answer is written,
/// the answer goes out in one `write()`, and the rest is drained after
/// `shutdown(SHUT_WR)`. A terminal or a file gets the answer and nothing is read.
public struct CheckPeer: Sendable {
    /// The most of a request head we read; HAProxy's check request is under 100 bytes.
    public static let requestLimit = 8_192
    /// How long we wait for a request that has not arrived yet.
    public static let requestWait = Milliseconds(200)
    /// How long and how much we drain after answering, before closing.
    public static let drainWait = Milliseconds(200)
    /// The most bytes drained after answering.
    public static let drainLimit = 65_536

    /// Whether stdin is a connected socket (the super-server case).
    public let isSocket: Bool

    /// Looks at stdin. (C: `fstat`.)
    public init(input: Int32 = STDIN_FILENO) {
        var status = stat()
        isSocket = fstat(input, &status) == 0 && (status.st_mode & S_IFMT) == S_IFSOCK
    }

    /// Points stderr at /dev/null when it is the check's own socket (xinetd
    /// hands the connection over as stdin, stdout and stderr alike).
    ///
    /// pgsqlchk itself then reports to syslog, but libraries write to stderr
    /// on their own: libpq warns about a world-readable `.pgpass` there, and
    /// any such line would land in front of the HTTP answer. systemd's
    /// `StandardError=journal` is another socket and is left alone.
    /// (C: `fstat`, `dup2`.)
    public func silenceSharedStandardError() {
        var output = stat(), error = stat()
        guard isSocket, fstat(STDOUT_FILENO, &output) == 0, fstat(STDERR_FILENO, &error) == 0,
              output.st_dev == error.st_dev, output.st_ino == error.st_ino
        else { return }
        let null = open("/dev/null", O_WRONLY)
        guard null >= 0 else { return }
        dup2(null, STDERR_FILENO)
        close(null)
    }

    /// Reads what the peer sent, up to the end of its request.
    ///
    /// Returns as soon as `isComplete` holds (a blank line ends an HTTP head, a
    /// newline an `agent-send` line), the peer stops sending, ``requestLimit``
    /// bytes were read, or ``requestWait`` (capped by `deadline`) passed.
    /// Never waits when stdin is not a socket.
    public func readRequest(before deadline: Deadline, isComplete: ([UInt8]) -> Bool) -> [UInt8] {
        guard isSocket else { return [] }
        let stop = Deadline(after: deadline.remaining(atMost: Self.requestWait))
        var head: [UInt8] = []
        while head.count < Self.requestLimit, !isComplete(head) {
            guard let chunk = Self.read(from: STDIN_FILENO, upTo: Self.requestLimit - head.count, before: stop) else { break }
            head += chunk
        }
        return head
    }

    /// Writes the whole answer in one call, retrying only what a signal interrupted.
    ///
    /// Returns the `errno` of a failed write (EPIPE when the peer has gone), or nil.
    public func write(_ bytes: [UInt8]) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                Glibc.write(STDOUT_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written >= 0 {
                offset += written
            } else if errno != EINTR {
                return errno
            }
        }
        return nil
    }

    /// Ends the connection with a normal close: FIN after the answer, then reads
    /// whatever the peer still sends (bounded) so that no unread byte turns the
    /// close into a reset.
    public func finish() {
        guard isSocket else { return }
        shutdown(STDOUT_FILENO, Int32(SHUT_WR))
        let stop = Deadline(after: Self.drainWait)
        var drained = 0
        while drained < Self.drainLimit,
              let chunk = Self.read(from: STDIN_FILENO, upTo: 4_096, before: stop) {
            drained += chunk.count
        }
    }

    /// One `read()` after `poll()`; nil at end of input, on error or when `stop` passes.
    private static func read(from descriptor: Int32, upTo count: Int, before stop: Deadline) -> [UInt8]? {
        while case .ready = stop.wait(for: Int16(POLLIN), on: descriptor) {
            var buffer = [UInt8](repeating: 0, count: count)
            let received = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, count) }
            if received < 0, errno == EINTR { continue }
            guard received > 0 else { return nil }
            return Array(buffer[..<received])
        }
        return nil
    }
}

/// Where a peer's request ends.
public enum RequestEnd {
    /// Whether `bytes` hold a whole HTTP request head: a blank line (CRLF CRLF,
    /// or bare LF LF from hand-typed requests) has arrived.
    public static func isHTTPHeadComplete(_ bytes: [UInt8]) -> Bool {
        let carriageReturn: UInt8 = 13, lineFeed: UInt8 = 10
        var previousLineFeed = false
        for byte in bytes where byte != carriageReturn {
            if byte == lineFeed {
                if previousLineFeed { return true }
                previousLineFeed = true
            } else {
                previousLineFeed = false
            }
        }
        return false
    }
}

extension RequestEnd {
    /// Whether `bytes` hold a whole `agent-send` line.
    public static func isLineComplete(_ bytes: [UInt8]) -> Bool {
        bytes.contains(10)
    }
}
