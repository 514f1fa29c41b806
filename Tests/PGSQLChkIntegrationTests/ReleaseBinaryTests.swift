#if canImport(Glibc)
import Glibc
#endif
import Testing

extension LiveServers {
    /// Start-up cuts that only a comment guarded: each would stop working
    /// silently if the toolchain or the runtime changed under it. They hold
    /// for the release binary (`make build`), which `make test` names in
    /// PGSQLCHK_BINARY.
    @Suite("The release binary keeps its start-up cuts", .enabled(if: releaseBinary.isEnabled, releaseBinary.skipReason))
    struct ReleaseBinaryTests {
        let binary: String
        let cluster: TestCluster

        init() throws {
            binary = try releaseBinary.values()["PGSQLCHK_BINARY"]!
            cluster = try TestCluster.required()
        }

        @Test("libm is not NEEDED: LazyLibm's hand-kept list still covers every libm function the runtime uses")
        func noLibm() throws {
            let result = Child.run(["/usr/bin/readelf", "--dynamic", "--wide", binary], input: .null)
            try #require(result.status == 0, "readelf failed (binutils): \(result.text)")
            let needed = result.text.split(separator: "\n").filter { $0.contains("(NEEDED)") }
            #expect(!needed.isEmpty, "readelf listed no NEEDED entry at all: \(result.text)")
            #expect(!needed.contains { $0.contains("libm.so") }, "libm is back: \(needed)")
        }

        @Test("no copy relocations: libpq, loaded with RTLD_DEEPBIND, would see the original of a copied variable")
        func noCopyRelocations() throws {
            let result = Child.run(["/usr/bin/readelf", "--relocs", "--wide", binary], input: .null)
            try #require(result.status == 0, "readelf failed (binutils): \(result.text)")
            #expect(result.text.contains("R_X86_64"), "readelf listed no relocation at all: \(result.text.prefix(300))")
            #expect(!result.text.contains("R_X86_64_COPY"), "copy relocations: \(result.text.split(separator: "\n").filter { $0.contains("COPY") })")
        }

        @Test("no concurrency runtime or libdispatch: main's closure is not main-actor isolated, so neither is linked nor initialised")
        func noConcurrencyRuntime() throws {
            let result = Child.run(["/usr/bin/nm", "--defined-only", binary], input: .null)
            try #require(result.status == 0, "nm failed (binutils): \(result.text.prefix(300))")
            let symbols = result.text.split(separator: "\n")
            #expect(symbols.contains { $0.hasSuffix(" pgsqlchk_main") }, "nm listed no symbols (a stripped binary?)")
            #expect(!symbols.contains { $0.hasSuffix(" swift_task_isCurrentExecutor") || $0.hasSuffix(" _libdispatch_init") },
                    "the concurrency runtime is linked again")
        }

        @Test("a whole check never opens /proc/self/maps: ArgvCapture still stands in for the runtime's scan")
        func noMapsScan() throws {
            let trace = cluster.runDirectory + "/maps-strace.log"
            let result = Child.run(["/usr/bin/strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", trace,
                                    binary, "-h", cluster.socketDirectory, "-p", cluster.primaryPort, "-U", "pgsqlchk", "-d", "postgres"],
                                   input: .socket(request: "GET / HTTP/1.1\r\n\r\n", hangUp: false))
            #expect(result.text.hasPrefix("HTTP/1.1 200 OK\r\n"), "the traced check did not answer: \(result.text)")
            let opened = try #require(readFile(trace), "strace wrote no log (is strace installed?)")
            #expect(opened.contains("libpq"), "the trace saw no library opened: \(opened.prefix(500))")
            #expect(!opened.contains("/proc/self/maps"))
        }
    }
}

/// The binary `make build` made, which `make test` names.
let releaseBinary = EnvironmentContract(names: ["PGSQLCHK_BINARY"], source: "make build, then export PGSQLCHK_BINARY=.build/release/pgsqlchk")

/// The whole text of `path`, or nil when it cannot be read.
func readFile(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count == 0 { break }
        bytes += buffer[..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
