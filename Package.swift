// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "pgsqlchk",
    products: [
        .executable(name: "pgsqlchk", targets: ["pgsqlchk"]),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(name: "CBackstop"),
        .target(
            name: "PGSQLChkCore",
            dependencies: ["CLibPQ", "CBackstop"]
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
            dependencies: ["CLibPQ", "ParsedResponse"]
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
