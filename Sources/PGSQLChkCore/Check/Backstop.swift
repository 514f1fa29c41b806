import CBackstop

/// The last guard of the deadline: a `SIGALRM` that answers and exits.
///
/// The poll loops honour the deadline wherever libpq lets them wait, but some
/// of libpq's work is synchronous (host name lookup, reading `.pgpass`). If
/// that outlasts the deadline, the timer fires, writes the timeout answer of
/// the phase the check was in, ends the connection as ``CheckSocket/finish()``
/// does and exits (the handler is C: see `CBackstop`). It is armed once with
/// the drain state and the mode and dialect, learns the request once it is
/// read, and renders then the answer of every phase the check may still
/// enter; entering a phase only selects one, so the answer is the one this
/// check would have given at that moment. The timer is disarmed before the
/// normal answer is written, so the asker never receives two.
struct Backstop {
    let alarm: any BackstopAlarm
    let mode: Mode
    let dialect: Dialect
    let drain: DrainState
    /// The phases whose answers are held, in the alarm's order.
    private(set) var phases: [CheckPhase] = []

    init(alarm: any BackstopAlarm, mode: Mode, dialect: Dialect, drain: DrainState) {
        self.alarm = alarm
        self.mode = mode
        self.dialect = dialect
        self.drain = drain
    }

    /// Holds the answers `question` gets in `phases`, the first selected, and
    /// arms the timer to write one and exit when `deadline` passes; false
    /// when the system refused (the poll loops then still keep the deadline
    /// wherever libpq lets them wait).
    mutating func arm(at deadline: Deadline, answering question: CheckRequest, in phases: [CheckPhase]) -> Bool {
        learn(question, phases: phases) && alarm.arm(at: deadline, exitStatus: .unavailable, finishesConnection: mode == .checkConnection)
    }

    /// Replaces the held answers with those `request` gets in `phases`, and
    /// selects the first; false when no memory was left, and the answers
    /// held before stay, with their phases.
    @discardableResult
    mutating func learn(_ request: CheckRequest, phases: [CheckPhase]) -> Bool {
        guard alarm.hold(BackstopAnswers(phases.map { answer(to: request, in: $0) })) else { return false }
        self.phases = phases
        return true
    }

    /// Selects the answer of `phase`; one the check did not expect to enter
    /// keeps the answer selected before.
    func enter(_ phase: CheckPhase) {
        guard let index = phases.firstIndex(of: phase) else { return }
        alarm.select(index)
    }

    /// What a timeout during `phase` answers `request`, drain file included.
    private func answer(to request: CheckRequest, in phase: CheckPhase) -> [UInt8] {
        mode.render(Verdict(for: request, outcome: .failure(.timedOut(phase: phase)), drain: drain), for: request, in: dialect)
    }
}

/// Answers end to end, as the C handler reads them without allocating.
struct BackstopAnswers {
    /// Every answer's bytes, one after the other.
    var bytes: [UInt8] = []
    /// Where each answer starts, and where the last one ends.
    var bounds: [Int] = [0]

    init(_ answers: [[UInt8]]) {
        for answer in answers {
            bytes += answer
            bounds.append(bytes.count)
        }
    }

    var count: Int { bounds.count - 1 }

    /// The answer at `index`.
    subscript(index: Int) -> ArraySlice<UInt8> { bytes[bounds[index]..<bounds[index + 1]] }
}

/// The timer that writes the selected answer when the deadline passes.
protocol BackstopAlarm {
    /// Replaces the answers the alarm may write, and selects the first.
    func hold(_ answers: BackstopAnswers) -> Bool
    /// Selects the answer written when it fires.
    func select(_ index: Int)
    /// Starts the timer; when `deadline` passes it writes the selected answer,
    /// finishes the connection if asked and exits with `exitStatus`.
    func arm(at deadline: Deadline, exitStatus: ExitCode, finishesConnection: Bool) -> Bool
    /// Stops the timer from ever answering; called before the real answer is written.
    func disarm()
}

/// The process's `SIGALRM`. (C: `sigaction`, `setitimer`.)
struct SignalAlarm: BackstopAlarm {
    func hold(_ answers: BackstopAnswers) -> Bool {
        answers.bytes.withUnsafeBufferPointer { bytes in
            answers.bounds.withUnsafeBufferPointer { bounds in
                pgsqlchk_backstop_hold(bytes.baseAddress, bounds.baseAddress, Int32(answers.count)) == 0
            }
        }
    }

    func select(_ index: Int) {
        pgsqlchk_backstop_select(Int32(index))
    }

    func arm(at deadline: Deadline, exitStatus: ExitCode, finishesConnection: Bool) -> Bool {
        pgsqlchk_backstop_arm(deadline.remaining().value, exitStatus.rawValue, finishesConnection ? 1 : 0) == 0
    }

    func disarm() {
        pgsqlchk_backstop_disarm()
    }
}
