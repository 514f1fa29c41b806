#if canImport(Glibc)
import Glibc
#endif

/// The cluster started by `scripts/cluster.sh start`, read from the variables
/// its `env` file exports (`make test` sources it).
struct TestCluster {
    let socketDirectory: String
    let primaryPort: String
    let standbyPort: String
    let runDirectory: String
    /// The server's binaries (the real psql, not Debian's wrapper).
    let postgresBinaries: String
    /// The major version those binaries are, which the servers must run
    /// (`make test` covers several).
    let postgresMajor: String

    static let contract = EnvironmentContract(
        names: ["PGSQLCHK_SOCKET_DIR", "PGSQLCHK_PRIMARY_PORT", "PGSQLCHK_STANDBY_PORT", "PGSQLCHK_RUN_DIR", "PGSQLCHK_PG_BIN",
                "PGSQLCHK_PG_MAJOR"],
        source: "scripts/cluster.sh start, then . $PGSQLCHK_RUN_DIR/env")

    /// The cluster the environment names, with both postmasters running.
    static func required() throws(LiveEnvironmentError) -> TestCluster {
        let values = try contract.values()
        let cluster = TestCluster(socketDirectory: values["PGSQLCHK_SOCKET_DIR"]!, primaryPort: values["PGSQLCHK_PRIMARY_PORT"]!,
                                  standbyPort: values["PGSQLCHK_STANDBY_PORT"]!, runDirectory: values["PGSQLCHK_RUN_DIR"]!,
                                  postgresBinaries: values["PGSQLCHK_PG_BIN"]!, postgresMajor: values["PGSQLCHK_PG_MAJOR"]!)
        for node in [Node.primary, .standby] where !(cluster.postmasterPID(of: node).map(processIsRunning) ?? false) {
            throw .serverNotRunning("no \(node.rawValue) postmaster running in \(cluster.runDirectory)/\(node.rawValue) (scripts/cluster.sh start)")
        }
        return cluster
    }

    /// The repository root, found from this file's path.
    static let repository: String = {
        var path = #filePath
        for _ in 0..<3 {
            path = String(path[..<path.lastIndex(of: "/")!])
        }
        return path
    }()

    /// The binary under test: `PGSQLCHK_BINARY`, else the debug build.
    static let binary: String = LiveEnvironment.value(of: "PGSQLCHK_BINARY") ?? repository + "/.build/debug/pgsqlchk"

    func port(of node: Node) -> String {
        node == .primary ? primaryPort : standbyPort
    }

    /// Runs `scripts/cluster.sh` with `arguments`; true when it succeeded.
    @discardableResult
    func script(_ arguments: String...) -> Bool {
        // cluster.sh must see the run directory and ports this cluster uses.
        let result = Child.run(["/bin/bash", TestCluster.repository + "/scripts/cluster.sh"] + arguments, input: .null,
                               environment: Child.projectEnvironment())
        return result.status == 0
    }

    /// The postmaster's process id (first line of `postmaster.pid`).
    func postmasterPID(of node: Node) -> pid_t? {
        pidFile("\(runDirectory)/\(node.rawValue)/postmaster.pid")
    }
}

enum Node: String {
    case primary, standby
}

/// What a finished child did.
struct ChildResult {
    /// The exit status, or nil when a signal ended it.
    let status: Int32?
    let output: [UInt8]
    let seconds: Double
    /// The connection ended with a reset (ECONNRESET) rather than a normal close.
    var wasReset = false

    var text: String { String(decoding: output, as: UTF8.self) }
}

/// Spawns processes with exactly the file descriptors a super-server would give.
enum Child {
    enum Input {
        /// `/dev/null` on stdin, stdout and stderr captured through one pipe.
        case null
        /// A pipe on stdin that stays open and silent, as a terminal would.
        case silentPipe
        /// One end of a socket pair as stdin, stdout and stderr, as xinetd does;
        /// `request` is written `delay` seconds after the spawn, and the peer
        /// closes its end at once when `hangUp` is set.
        case socket(request: String, hangUp: Bool, delay: Double = 0)
        /// An accepted TCP connection on 127.0.0.1 as stdin, stdout and stderr,
        /// where unread bytes at close turn into a reset that the peer sees;
        /// `request` is written at once.
        case tcp(request: String)
    }

    static func run(_ argv: [String], input: Input, environment: [String] = []) -> ChildResult {
        let start = monotonicSeconds()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }

        var ours: Int32 = -1
        var theirs: Int32 = -1
        var silentInput: [Int32] = [-1, -1]
        defer { silentInput.filter { $0 >= 0 }.forEach { close($0) } }
        switch input {
        case .null, .silentPipe:
            var pipeEnds: [Int32] = [0, 0]
            pipe(&pipeEnds)
            ours = pipeEnds[0]
            theirs = pipeEnds[1]
            if case .silentPipe = input {
                pipe(&silentInput)
                posix_spawn_file_actions_adddup2(&actions, silentInput[0], 0)
                posix_spawn_file_actions_addclose(&actions, silentInput[0])
                posix_spawn_file_actions_addclose(&actions, silentInput[1])
            } else {
                posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            }
            posix_spawn_file_actions_adddup2(&actions, theirs, 1)
            posix_spawn_file_actions_adddup2(&actions, theirs, 2)
        case .socket:
            var pair: [Int32] = [0, 0]
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair)
            ours = pair[0]
            theirs = pair[1]
        case .tcp:
            (ours, theirs) = connectedTCPPair()
        }
        switch input {
        case .socket, .tcp:
            for descriptor: Int32 in 0...2 {
                posix_spawn_file_actions_adddup2(&actions, theirs, descriptor)
            }
        case .null, .silentPipe:
            break
        }
        posix_spawn_file_actions_addclose(&actions, ours)
        posix_spawn_file_actions_addclose(&actions, theirs)

        let arguments = argv.map { strdup($0) } + [nil]
        let environmentEntries = (inheritedEnvironment() + environment).map { strdup($0) } + [nil]
        defer {
            arguments.forEach { free($0) }
            environmentEntries.forEach { free($0) }
        }
        var attributes = cleanSignalAttributes()
        defer { posix_spawnattr_destroy(&attributes) }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, &attributes, arguments, environmentEntries)
        close(theirs)
        precondition(spawned == 0, "could not spawn \(argv[0]): \(spawned)")

        switch input {
        case .socket(let request, let hangUp, let delay):
            if delay > 0 { usleep(UInt32(delay * 1_000_000)) }
            let bytes = Array(request.utf8)
            if !bytes.isEmpty { _ = write(ours, bytes, bytes.count) }
            if hangUp {
                close(ours)
                ours = -1
            }
        case .tcp(let request):
            let bytes = Array(request.utf8)
            _ = send(ours, bytes, bytes.count, Int32(MSG_NOSIGNAL))
        case .null, .silentPipe:
            break
        }
        var output: [UInt8] = []
        var wasReset = false
        if ours >= 0 {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(ours, &buffer, buffer.count)
                if count < 0, errno == ECONNRESET { wasReset = true }
                if count <= 0 { break }
                output += buffer[..<count]
            }
            close(ours)
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let exited = status & 0x7f == 0
        return ChildResult(status: exited ? (status >> 8) & 0xff : nil, output: output, seconds: monotonicSeconds() - start,
                           wasReset: wasReset)
    }

    /// A client socket and the server side of its accepted connection, on a
    /// loopback port the kernel picks.
    private static func connectedTCPPair() -> (client: Int32, server: Int32) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                _ = bind(listener, pointer, length)
                _ = listen(listener, 1)
                _ = getsockname(listener, pointer, &length)
            }
        }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) }
        }
        return (client, accept(listener, nil, nil))
    }

    /// The project's own settings (`PGSQLCHK_*`: run directory, ports) from
    /// the test process's environment, which `inheritedEnvironment` leaves out
    /// with libpq's variables; for children that run the project's scripts.
    static func projectEnvironment() -> [String] {
        var entries: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if text.hasPrefix("PGSQLCHK_") { entries.append(text) }
            cursor += 1
        }
        return entries
    }

    /// The test process's environment without libpq's variables, so a
    /// developer's own PGHOST or PGUSER cannot change what the tests connect to.
    static func inheritedEnvironment() -> [String] {
        var entries: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if !text.hasPrefix("PG") { entries.append(text) }
            cursor += 1
        }
        return entries
    }
}

/// Spawn attributes that give the child an empty signal mask and default
/// handlers, as a super-server does: the test runner's threads block most
/// signals, and a child inheriting that mask would never see SIGTERM or SIGALRM.
func cleanSignalAttributes() -> posix_spawnattr_t {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attributes, &empty)
    var all = sigset_t()
    sigfillset(&all)
    sigdelset(&all, SIGKILL)
    sigdelset(&all, SIGSTOP)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    return attributes
}

func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// A process left running while a test works.
struct BackgroundProcess {
    let pid: pid_t

    /// Starts `argv` with stdout and stderr written to `logPath`, and waits
    /// (up to five seconds) until a line starting with `readyText` appears there.
    static func start(_ argv: [String], logPath: String, readyText: String) -> BackgroundProcess? {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let arguments = argv.map { strdup($0) } + [nil]
        defer { arguments.forEach { free($0) } }
        var attributes = cleanSignalAttributes()
        defer { posix_spawnattr_destroy(&attributes) }
        var pid: pid_t = 0
        guard posix_spawn(&pid, argv[0], &actions, &attributes, arguments, environ) == 0 else { return nil }
        let process = BackgroundProcess(pid: pid)
        let giveUp = monotonicSeconds() + 5
        while monotonicSeconds() < giveUp {
            if Self.file(logPath, hasLineStartingWith: readyText) { return process }
            usleep(20_000)
        }
        process.stop()
        return nil
    }

    /// Ends the process (SIGTERM) and reaps it.
    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    private static func file(_ path: String, hasLineStartingWith prefix: String) -> Bool {
        guard let file = fopen(path, "r") else { return false }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, 256, file) != nil {
            if String(cString: line).hasPrefix(prefix) { return true }
        }
        return false
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's
/// pick), so that a test's own server never meets another run's.
func unusedPort() -> String? {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    return bound ? String(UInt16(bigEndian: address.sin_port)) : nil
}

/// Sends `request` on a connected socket, then reads until the peer closes.
func sendAndReadToEnd(_ descriptor: Int32, _ request: String) -> [UInt8] {
    let bytes = Array(request.utf8)
    _ = send(descriptor, bytes, bytes.count, Int32(MSG_NOSIGNAL))
    var reply: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = recv(descriptor, &buffer, buffer.count, 0)
        if count <= 0 { break }
        reply += buffer[..<count]
    }
    return reply
}
