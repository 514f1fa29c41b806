#if canImport(Glibc)
import Glibc
#endif

/// The last guard of the deadline: a `SIGALRM` that answers 503 and exits.
///
/// The poll loops honour the deadline wherever libpq lets them wait, but some
/// of libpq's work is synchronous (host name lookup, reading `.pgpass`). If
/// that outlasts the deadline, the timer fires, writes a response rendered in
/// advance (`write` and `_exit` are async-signal-safe; nothing else runs in the
/// handler) and ends the process. ``disarm()`` blocks the signal before the
/// normal answer is written, so the peer never receives two responses.
public enum Backstop {
    /// Arms the timer to write `bytes` and exit with `exitStatus` when
    /// `deadline` passes. (C: `sigaction`, `setitimer`.)
    public static func arm(at deadline: Deadline, answering bytes: [UInt8], exitStatus: Int32) {
        let response = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count)
        _ = response.initialize(from: bytes)
        backstopResponse = UnsafeBufferPointer(response)
        backstopExitStatus = exitStatus

        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            if let response = backstopResponse {
                _ = write(STDOUT_FILENO, response.baseAddress, response.count)
            }
            _exit(backstopExitStatus)
        }
        sigemptyset(&action.sa_mask)
        sigaction(SIGALRM, &action, nil)
        // A parent may have left SIGALRM blocked; the backstop must not depend on it.
        var alarmOnly = sigset_t()
        sigemptyset(&alarmOnly)
        sigaddset(&alarmOnly, SIGALRM)
        sigprocmask(SIG_UNBLOCK, &alarmOnly, nil)

        let remaining = max(deadline.remaining().value, 1)
        var timer = itimerval(
            it_interval: timeval(tv_sec: 0, tv_usec: 0),
            it_value: timeval(tv_sec: remaining / 1000, tv_usec: (remaining % 1000) * 1000)
        )
        setitimer(__itimer_which_t(ITIMER_REAL.rawValue), &timer, nil)
    }

    /// Stops the timer from ever answering; call before writing the real answer.
    public static func disarm() {
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGALRM)
        sigprocmask(SIG_BLOCK, &blocked, nil)
        var stopped = itimerval()
        setitimer(__itimer_which_t(ITIMER_REAL.rawValue), &stopped, nil)
    }
}

// Read by the signal handler, so they are set before the timer is armed and
// never change afterwards.
private nonisolated(unsafe) var backstopResponse: UnsafeBufferPointer<UInt8>?
private nonisolated(unsafe) var backstopExitStatus: Int32 = 2
