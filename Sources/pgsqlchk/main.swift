#if canImport(Glibc)
import Glibc
#endif
import PGSQLChkCore

exit(HealthCheckCommand.run(
    arguments: Array(CommandLine.arguments.dropFirst()),
    environment: { name in getenv(name).map { String(cString: $0) } }
))
