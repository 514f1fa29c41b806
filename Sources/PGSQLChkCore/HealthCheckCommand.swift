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
        let diagnostics = Diagnostics.forThisProcess()
        let peer = CheckPeer()

        var arguments = commandLine
        if !arguments.isEmpty { arguments.removeFirst() }
        let invocation: Invocation
        do {
            invocation = try CommandLineOptions.parse(arguments, environment: environment)
        } catch {
            return refuse(error.description, to: peer, diagnostics: diagnostics)
        }

        switch invocation {
        case .help where !peer.isSocket:
            return print(CommandLineOptions.helpText)
        case .version where !peer.isSocket:
            return print("pgsqlchk \(pgsqlchkVersion)\n")
        case .help, .version:
            return refuse("--help and --version are for terminals, not check connections", to: peer, diagnostics: diagnostics)
        case .check(let configuration):
            let deadline = Deadline(after: configuration.timeout, from: start)
            Backstop.arm(at: deadline, answering: Verdict(unavailable: ProbeFailure.timedOut(phase: "waiting for libpq").reason))
            // The probe gives up a little early, so that its own timeout answer,
            // which names the phase, is written before the backstop fires.
            let probeDeadline = deadline.earlier(by: min(answerReserve, Milliseconds(configuration.timeout.value / 10)))
            _ = peer.readRequestHead(before: probeDeadline)
            let outcome = RoleProbe.run(configuration, before: probeDeadline)
            if case .failure(let failure) = outcome {
                diagnostics.report("\(failure.reason): \(failure.detail)")
            }
            let verdict = Verdict(outcome)
            answer(verdict, to: peer, diagnostics: diagnostics)
            return verdict.exitStatus
        }
    }

    /// Reports a usage error: by hand as text, to a check peer as a 503, so a
    /// broken `server_args` shows up in HAProxy as a clear reason.
    private static func refuse(_ problem: String, to peer: CheckPeer, diagnostics: Diagnostics) -> Int32 {
        diagnostics.report(problem)
        if !peer.isSocket {
            diagnostics.report("try \"pgsqlchk --help\" for more information")
        } else {
            let verdict = Verdict(status: .serviceUnavailable, body: "invalid pgsqlchk options", exitStatus: Verdict.usageExitStatus)
            answer(verdict, to: peer, diagnostics: diagnostics)
        }
        return Verdict.usageExitStatus
    }

    private static func answer(_ verdict: Verdict, to peer: CheckPeer, diagnostics: Diagnostics) {
        Backstop.disarm()
        if let error = peer.write(HTTPResponse.render(verdict)) {
            diagnostics.report("could not write the answer: \(String(cString: strerror(error)))")
        }
        peer.finish()
    }

    private static func print(_ text: String) -> Int32 {
        CheckPeer().write(Array(text.utf8)) == nil ? 0 : 1
    }
}
