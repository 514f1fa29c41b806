import CBackstop

/// The last guard of the deadline: a `SIGALRM` that answers and exits.
///
/// The poll loops honour the deadline wherever libpq lets them wait, but some
/// of libpq's work is synchronous (host name lookup, reading `.pgpass`). If
/// that outlasts the deadline, the timer fires, writes an answer rendered in
/// advance and ends the process (the handler is C: see `CBackstop`).
/// ``disarm()`` blocks the signal before the normal answer is written, so the
/// peer never receives two answers.
public enum Backstop {
    /// Arms the timer to write `bytes` and exit with `exitStatus` when
    /// `deadline` passes; false when the system refused (the poll loops then
    /// still keep the deadline wherever libpq lets them wait).
    /// (C: `sigaction`, `setitimer`.)
    @discardableResult
    public static func arm(at deadline: Deadline, answering bytes: [UInt8], exitStatus: Int32) -> Bool {
        bytes.withUnsafeBufferPointer { buffer in
            pgsqlchk_backstop_arm(buffer.baseAddress, buffer.count, exitStatus, deadline.remaining().value) == 0
        }
    }

    /// Stops the timer from ever answering; call before writing the real answer.
    public static func disarm() {
        pgsqlchk_backstop_disarm()
    }
}
