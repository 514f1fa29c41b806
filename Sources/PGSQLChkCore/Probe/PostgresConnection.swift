import CLibPQ
import CLibPQTable
#if canImport(Glibc)
import Glibc
#endif

/// The only owner of a libpq connection; `deinit` closes it (libpq: `PQfinish`).
///
/// Every step runs on libpq's non-blocking API and waits with `poll()`
/// against the check's ``Deadline``, because libpq's own `connect_timeout`
/// counts whole seconds, restarts per host and address, and does not cover
/// queries at all: a server that accepts the login and never answers would
/// hang a checker that relied on it.
///
/// Every libpq call goes through ``LibPQ``, the table loaded on the first
/// connection, so that only a check that probes loads libpq.
struct PostgresConnection: ~Copyable {
    private let connection: OpaquePointer
    private let pq: UnsafePointer<LibPQ>

    private init(owning connection: OpaquePointer, pq: UnsafePointer<LibPQ>) {
        self.connection = connection
        self.pq = pq
    }

    deinit {
        pq.pointee.PQfinish(connection)
    }

    /// Opens a connection with `settings`, logging in before `deadline`;
    /// `entering` hears of each phase as it starts.
    ///
    /// (libpq: `PQconnectStartParams` with `expand_dbname`, then `PQconnectPoll`.)
    static func connect(_ settings: ConnectionSettings, before deadline: Deadline,
                        entering: (CheckPhase) -> Void) throws(ProbeFailure) -> PostgresConnection {
        entering(.resolving)
        let connection = try start(settings)
        try connection.finishConnecting(before: deadline, entering: entering)
        return connection
    }

    /// Starts a connection without waiting for it: the caller waits for
    /// ``socket`` to be writable, then calls ``continueConnecting()`` until it
    /// returns nil. ``connect(_:before:entering:)`` does that for one
    /// connection; ``PeerProbe`` for several at once.
    ///
    /// (libpq: `PQconnectStartParams` with `expand_dbname`.)
    static func start(_ settings: ConnectionSettings) throws(ProbeFailure) -> PostgresConnection {
        let pq = try LibPQ.load()
        guard let raw = settings.withLibpqParameters({ pq.pointee.PQconnectStartParams($0, $1, 1) }) else {
            throw .misconfigured(detail: "libpq could not allocate a connection")
        }
        let connection = PostgresConnection(owning: raw, pq: pq)
        // Verbose errors carry the server's SQLSTATE, which classification needs.
        _ = pq.pointee.PQsetErrorVerbosity(raw, PQERRORS_VERBOSE)
        // libpq prints server notices (a collation version mismatch at login,
        // say) on stderr, which may be the check's socket: report them instead.
        _ = pq.pointee.PQsetNoticeProcessor(raw, { _, message in
            guard let message else { return }
            Diagnostics.forThisProcess().report("server notice: " + Text.oneLine(String(cString: message)))
        }, nil)
        guard pq.pointee.PQstatus(raw) != CONNECTION_BAD else { throw connection.connectionFailure() }
        return connection
    }

    /// One step of the login: the `poll()` events to wait for before the
    /// next step, or nil once logged in.
    ///
    /// (libpq: `PQconnectPoll`.)
    func continueConnecting() throws(ProbeFailure) -> Int16? {
        switch pq.pointee.PQconnectPoll(connection) {
        case PGRES_POLLING_OK:
            return nil
        case PGRES_POLLING_FAILED:
            throw connectionFailure()
        case PGRES_POLLING_READING:
            return Int16(POLLIN)
        default:
            return Int16(POLLOUT)
        }
    }

    private func finishConnecting(before deadline: Deadline, entering: (CheckPhase) -> Void) throws(ProbeFailure) {
        var events: Int16? = Int16(POLLOUT)
        var phase: CheckPhase?
        while let waitFor = events {
            let current = loginPhase
            if current != phase {
                phase = current
                entering(current)
            }
            try waitForSocket(waitFor, before: deadline, while: current)
            events = try continueConnecting()
        }
    }

    /// Sends `statement`, with `parameters` as its `$1`, `$2`... (text, nil as
    /// NULL), and returns the first row of its result, NULLs as nil.
    ///
    /// (libpq: `PQsendQuery` or `PQsendQueryParams`, `PQflush`,
    /// `PQconsumeInput`, `PQgetResult`.)
    func firstRow(of statement: Statement, parameters: [String?] = [], before deadline: Deadline) throws(ProbeFailure) -> QueryRow {
        let phase = CheckPhase.querying
        try send(statement, parameters: parameters)
        var readable = false
        while try !flush(readable: readable, answering: statement) {
            let ready = try waitForSocket(Int16(POLLIN | POLLOUT), before: deadline, while: phase, answering: statement)
            readable = ready & Int16(POLLIN) != 0
        }
        var results = QueryResults(statement: statement)
        while !takeResults(into: &results) {
            try waitForSocket(Int16(POLLIN), before: deadline, while: phase, answering: statement)
            try receive(answering: statement)
        }
        return try results.firstRow()
    }

    /// Queues `statement` for sending, with its parameters, if any, all as
    /// text (the server infers their types), so that no value is ever
    /// spliced into SQL. The connection is made non-blocking first, which
    /// libpq allows only once nothing is left to flush: once logged in, and
    /// between statements. (libpq: `PQsetnonblocking`, `PQsendQuery` or
    /// `PQsendQueryParams`.)
    func send(_ statement: Statement, parameters: [String?] = []) throws(ProbeFailure) {
        guard pq.pointee.PQsetnonblocking(connection, 1) == 0 else { throw .queryFailed(statement, detail: errorMessage) }
        guard !parameters.isEmpty else {
            guard pq.pointee.PQsendQuery(connection, statement.sql) == 1 else { throw .queryFailed(statement, detail: errorMessage) }
            return
        }
        var values = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { values.forEach { free($0) } }
        let sent = values.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                pq.pointee.PQsendQueryParams(connection, statement.sql, Int32(buffer.count), nil, $0, nil, nil, 0)
            }
        }
        guard sent == 1 else { throw .queryFailed(statement, detail: errorMessage) }
    }

    /// Sends what is queued; true once all of it is sent. libpq's contract
    /// for a non-blocking send: wait for either direction, and take in what
    /// the server sends (`readable`) while bytes remain to flush.
    /// (libpq: `PQconsumeInput`, `PQflush`.)
    func flush(readable: Bool, answering statement: Statement) throws(ProbeFailure) -> Bool {
        if readable { try receive(answering: statement) }
        let flushed = pq.pointee.PQflush(connection)
        guard flushed >= 0 else { throw .queryFailed(statement, detail: errorMessage) }
        return flushed == 0
    }

    /// Takes in what the server sent. (libpq: `PQconsumeInput`.)
    func receive(answering statement: Statement) throws(ProbeFailure) {
        guard pq.pointee.PQconsumeInput(connection) == 1 else { throw .queryFailed(statement, detail: errorMessage) }
    }

    /// Takes every result libpq holds complete into `results`; true once the
    /// last has been taken. (libpq: `PQisBusy`, `PQgetResult`.)
    func takeResults(into results: inout QueryResults) -> Bool {
        while pq.pointee.PQisBusy(connection) == 0 {
            guard let result = pq.pointee.PQgetResult(connection) else { return true }
            defer { pq.pointee.PQclear(result) }
            if pq.pointee.PQresultStatus(result) != PGRES_TUPLES_OK {
                results.failure = results.failure ?? .queryFailed(results.statement, detail: Text.oneLine(Self.text(pq.pointee.PQresultErrorMessage(result))))
            } else if results.row == nil, pq.pointee.PQntuples(result) > 0 {
                let columns = 0..<pq.pointee.PQnfields(result)
                results.row = QueryRow(
                    statement: results.statement,
                    columns: columns.map { Self.text(pq.pointee.PQfname(result, $0)) },
                    values: columns.map { pq.pointee.PQgetisnull(result, 0, $0) != 0 ? nil : Self.text(pq.pointee.PQgetvalue(result, 0, $0)) }
                )
            }
        }
        return false
    }

    /// The descriptor libpq talks on, for `poll()`; it may change while
    /// connecting (libpq: `PQsocket`).
    var socket: Int32 { pq.pointee.PQsocket(connection) }

    /// Whether the login is still waiting for the connection itself, rather
    /// than authenticating.
    var loginPhase: CheckPhase {
        pq.pointee.PQstatus(connection) == CONNECTION_STARTED ? .connecting : .loggingIn
    }

    /// The server's version as it announced it at login, without the
    /// packager's suffix: `15.18` (libpq: `PQparameterStatus`).
    var serverVersion: String {
        guard let announced = pq.pointee.PQparameterStatus(connection, "server_version") else { return "" }
        return String(String(cString: announced).prefix { $0 != " " })
    }

    /// A C string from libpq; the table's function types cannot say it is never NULL.
    private static func text(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
        pointer.map { String(cString: $0) } ?? ""
    }

    private var errorMessage: String {
        Text.oneLine(Self.text(pq.pointee.PQerrorMessage(connection)))
    }

    private func connectionFailure() -> ProbeFailure {
        ConnectionFailureClassifier.classify(
            message: Self.text(pq.pointee.PQerrorMessage(connection)),
            needsPassword: pq.pointee.PQconnectionNeedsPassword(connection) != 0
        )
    }

    /// Waits until libpq's socket is ready for `events`; returns `revents`.
    /// A failed `poll()` fails `statement` when one is on its way, else the
    /// connection.
    @discardableResult
    private func waitForSocket(_ events: Int16, before deadline: Deadline, while phase: CheckPhase,
                               answering statement: Statement? = nil) throws(ProbeFailure) -> Int16 {
        let socket = pq.pointee.PQsocket(connection)
        guard socket >= 0 else { throw .noResponse(detail: "libpq has no socket: \(errorMessage)") }
        switch deadline.wait(for: events, on: socket) {
        case .ready(let revents):
            return revents
        case .timedOut:
            throw .timedOut(phase: phase)
        case .failed(let error):
            let detail = "poll failed while \(phase.rawValue): errno \(error)"
            throw statement.map { .queryFailed($0, detail: detail) } ?? .noResponse(detail: detail)
        }
    }
}

/// What the results of one statement came to, gathered as libpq completes them.
struct QueryResults {
    /// The statement they answer.
    let statement: Statement
    /// The first row of the first result that had one.
    var row: QueryRow?
    /// The first error a result reported.
    var failure: ProbeFailure?

    /// The row, or why there is none.
    func firstRow() throws(ProbeFailure) -> QueryRow {
        if let failure { throw failure }
        guard let row else { throw .queryFailed(statement, detail: "the statement returned no row") }
        return row
    }
}

/// One row of a result, read by column name so that a column added to a
/// statement cannot shift the others.
struct QueryRow: Equatable, Sendable {
    /// The statement it answers: what a failure to read it names.
    let statement: Statement
    /// The column names, as the statement gives them (`AS name`).
    let columns: [String]
    /// The values, NULL as nil, in the order of ``columns``.
    let values: [String?]

    /// The value of `column`; a query failure when the row has no such column.
    func value(of column: String) throws(ProbeFailure) -> String? {
        guard let index = columns.firstIndex(of: column), index < values.count else {
            throw .queryFailed(statement, detail: "the statement returned no column \(column)")
        }
        return values[index]
    }
}
