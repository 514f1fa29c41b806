// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "pgsqlchk",
    products: [
        .executable(name: "pgsqlchk", targets: ["pgsqlchk"]),
    ],
    targets: [
        // libpq's headers (libpq-dev), and no link: the check loads libpq
        // with dlopen when it probes (CLibPQTable), so that an answer from
        // the result cache never maps it. No pkgConfig either, whose Libs
        // would link it.
        .systemLibrary(name: "CLibPQ"),
        .target(name: "CBackstop"),
        // Peers' host names looked up on threads of their own, so that a
        // check waits for them under its deadline.
        .target(name: "CResolver"),
        // libpq's function table, filled by dlopen on the first probe.
        .target(name: "CLibPQTable", dependencies: ["CLibPQ"]),
        .target(
            name: "PGSQLChkCore",
            dependencies: ["CLibPQ", "CLibPQTable", "CBackstop", "CResolver"]
        ),
        .target(name: "ArgvCapture"),
        .target(
            name: "LazyLibm",
            // Defines libm's entry points itself: no builtin may stand in.
            cSettings: [.unsafeFlags(["-fno-builtin"])]
        ),
        .executableTarget(
            name: "pgsqlchk",
            dependencies: ["PGSQLChkCore", "ArgvCapture", "LazyLibm"]
        ),
        .testTarget(
            name: "PGSQLChkCoreTests",
            dependencies: ["PGSQLChkCore"]
        ),
        .testTarget(
            name: "PGSQLChkIntegrationTests",
            // PGSQLChkCore for the probe's statements, which a test runs
            // over rows of its own making on the real standby.
            dependencies: ["CLibPQ", "ParsedResponse", "PGSQLChkCore"],
            // CLibPQ is headers only; the tests call libpq directly.
            linkerSettings: [.linkedLibrary("pq")]
        ),
        // The tests' one HTTP response validator, and the command that lends
        // it to the shell suites in Tests/system.
        .target(name: "ParsedResponse", path: "Tests/ParsedResponse"),
        .executableTarget(
            name: "response-check",
            dependencies: ["ParsedResponse"],
            path: "Tests/system/response-check"
        ),
    ],
    swiftLanguageModes: [.v6]
)
