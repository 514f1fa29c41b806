#if canImport(Glibc)
import Glibc
#endif

/// Where full error details go: never the HTTP answer.
///
/// Under xinetd stdin, stdout and stderr are all the check's socket, so a
/// line on stderr would land in front of or inside the response. Details go to
/// stderr only when it is a terminal (an admin running the check by hand, even
/// with stdout piped on); otherwise to syslog (facility daemon, ident pgsqlchk),
/// which systemd also collects into the journal.
enum Diagnostics: Sendable {
    case standardError
    case syslog

    /// The channel for this process: stderr when it is a terminal, else syslog.
    static func forThisProcess() -> Diagnostics {
        isatty(STDERR_FILENO) == 1 ? .standardError : .syslog
    }

    /// Reports one line, passwords masked (``Redaction``).
    /// (C: `syslog(LOG_DAEMON | LOG_WARNING, ...)` or `write(2, ...)`.)
    func report(_ unredacted: String) {
        let line = Redaction.redactingPasswords(unredacted)
        switch self {
        case .standardError:
            try? POSIX.writeAll(Array("pgsqlchk: \(line)\n".utf8), to: STDERR_FILENO)
        case .syslog:
            openlog(syslogIdentity, LOG_PID, LOG_DAEMON)
            line.withCString { message in
                withVaList([message]) { vsyslog(LOG_WARNING, "%s", $0) }
            }
        }
    }
}

/// `openlog` keeps the pointer it is given, so the identity must outlive every call.
private nonisolated(unsafe) let syslogIdentity = strdup("pgsqlchk")
