#if canImport(Glibc)
import Glibc
#endif

/// The whole program: options, then one ``HealthCheck``.
public enum HealthCheckCommand {
    /// Runs one check and returns the exit status.
    ///
    /// - Parameters:
    ///   - commandLine: argv, the program name first.
    ///   - environment: looks up one environment variable.
    public static func run(commandLine: [String], environment: (String) -> String?) -> Int32 {
        let start = Deadline.now()
        // A peer that hangs up early must give EPIPE, not kill us mid-answer.
        signal(SIGPIPE, SIG_IGN)
        let serving = CheckSocket.isServing()
        if serving { CheckSocket.silenceSharedStandardError() }
        let diagnostics = Diagnostics.forThisProcess()

        let arguments = Array(commandLine.dropFirst())
        let invocation: Invocation
        do {
            invocation = try CommandLineOptions.parse(arguments, environment: environment)
        } catch {
            return refuse(error.description, dialect: CommandLineOptions.dialect(in: arguments), serving: serving,
                          diagnostics: diagnostics, start: start)
        }
        switch invocation {
        case .help where !serving:
            return writeToTerminal(CommandLineOptions.helpText)
        case .version where !serving:
            return writeToTerminal("pgsqlchk \(pgsqlchkVersion)\n")
        case .clearFence(let configuration) where !serving:
            let cleared = FenceClearing.run(configuration, deadline: Deadline(after: configuration.timeout, from: start))
            cleared.problems.forEach(diagnostics.report)
            let written = writeToTerminal(cleared.lines.map { $0 + "\n" }.joined())
            return written == ExitCode.success.rawValue ? cleared.exitStatus.rawValue : written
        case .preflight(let configuration) where !serving:
            return Preflight.run(configuration) { line in try? CheckSocket.write(Array(line.utf8)) }
        case .help, .version, .clearFence, .preflight:
            return refuse("--help, --version, --clear-fence and --preflight are for terminals, not check connections",
                          dialect: CommandLineOptions.dialect(in: arguments),
                          serving: serving, diagnostics: diagnostics, start: start)
        case .check(let configuration):
            let mode: Mode = serving ? .checkConnection : .byHand(configuration.output)
            return HealthCheck(configuration: configuration, mode: mode, diagnostics: diagnostics,
                               deadline: Deadline(after: configuration.timeout, from: start)).run()
        }
    }

    /// Reports a usage error: by hand as text; to a check peer, once its
    /// request is read, as a 503 (or `down #reason` on the agent's port), so
    /// a broken `server_args` shows in HAProxy with a clear reason.
    private static func refuse(_ problem: String, dialect: Dialect, serving: Bool, diagnostics: Diagnostics, start: UInt64) -> Int32 {
        diagnostics.report(problem)
        guard serving else {
            diagnostics.report("try \"pgsqlchk --help\" for more information")
            return ExitCode.usage.rawValue
        }
        let fallback = HealthCheck(configuration: Configuration(dialect: dialect), mode: .checkConnection, diagnostics: diagnostics,
                                   deadline: Deadline(after: Configuration.defaultTimeout, from: start))
        _ = fallback.connection.readRequest(before: fallback.requestWaitEnd, isComplete: dialect.isComplete)
        fallback.send(dialect.render(Verdict(unavailable: "invalid pgsqlchk options"), for: CheckRequest()))
        return ExitCode.usage.rawValue
    }

    private static func writeToTerminal(_ text: String) -> Int32 {
        ((try? CheckSocket.write(Array(text.utf8))) != nil ? ExitCode.success : .outputFailed).rawValue
    }
}
