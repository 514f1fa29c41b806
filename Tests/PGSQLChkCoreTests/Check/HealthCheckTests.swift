#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PGSQLChkCore

/// A connection that hands over one request (or none, as an asker that stays
/// silent until the wait ends) and keeps what is sent.
private final class ScriptedConnection: CheckConnection {
    let request: String?
    var waitedUntil: Deadline?
    /// What the backstop held while the request was read.
    var heldWhileReading: String?
    var onRead: () -> Void = {}
    var sent: [UInt8] = []
    var finished = false

    init(request: String?) { self.request = request }

    func readRequest(before stop: Deadline, isComplete: ([UInt8]) -> Bool) -> ReceivedRequest {
        waitedUntil = stop
        onRead()
        guard let request else { return ReceivedRequest(bytes: [], end: .waitEnded) }
        return ReceivedRequest(bytes: Array(request.utf8), end: .complete)
    }

    func askerAddress() -> String? { "192.0.2.10" }

    func send(_ bytes: [UInt8], finishing: Bool) throws(Errno) {
        sent += bytes
        finished = finishing
    }

    var answer: String { String(decoding: sent, as: UTF8.self) }
}

/// A backstop timer that only remembers what it would write.
private final class RecordingAlarm: BackstopAlarm {
    var answers = BackstopAnswers([])
    var selected = 0
    var armed = false
    var disarmed = false

    /// The answer the backstop would write now.
    var held: String { String(decoding: answers[selected], as: UTF8.self) }

    func hold(_ answers: BackstopAnswers) -> Bool {
        self.answers = answers
        selected = 0
        return true
    }

    func select(_ index: Int) { selected = index }

    func arm(at deadline: Deadline, exitStatus: ExitCode, finishesConnection: Bool) -> Bool {
        armed = true
        return true
    }

    func disarm() { disarmed = true }
}

/// Probers with answers given in advance; they count the probes asked of them.
private final class ScriptedProbers: CheckProbers {
    var node: Result<NodeState, ProbeFailure>
    var peers: [PeerReport] = []
    /// A fresh cache entry: given, the probe is never called.
    var cached: ResultCache.Answer?
    var probes = 0
    /// Hears of each phase the probe enters, after the backstop did.
    var onPhase: (CheckPhase) -> Void = { _ in }

    init(node: Result<NodeState, ProbeFailure>) { self.node = node }

    func probeNode(_ settings: ConnectionSettings, depth: ProbeDepth, maxconn: MaxconnRequest?, position: Bool,
                   before deadline: Deadline, entering: (CheckPhase) -> Void) -> Result<NodeState, ProbeFailure> {
        probes += 1
        for phase in [CheckPhase.resolving, .connecting, .loggingIn, .querying] {
            entering(phase)
            onPhase(phase)
        }
        return node
    }

    func askPeers(_ peers: [PeerAddress], settings: ConnectionSettings, asking statement: Statement, before deadline: Deadline) -> [PeerReport] {
        self.peers
    }

    func outcome(through cache: ProbeCache, depth: ProbeDepth, maxconn: MaxconnRequest?, before deadline: Deadline,
                 probe: () -> Result<NodeState, ProbeFailure>) -> ResultCache.Answer {
        cached ?? ResultCache.Answer(outcome: probe(), age: nil, probeDuration: Milliseconds(2))
    }
}

@Suite("HealthCheck: the pipeline's decisions, without a socket or a server")
struct HealthCheckTests {
    static let primary = NodeState(inRecovery: false, timeline: 2)

    private static func check(_ configuration: Configuration = Configuration(), mode: Mode = .checkConnection,
                              connection: ScriptedConnection, alarm: RecordingAlarm = RecordingAlarm(),
                              probers: ScriptedProbers) -> HealthCheck {
        var configuration = configuration
        configuration.maintenanceFile = "/nonexistent/pgsqlchk-maintenance"
        return HealthCheck(configuration: configuration, mode: mode, diagnostics: .standardError,
                           deadline: Deadline(after: configuration.timeout), connection: connection, alarm: alarm, probers: probers)
    }

    @Test("a request that does not arrive before the wait ends gets the answer to the configured question")
    func lateRequest() {
        var configuration = Configuration()
        configuration.question = CheckRequest(endpoint: .replica)
        let connection = ScriptedConnection(request: nil)
        let check = Self.check(configuration, connection: connection, probers: ScriptedProbers(node: .success(Self.primary)))
        let status = check.run()
        #expect(connection.waitedUntil == check.requestWaitEnd)
        #expect(connection.answer.hasPrefix("HTTP/1.1 503 not a standby: primary\r\n"))
        #expect(status == ExitCode.unavailable.rawValue)
        #expect(connection.finished)
    }

    @Test("a request that does not parse is refused with a 400, never probed, exit status 4")
    func refusedRequest() {
        let connection = ScriptedConnection(request: "GET /primary\r\n\r\n")
        let alarm = RecordingAlarm()
        let probers = ScriptedProbers(node: .success(Self.primary))
        let status = Self.check(connection: connection, alarm: alarm, probers: probers).run()
        #expect(connection.answer.hasPrefix("HTTP/1.1 400 "))
        #expect(status == ExitCode.refused.rawValue)
        #expect(probers.probes == 0)
        #expect(alarm.disarmed)
    }

    @Test("a fresh cache entry answers without a probe, and says how old it is")
    func cacheHit() {
        let connection = ScriptedConnection(request: "GET /primary HTTP/1.1\r\n\r\n")
        let probers = ScriptedProbers(node: .failure(.noResponse(detail: "never asked")))
        probers.cached = ResultCache.Answer(outcome: .success(Self.primary), age: Milliseconds(120), probeDuration: Milliseconds(3))
        let status = Self.check(connection: connection, probers: probers).run()
        #expect(probers.probes == 0)
        #expect(connection.answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(connection.answer.contains("X-PGSQLChk-Age: 120\r\n"))
        #expect(status == ExitCode.success.rawValue)
    }

    @Test("the guard refuses a primary whose peer is primary on a newer timeline: 503 with the guard's reason")
    func guardRefuses() throws {
        var template = Array("/tmp/pgsqlchk-pipeline-XXXXXX".utf8CString)
        let directory = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer {
            POSIX.names(inDirectoryAt: directory).forEach { unlink(directory + "/" + $0) }
            rmdir(directory)
        }
        let local = NodePosition(inRecovery: false, timeline: 2, systemIdentifier: "7714142357752938336", startedAt: "1", port: "5432")
        let newer = NodePosition(inRecovery: false, timeline: 3, systemIdentifier: "7714142357752938336", startedAt: "2", port: "5432")
        var configuration = Configuration()
        configuration.peers = [PeerAddress(host: "db1", port: "5432"), PeerAddress(host: "db2", port: "5432")]
        configuration.stateDirectory = directory
        var state = Self.primary
        state.position = local
        let probers = ScriptedProbers(node: .success(state))
        probers.peers = [PeerReport(peer: PeerAddress(host: "db1", port: "5432"), outcome: .success(local)),
                         PeerReport(peer: PeerAddress(host: "db2", port: "5432"), outcome: .success(newer))]
        let connection = ScriptedConnection(request: "GET /primary HTTP/1.1\r\n\r\n")
        let status = Self.check(configuration, connection: connection, probers: probers).run()
        let reason = "stale primary: db2:5432 is primary on timeline 3, this node is primary on timeline 2"
        #expect(connection.answer.hasPrefix("HTTP/1.1 503 \(reason)\r\n"))
        #expect(connection.answer.hasSuffix("\r\n\r\n\(reason)\n"))
        #expect(status == ExitCode.unavailable.rawValue)
    }

    @Test("the backstop holds the configured question's answer while the request is read, then the request's answer in each phase", arguments: [
        (Dialect.http, "HEAD / HTTP/1.1\r\n\r\n", "HTTP/1.1 503 timeout while waiting for the request\r\n"),
        (.agent, "maxconn=only\n", "down #timeout while waiting for the request\n"),
    ])
    func backstopAnswers(dialect: Dialect, request: String, whileReading: String) {
        var configuration = Configuration()
        configuration.dialect = dialect
        let connection = ScriptedConnection(request: request)
        let alarm = RecordingAlarm()
        connection.onRead = { connection.heldWhileReading = alarm.held }
        let probers = ScriptedProbers(node: .success(Self.primary))
        var held: [CheckPhase: String] = [:]
        probers.onPhase = { phase in held[phase] = alarm.held }
        _ = Self.check(configuration, connection: connection, alarm: alarm, probers: probers).run()
        #expect(alarm.armed && alarm.disarmed)
        #expect(connection.heldWhileReading?.hasPrefix(whileReading) == true)
        for phase in [CheckPhase.resolving, .connecting, .loggingIn, .querying] {
            let answer = held[phase] ?? ""
            switch dialect {
            case .http:
                // HEAD: the phase in the status line, and no body.
                #expect(answer.hasPrefix("HTTP/1.1 503 timeout while \(phase.rawValue)\r\n") && answer.hasSuffix("\r\n\r\n"), "\(phase)")
            case .agent:
                // maxconn=only never moves the server, not even on a timeout.
                #expect(answer == "\n", "\(phase)")
            }
        }
    }

    @Test("by hand, the backstop holds the drain file's answer in every phase")
    func backstopDrained() {
        let alarm = RecordingAlarm()
        let probers = ScriptedProbers(node: .success(Self.primary))
        var held: [String] = []
        probers.onPhase = { _ in held.append(alarm.held) }
        var configuration = Configuration()
        // A directory drains as a file does (DrainState).
        configuration.maintenanceFile = "/"
        let check = HealthCheck(configuration: configuration, mode: .byHand(.http), diagnostics: .standardError,
                                deadline: Deadline(after: configuration.timeout), connection: ScriptedConnection(request: nil),
                                alarm: alarm, probers: probers)
        #expect(check.run() == ExitCode.maintenance.rawValue)
        #expect(held.count == 4)
        #expect(held.allSatisfy { $0.hasPrefix("HTTP/1.1 404 maintenance\r\n") })
    }
}
