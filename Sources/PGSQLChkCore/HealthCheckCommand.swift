#if canImport(Glibc)
import Glibc
#endif

/// The whole program: options, deadline, request, probe, answer.
public enum HealthCheckCommand {
    /// The part of the deadline kept for writing the answer.
    static let answerReserve = Milliseconds(10)

    /// Runs one check and returns the exit status.
    ///
    /// - Parameters:
    ///   - commandLine: argv, the program name first.
    ///   - environment: looks up one environment variable.
    public static func run(commandLine: [String], environment: (String) -> String?) -> Int32 {
        let start = Deadline.now()
        // A peer that hangs up early must give EPIPE, not kill us mid-answer.
        signal(SIGPIPE, SIG_IGN)
        let peer = CheckPeer()
        peer.silenceSharedStandardError()
        let diagnostics = Diagnostics.forThisProcess()

        var arguments = commandLine
        if !arguments.isEmpty { arguments.removeFirst() }
        let invocation: Invocation
        do {
            invocation = try CommandLineOptions.parse(arguments, environment: environment)
        } catch {
            return refuse(error.description, to: peer, agent: arguments.contains("--agent") || arguments.contains("-a"), diagnostics: diagnostics)
        }

        switch invocation {
        case .help where !peer.isSocket:
            return writeToTerminal(CommandLineOptions.helpText)
        case .version where !peer.isSocket:
            return writeToTerminal("pgsqlchk \(pgsqlchkVersion)\n")
        case .help, .version:
            return refuse("--help and --version are for terminals, not check connections", to: peer, agent: false, diagnostics: diagnostics)
        case .check(let configuration):
            let deadline = Deadline(after: configuration.timeout, from: start)
            // The probe gives up a little early, so that its own timeout answer,
            // which names the phase, is written before the backstop fires.
            let probeDeadline = deadline.earlier(by: min(answerReserve, Milliseconds(configuration.timeout.value / 10)))
            let check = Check(configuration: configuration, peer: peer, diagnostics: diagnostics, deadline: deadline, probeDeadline: probeDeadline)
            return configuration.agent ? check.answerAgent() : check.answerHTTP()
        }
    }

    /// Reports a usage error: by hand as text; to a check peer as a 503, or
    /// as `down #reason` on the agent's port, so a broken `server_args` shows
    /// up in HAProxy with a clear reason.
    private static func refuse(_ problem: String, to peer: CheckPeer, agent: Bool, diagnostics: Diagnostics) -> Int32 {
        diagnostics.report(problem)
        if !peer.isSocket {
            diagnostics.report("try \"pgsqlchk --help\" for more information")
        } else {
            let verdict = Verdict(status: .serviceUnavailable, body: "invalid pgsqlchk options", exitStatus: .usage)
            let answer = agent ? AgentReply.line(for: verdict, requirements: StandbyRequirements()) : nil
            send(answer.map { Array($0.utf8) } ?? HTTPResponse.render(verdict), to: peer, diagnostics: diagnostics)
        }
        return ExitCode.usage.rawValue
    }

    static func send(_ bytes: [UInt8], to peer: CheckPeer, diagnostics: Diagnostics) {
        Backstop.disarm()
        if let error = peer.write(bytes) {
            diagnostics.report("could not write the answer: \(String(cString: strerror(error)))")
        }
        peer.finish()
    }

    private static func writeToTerminal(_ text: String) -> Int32 {
        (CheckPeer().write(Array(text.utf8)) == nil ? ExitCode.success : .outputFailed).rawValue
    }
}

/// One check, from the request to the last byte written.
struct Check {
    let configuration: Configuration
    let peer: CheckPeer
    let diagnostics: Diagnostics
    let deadline: Deadline
    let probeDeadline: Deadline

    /// The HTTP check: read the request, probe, answer.
    func answerHTTP() -> Int32 {
        armBackstop(at: deadline, answering: HTTPResponse.render(Verdict(unavailable: ProbeFailure.backstopTimeout.reason)),
                     exitStatus: ExitCode.unavailable.rawValue)
        let head = peer.readRequest(before: probeDeadline, isComplete: RequestEnd.isHTTPHeadComplete)
        let request: CheckRequest
        do {
            request = try HTTPRequestParser.parse(head: head, fallback: configuration.request)
        } catch {
            diagnostics.report("refused request: \(error.reason)")
            let verdict = Verdict(refusing: error)
            HealthCheckCommand.send(HTTPResponse.render(verdict), to: peer, diagnostics: diagnostics)
            return verdict.exitStatus.rawValue
        }
        let depth = !peer.isSocket && configuration.output != .http ? .replication : request.depth
        let verdict = Verdict(for: request, outcome: probe(depth), maintenance: maintenance)
        // A standby that misses its limits is news; a role that simply does
        // not match the endpoint (/primary on a standby) is every check's answer.
        if let state = verdict.state, state.inRecovery, let unmet = request.requirements.unmet(by: state) {
            diagnostics.report("\(request.endpoint.rawValue): \(unmet)")
        }
        HealthCheckCommand.send(render(verdict, for: request), to: peer, diagnostics: diagnostics)
        return verdict.exitStatus.rawValue
    }

    /// The agent check: read the optional `agent-send` line, probe, reply.
    func answerAgent() -> Int32 {
        armBackstop(at: deadline, answering: Array(AgentReply.line(for: Verdict(unavailable: ProbeFailure.backstopTimeout.reason),
                                                                      requirements: configuration.requirements).utf8),
                     exitStatus: ExitCode.unavailable.rawValue)
        let sent = peer.readRequest(before: probeDeadline, isComplete: RequestEnd.isLineComplete)
        let requirements: StandbyRequirements
        do {
            requirements = try AgentReply.requirements(fromAgentSend: sent, defaults: configuration.requirements)
        } catch {
            diagnostics.report("refused agent-send: \(error.reason)")
            HealthCheckCommand.send(Array(AgentReply.line(refusing: error).utf8), to: peer, diagnostics: diagnostics)
            return ExitCode.refused.rawValue
        }
        let request = CheckRequest(endpoint: .readOnly, requirements: requirements)
        let verdict = Verdict(for: request, outcome: probe(request.depth), maintenance: maintenance)
        HealthCheckCommand.send(Array(AgentReply.line(for: verdict, requirements: requirements).utf8), to: peer, diagnostics: diagnostics)
        return verdict.exitStatus.rawValue
    }

    private func armBackstop(at deadline: Deadline, answering bytes: [UInt8], exitStatus: Int32) {
        if !Backstop.arm(at: deadline, answering: bytes, exitStatus: exitStatus) {
            diagnostics.report("could not arm the deadline's backstop: \(String(cString: strerror(errno)))")
        }
    }

    private func probe(_ depth: ProbeDepth) -> Result<NodeState, ProbeFailure> {
        let outcome = RoleProbe.run(configuration, depth: depth, before: probeDeadline)
        if case .failure(let failure) = outcome {
            diagnostics.report("\(failure.reason): \(failure.detail)")
        }
        return outcome
    }

    /// Whether the drain file exists. (C: `access(F_OK)`.)
    private var maintenance: Bool {
        access(configuration.maintenanceFile, F_OK) == 0
    }

    /// HTTP for a check connection; by hand, whichever `--output` asks for.
    private func render(_ verdict: Verdict, for request: CheckRequest) -> [UInt8] {
        switch peer.isSocket ? .http : configuration.output {
        case .http: HTTPResponse.render(verdict, json: request.wantsJSON, omitsBody: request.omitsBody)
        case .summary: Array((StatusDocument.summary(of: verdict) + "\n").utf8)
        case .json: Array((StatusDocument.json(of: verdict) + "\n").utf8)
        }
    }
}
