/// `pgsqlchk --clear-fence`: removes the fence of the node that the
/// connection options reach, and no other node's.
///
/// The node is asked who it is (``NodeIdentity``, through its
/// ``NodePosition``) on a connection made with the same options as its check,
/// so an admin runs the check's own command line with `--clear-fence`. The
/// one `fence` file of earlier builds is removed too when it names this
/// node's system identifier, or cannot be read. When the node cannot be
/// reached nothing is removed: the fence files present are listed, each
/// named `fence-SYSTEM_IDENTIFIER-PORT`, for the admin to remove with `rm`.
enum FenceClearing {
    /// What to print, what to log, and the exit status.
    struct Outcome: Equatable {
        /// Lines for standard output.
        var lines: [String] = []
        /// Lines for the diagnostics channel (standard error).
        var problems: [String] = []
        var exitStatus = ExitCode.success
    }

    static func run(_ configuration: Configuration, deadline: Deadline) -> Outcome {
        let position: NodePosition
        do {
            let connection = try PostgresConnection.connect(configuration.connection, before: deadline) { _ in }
            position = try NodePosition(row: try connection.firstRow(of: .position, before: deadline))
        } catch {
            var outcome = list(in: configuration.stateDirectory)
            outcome.lines.insert("could not ask the node which fence file is its own: \(error.reason)", at: 0)
            outcome.problems.append(error.detail)
            outcome.exitStatus = .unavailable
            return outcome
        }
        return clear(for: position.node, in: configuration.stateDirectory)
    }

    /// Removes `node`'s file, and the legacy one if it may be this node's.
    static func clear(for node: NodeIdentity, in stateDirectory: String) -> Outcome {
        var outcome = Outcome()
        let own = FenceFile(stateDirectory: stateDirectory, node: node)
        var files = [own]
        let legacy = FenceFile.legacy(stateDirectory: stateDirectory)
        switch legacy.read() {
        case .fence(let fence) where fence.systemIdentifier == node.systemIdentifier: files.append(legacy)
        case .unreadable: files.append(legacy)
        case .fence, .absent: break
        }
        for file in files {
            do {
                if try file.remove() { outcome.lines.append("removed the fence file \(file.path)") }
            } catch {
                outcome.problems.append(error.reason)
                outcome.exitStatus = .outputFailed
            }
        }
        if outcome.lines.isEmpty, outcome.problems.isEmpty {
            outcome.lines.append("no fence file for this node (\(node)) in \(stateDirectory)")
        }
        return outcome
    }

    /// The fence files in `stateDirectory`, each with what it says.
    static func list(in stateDirectory: String) -> Outcome {
        let files = FenceFile.all(in: stateDirectory)
        guard !files.isEmpty else { return Outcome(lines: ["no fence file in \(stateDirectory)"]) }
        var lines = ["nothing removed; fence files in \(stateDirectory) (remove this node's with rm):"]
        for file in files {
            switch file.read() {
            case .fence(let fence):
                lines.append("  \(file.path): system identifier \(fence.systemIdentifier), timeline \(fence.timeline), "
                    + "\(fence.newerNode) was \(fence.newerRole) on timeline \(fence.newerTimeline)")
            case .unreadable(let reason):
                lines.append("  \(file.path): \(reason)")
            case .absent:
                break
            }
        }
        return Outcome(lines: lines)
    }
}
