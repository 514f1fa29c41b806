#if canImport(Glibc)
import Glibc
#endif
import PGSQLChkCore

// The closure is @Sendable so that it is not isolated to the main actor, as
// top-level code is: a main-actor closure checks its executor when called,
// which links the concurrency runtime and libdispatch into the static binary
// and runs their initialisers at every start (ReleaseBinaryTests).
exit(HealthCheckCommand.run(
    commandLine: CommandLine.arguments,
    environment: { @Sendable name in getenv(name).map { String(cString: $0) } }
))
