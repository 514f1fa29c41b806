#if canImport(Glibc)
import Glibc
#endif

/// The sticky half of the stale-primary guard: a small file in the state
/// directory that says "this primary, on this timeline, was seen stale".
///
/// ```
/// pgsqlchk-fence 1
/// system_identifier 7714142357752938336
/// timeline 1
/// newer_node db2:5432
/// newer_role primary
/// newer_timeline 2
/// ```
///
/// Exactly these six lines, in this order, each ending in a newline. It is
/// written to a temporary file and renamed over the old one, so a reader sees
/// the whole file or none; it is never opened through a symbolic link. A file
/// that is there but cannot be read or does not parse is treated as a fence,
/// with a reason that names it. An admin clears it with
/// `pgsqlchk --clear-fence` (or `rm`).
///
/// Each node has its own file, named after its ``NodeIdentity``
/// (`fence-7714142357752938336-5432`), so that every node and cluster on a
/// host can share one state directory: a check only ever reads, writes or
/// removes the file of the node it checks. Earlier builds kept one file,
/// `fence`, for the whole directory (``legacy(stateDirectory:)``), which is
/// still honoured (``StalePrimaryGuard``).
struct FenceFile: Equatable, Sendable {
    /// The name of the previous versions' one file per directory.
    static let legacyName = "fence"
    /// What every node's file name starts with.
    static let prefix = "fence-"
    /// The most bytes a valid file can hold (six short lines); anything longer is corrupt.
    static let sizeLimit = 1_024
    static let header = "pgsqlchk-fence 1"

    /// The file's path.
    let path: String

    /// The file of the node `node` in `stateDirectory`.
    init(stateDirectory: String, node: NodeIdentity) {
        self.init(stateDirectory: stateDirectory, name: "\(Self.prefix)\(node.systemIdentifier)-\(node.port)")
    }

    private init(stateDirectory: String, name: String) {
        path = (stateDirectory.hasSuffix("/") ? stateDirectory : stateDirectory + "/") + name
    }

    /// The previous versions' file, `fence`, which named no node.
    static func legacy(stateDirectory: String) -> FenceFile {
        FenceFile(stateDirectory: stateDirectory, name: legacyName)
    }

    /// The fence files in `stateDirectory` (every node's, and the legacy
    /// one), sorted by path: what `--clear-fence` lists when it cannot tell
    /// which node is its own. Empty when the directory cannot be read.
    static func all(in stateDirectory: String) -> [FenceFile] {
        POSIX.names(inDirectoryAt: stateDirectory)
            .filter { $0 == legacyName || $0.hasPrefix(prefix) }
            .map { FenceFile(stateDirectory: stateDirectory, name: $0) }
            .sorted { $0.path < $1.path }
    }

    private var name: Substring { path[path.index(after: path.lastIndex(of: "/") ?? path.startIndex)...] }

    /// What the file says.
    enum Content: Equatable, Sendable {
        case absent
        case fence(Fence)
        /// There, but unreadable or malformed: why.
        case unreadable(reason: String)
    }

    /// Reads the file. (C: `open` with `O_NOFOLLOW`, `fstat`, ``POSIX/readAll(from:limit:)``.)
    func read() -> Content {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            let error = errno
            if error == ENOENT { return .absent }
            if error == ELOOP { return .unreadable(reason: "fence file \(path) is a symbolic link") }
            return .unreadable(reason: "fence file \(path) cannot be read: \(Errno(error))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            return .unreadable(reason: "fence file \(path) is not a regular file")
        }
        let bytes: [UInt8]
        do {
            // One byte more than a valid file holds, so that parse() sees it is too long.
            bytes = try POSIX.readAll(from: descriptor, limit: Self.sizeLimit + 1)
        } catch {
            return .unreadable(reason: "fence file \(path) cannot be read: \(error)")
        }
        switch Self.parse(bytes) {
        case .success(let fence): return .fence(fence)
        case .failure(let problem): return .unreadable(reason: "fence file \(path) is corrupt: \(problem.reason)")
        }
    }

    /// Why a file's bytes are not a fence.
    struct FormatProblem: Error, Equatable {
        var reason: String
    }

    /// Parses a file's bytes, strictly.
    static func parse(_ bytes: [UInt8]) -> Result<Fence, FormatProblem> {
        guard bytes.count <= sizeLimit else { return .failure(FormatProblem(reason: "longer than \(sizeLimit) bytes")) }
        guard bytes.allSatisfy({ $0 == 10 || ($0 >= 0x20 && $0 < 0x7f) }) else {
            return .failure(FormatProblem(reason: "not printable ASCII"))
        }
        guard bytes.last == 10 else { return .failure(FormatProblem(reason: "does not end with a newline")) }
        let lines = String(decoding: bytes.dropLast(), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let keys = ["system_identifier", "timeline", "newer_node", "newer_role", "newer_timeline"]
        guard lines.count == keys.count + 1, lines[0] == header else {
            return .failure(FormatProblem(reason: "expected \"\(header)\" and \(keys.count) lines"))
        }
        var values: [String] = []
        for (line, key) in zip(lines.dropFirst(), keys) {
            guard line.hasPrefix(key + " ") else { return .failure(FormatProblem(reason: "expected \(key)")) }
            let value = line.dropFirst(key.count + 1)
            guard !value.isEmpty, !value.contains(" ") else { return .failure(FormatProblem(reason: "bad \(key)")) }
            values.append(String(value))
        }
        func number(_ text: String) -> Int? {
            guard text.count <= 10, text.allSatisfy(\.isASCIIDigit), let value = Int(text), value > 0 else { return nil }
            return value
        }
        guard values[0].count <= 20, values[0].allSatisfy(\.isASCIIDigit), let value = UInt64(values[0]), value > 0 else {
            return .failure(FormatProblem(reason: "bad system_identifier"))
        }
        guard let timeline = number(values[1]) else { return .failure(FormatProblem(reason: "bad timeline")) }
        guard values[2].count <= 255 else { return .failure(FormatProblem(reason: "bad newer_node")) }
        guard values[3] == "primary" || values[3] == "standby" else { return .failure(FormatProblem(reason: "bad newer_role")) }
        guard let newerTimeline = number(values[4]), newerTimeline > timeline else {
            return .failure(FormatProblem(reason: "bad newer_timeline"))
        }
        return .success(Fence(systemIdentifier: values[0], timeline: timeline, newerNode: values[2],
                              newerRole: values[3], newerTimeline: newerTimeline))
    }

    /// The file's bytes for `fence`.
    static func render(_ fence: Fence) -> String {
        """
        \(header)
        system_identifier \(fence.systemIdentifier)
        timeline \(fence.timeline)
        newer_node \(fence.newerNode)
        newer_role \(fence.newerRole)
        newer_timeline \(fence.newerTimeline)

        """
    }

    /// Writes `fence` atomically and durably (``POSIX/replace(_:in:with:temporary:mode:durably:)``):
    /// a new temporary file, never through a link, synced, renamed over the
    /// old name, then the directory synced. Returns why it failed, or nil.
    func write(_ fence: Fence) -> String? {
        let directoryPath = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        let temporaryName = ".\(name).\(getpid()).tmp"
        let temporary = "\(directoryPath)/\(temporaryName)"
        let directory = open(directoryPath.isEmpty ? "/" : directoryPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { return "could not create \(temporary): \(Errno.current)" }
        defer { close(directory) }
        do {
            try POSIX.replace(String(name), in: directory, with: Array(Self.render(fence).utf8), temporary: temporaryName,
                              mode: 0o644, durably: true)
            return nil
        } catch {
            switch error.step {
            case .creating: return "could not create \(temporary): \(error.error)"
            case .writing: return "could not write \(temporary): \(error.error)"
            case .syncing: return "could not sync \(temporary): \(error.error)"
            case .renaming: return "could not rename \(temporary) to \(path): \(error.error)"
            }
        }
    }

    /// Removes the file; true when it was there. Throws the `errno` of any
    /// other failure. (C: `unlink`, which removes a link itself, never its target.)
    func remove() throws(FenceRemovalError) -> Bool {
        if unlink(path) == 0 { return true }
        let error = errno
        if error == ENOENT { return false }
        throw FenceRemovalError(path: path, errno: error)
    }
}

/// The fence file could not be removed.
struct FenceRemovalError: Error, Equatable {
    var path: String
    var errno: Int32

    var reason: String { "could not remove fence file \(path): \(Errno(errno))" }
}
