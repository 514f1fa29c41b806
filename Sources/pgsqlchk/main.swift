#if canImport(Glibc)
import Glibc
#endif
import PGSQLChkCore

exit(HealthCheckCommand.run(
    commandLine: CommandLine.arguments,
    environment: { name in getenv(name).map { String(cString: $0) } }
))
