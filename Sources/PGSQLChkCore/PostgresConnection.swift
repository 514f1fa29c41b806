import CLibPQ
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
public struct PostgresConnection: ~Copyable {
    private let connection: OpaquePointer

    private init(owning connection: OpaquePointer) {
        self.connection = connection
    }

    deinit {
        PQfinish(connection)
    }

    /// Opens a connection with `settings`, logging in before `deadline`.
    ///
    /// (libpq: `PQconnectStartParams` with `expand_dbname`, then `PQconnectPoll`.)
    public static func connect(_ settings: ConnectionSettings, before deadline: Deadline) throws(ProbeFailure) -> PostgresConnection {
        guard let raw = settings.withLibpqParameters({ PQconnectStartParams($0, $1, 1) }) else {
            throw .misconfigured(detail: "libpq could not allocate a connection")
        }
        let connection = PostgresConnection(owning: raw)
        try connection.finishConnecting(before: deadline)
        return connection
    }

    private func finishConnecting(before deadline: Deadline) throws(ProbeFailure) {
        // Verbose errors carry the server's SQLSTATE, which classification needs.
        PQsetErrorVerbosity(connection, PQERRORS_VERBOSE)
        // libpq prints server notices (a collation version mismatch at login,
        // say) on stderr, which may be the check's socket: report them instead.
        PQsetNoticeProcessor(connection, { _, message in
            guard let message else { return }
            Diagnostics.forThisProcess().report("server notice: " + ConnectionFailureClassifier.trimmed(String(cString: message)))
        }, nil)
        guard PQstatus(connection) != CONNECTION_BAD else { throw connectionFailure() }
        var state = PGRES_POLLING_WRITING
        while true {
            switch state {
            case PGRES_POLLING_OK:
                guard PQsetnonblocking(connection, 1) == 0 else { throw .queryFailed(detail: errorMessage) }
                return
            case PGRES_POLLING_FAILED:
                throw connectionFailure()
            case PGRES_POLLING_READING:
                try waitForSocket(Int16(POLLIN), before: deadline, while: loginPhase)
            default:
                try waitForSocket(Int16(POLLOUT), before: deadline, while: loginPhase)
            }
            state = PQconnectPoll(connection)
        }
    }

    /// Sends `sql` and returns the first row of its result, NULLs as nil.
    ///
    /// (libpq: `PQsendQuery`, `PQflush`, `PQconsumeInput`, `PQgetResult`.)
    public func firstRow(of sql: String, before deadline: Deadline) throws(ProbeFailure) -> [String?] {
        let phase = Self.queryPhase
        guard PQsendQuery(connection, sql) == 1 else { throw .queryFailed(detail: errorMessage) }
        // libpq's contract for a non-blocking send: wait for either direction,
        // and take in what the server sends while we still have bytes to flush.
        while true {
            let flushed = PQflush(connection)
            if flushed == 0 { break }
            guard flushed > 0 else { throw .queryFailed(detail: errorMessage) }
            let ready = try waitForSocket(Int16(POLLIN | POLLOUT), before: deadline, while: phase)
            if ready & Int16(POLLIN) != 0, PQconsumeInput(connection) != 1 {
                throw .queryFailed(detail: errorMessage)
            }
        }
        var row: [String?]?
        var failure: ProbeFailure?
        while true {
            while PQisBusy(connection) != 0 {
                try waitForSocket(Int16(POLLIN), before: deadline, while: phase)
                guard PQconsumeInput(connection) == 1 else { throw .queryFailed(detail: errorMessage) }
            }
            guard let result = PQgetResult(connection) else { break }
            defer { PQclear(result) }
            if PQresultStatus(result) != PGRES_TUPLES_OK {
                failure = failure ?? .queryFailed(detail: ConnectionFailureClassifier.trimmed(String(cString: PQresultErrorMessage(result))))
            } else if row == nil, PQntuples(result) > 0 {
                row = (0..<PQnfields(result)).map { column in
                    PQgetisnull(result, 0, column) != 0 ? nil : String(cString: PQgetvalue(result, 0, column))
                }
            }
        }
        if let failure { throw failure }
        guard let row else { throw .queryFailed(detail: "the role query returned no row") }
        return row
    }

    /// The server's version as it announced it at login, without the
    /// packager's suffix: `15.18` (libpq: `PQparameterStatus`).
    public var serverVersion: String {
        guard let announced = PQparameterStatus(connection, "server_version") else { return "" }
        return String(String(cString: announced).prefix { $0 != " " })
    }

    private static let queryPhase = "querying"

    private var errorMessage: String {
        ConnectionFailureClassifier.trimmed(String(cString: PQerrorMessage(connection)))
    }

    private func connectionFailure() -> ProbeFailure {
        ConnectionFailureClassifier.classify(
            message: String(cString: PQerrorMessage(connection)),
            needsPassword: PQconnectionNeedsPassword(connection) != 0
        )
    }

    private var loginPhase: String {
        PQstatus(connection) == CONNECTION_STARTED ? "connecting" : "logging in"
    }

    /// Waits until libpq's socket is ready for `events`; returns `revents`.
    @discardableResult
    private func waitForSocket(_ events: Int16, before deadline: Deadline, while phase: String) throws(ProbeFailure) -> Int16 {
        let socket = PQsocket(connection)
        guard socket >= 0 else { throw .noResponse(detail: "libpq has no socket: \(errorMessage)") }
        switch deadline.wait(for: events, on: socket) {
        case .ready(let revents):
            return revents
        case .timedOut:
            throw .timedOut(phase: phase)
        case .failed(let error):
            let detail = "poll failed while \(phase): errno \(error)"
            throw phase == Self.queryPhase ? .queryFailed(detail: detail) : .noResponse(detail: detail)
        }
    }
}
