import CBackstop

/// The last guard of the deadline: a `SIGALRM` that answers and exits.
///
/// The poll loops honour the deadline wherever libpq lets them wait, but some
/// of libpq's work is synchronous (host name lookup, reading `.pgpass`). If
/// that outlasts the deadline, the timer fires, writes the answer last
/// given to it, ends the connection as ``CheckPeer/finish()`` does and exits
/// (the handler is C: see `CBackstop`). The answer is rendered in advance and
/// replaced as the check learns more (the drain file, the request, the
/// phase), so it is the answer this check would have given at that moment.
/// ``disarm()`` blocks the signal before the normal answer is written, so
/// the peer never receives two answers.
enum Backstop {
    /// Arms the timer to write `answer` and exit when `deadline` passes; false
    /// when the system refused (the poll loops then still keep the deadline
    /// wherever libpq lets them wait). (C: `sigaction`, `setitimer`.)
    static func arm(at deadline: Deadline, answering answer: [UInt8], exitStatus: ExitCode, finishesConnection: Bool) -> Bool {
        answer.withUnsafeBufferPointer { buffer in
            pgsqlchk_backstop_arm(buffer.baseAddress, buffer.count, exitStatus.rawValue, deadline.remaining().value,
                                  finishesConnection ? 1 : 0) == 0
        }
    }

    /// Replaces the answer the armed timer would give.
    @discardableResult
    static func update(answering answer: [UInt8], exitStatus: ExitCode) -> Bool {
        answer.withUnsafeBufferPointer { buffer in
            pgsqlchk_backstop_set_answer(buffer.baseAddress, buffer.count, exitStatus.rawValue) == 0
        }
    }

    /// Stops the timer from ever answering; call before writing the real answer.
    static func disarm() {
        pgsqlchk_backstop_disarm()
    }
}
