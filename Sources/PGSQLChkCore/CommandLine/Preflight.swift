#if canImport(Glibc)
import Glibc
#endif

/// `pgsqlchk --preflight`: checks a deployment as its checks will meet it,
/// the way `haproxy -c`, `nginx -t` and `patroni --validate-config` check
/// theirs, and prints a checklist with a line for each problem.
///
/// Run with the check's own user and environment (peer authentication maps
/// the OS user, and the directories must be that user's). It looks at:
///
/// | subject           | a problem (FAIL)                                      | a warning                         |
/// |-------------------|-------------------------------------------------------|-----------------------------------|
/// | login             | fails, or takes longer than the check's deadline      | takes more than half of it        |
/// | privileges        | a configured limit needs `pg_read_all_stats`          | requests' limits would need it; a superuser role |
/// | each of `--peers` | unreachable, refused, another cluster, newer, a rival | -                                 |
/// | the peers list    | -                                                     | empty (guard off); this node not in it |
/// | `--quorum`        | more nodes than the list and this node; a primary short of it | -                         |
/// | state directory   | missing, not the user's, not writable; this node fenced | anyone may write to it           |
/// | result cache      | directory unusable while a TTL is set                 | -                                 |
/// | drain file        | its directory is missing                              | the file exists (node drained)    |
/// | the host          | -                                                     | run as root; several clusters, and this check on the default drain file |
///
/// Observing (``observe(_:deadline:)``) is kept apart from judging
/// (``findings(_:configuration:)``), which is pure.
enum Preflight {
    /// The exit status when any line is a problem, as `haproxy -c` and
    /// `nginx -t` have it; warnings alone exit 0.
    static let problemsFound: Int32 = 1

    /// Where Debian keeps one directory per cluster (`pg_createcluster`).
    static let debianClusterConfigurations = "/etc/postgresql"

    /// One line of the checklist.
    struct Finding: Equatable, Sendable {
        enum Grade: String, Sendable {
            case ok = "ok  "
            case warning = "warn"
            case problem = "FAIL"
        }

        var grade: Grade
        /// What was checked: `login`, `peer db2:5432`, `state directory /var/lib/pgsqlchk`.
        var subject: String
        /// What was found, and for a problem what to do.
        var detail: String
    }

    /// The local server as the preflight's login saw it.
    struct Login: Equatable, Sendable {
        var state: NodeState
        var position: NodePosition
        var role: String
        var readsAllStats: Bool
        var superuser: Bool
        var duration: Milliseconds
    }

    /// A directory the checks write to, as this user finds it.
    enum DirectoryStatus: Equatable, Sendable {
        case usable
        /// It cannot be used: why.
        case unusable(reason: String)
    }

    /// Everything the preflight saw; ``findings(_:configuration:)`` judges it.
    struct Observations: Equatable, Sendable {
        var login: Result<Login, ProbeFailure>
        /// Each peer's answer; nil when the local login failed, so no peer was asked.
        var peers: [PeerReport]?
        var stateDirectory: DirectoryStatus
        /// What fences this node: its own fence file, else an earlier
        /// build's one `fence` file where it applies; nil when the login
        /// failed, so the node is not known.
        var fence: FenceFile.Content?
        /// Nil when the cache is off.
        var cacheDirectory: DirectoryStatus?
        var drain: DrainState
        /// Whether the drain file's directory exists.
        var drainDirectoryExists: Bool
        var effectiveUser: UInt32
        /// Clusters in ``debianClusterConfigurations``.
        var clustersOnHost: Int
    }

    /// How much longer than a check the preflight waits for its answers, so
    /// that a login slower than the check's deadline is measured and named
    /// rather than cut off.
    static let deadlineFactor = 3

    /// Runs the preflight: observes, judges, prints, and returns the exit status.
    static func run(_ configuration: Configuration, print: (String) -> Void) -> Int32 {
        let deadline = Deadline(after: Milliseconds(configuration.timeout.value * deadlineFactor))
        let findings = findings(observe(configuration, deadline: deadline), configuration: configuration)
        for finding in findings {
            print("\(finding.grade.rawValue) \(finding.subject): \(finding.detail)\n")
        }
        let problems = findings.filter { $0.grade == .problem }.count
        let warnings = findings.filter { $0.grade == .warning }.count
        print("pgsqlchk --preflight: \(problems) \(problems == 1 ? "problem" : "problems"), \(warnings) \(warnings == 1 ? "warning" : "warnings")\n")
        return problems == 0 ? ExitCode.success.rawValue : problemsFound
    }

    // MARK: Judging

    /// The checklist for `observations`, in the order of the table above.
    static func findings(_ observations: Observations, configuration: Configuration) -> [Finding] {
        var findings: [Finding] = []
        let login: Login
        switch observations.login {
        case .failure(let failure):
            findings.append(Finding(grade: .problem, subject: "login", detail: "\(failure.reason): \(failure.detail)"))
            findings += localFindings(observations, configuration: configuration)
            return findings
        case .success(let seen):
            login = seen
        }
        let timeline = login.state.timeline ?? login.position.timeline
        let pace: Finding.Grade = login.duration > configuration.timeout ? .problem
            : login.duration.value * 2 > configuration.timeout.value ? .warning : .ok
        findings.append(Finding(grade: pace, subject: "login",
                                detail: "PostgreSQL \(login.state.serverVersion), \(login.state.role) on timeline \(timeline), as role \(login.role), "
                                    + "in \(login.duration)s of the \(configuration.timeout)s deadline"))
        findings += privilegeFindings(login, configuration: configuration)
        findings += peerFindings(login.position, reports: observations.peers ?? [], configuration: configuration)
        findings += localFindings(observations, configuration: configuration)
        return findings
    }

    private static func privilegeFindings(_ login: Login, configuration: Configuration) -> [Finding] {
        var findings: [Finding] = []
        let requirements = configuration.question.requirements
        let needsStats = requirements.maximumLagBytes != nil || requirements.requiresStreaming
        if login.readsAllStats {
            findings.append(Finding(grade: .ok, subject: "privileges", detail: "role \(login.role) reads the WAL receiver and sessions (pg_read_all_stats)"))
        } else {
            findings.append(Finding(grade: needsStats ? .problem : .warning, subject: "privileges",
                                    detail: "role \(login.role) cannot see the WAL receiver: "
                                        + (needsStats ? "the configured lag or streaming limit" : "lag=, replication_state= and the agent's maxconn")
                                        + " would answer unknown; GRANT pg_monitor TO \(login.role)"))
        }
        if login.superuser {
            findings.append(Finding(grade: .warning, subject: "privileges",
                                    detail: "role \(login.role) is a superuser; the check needs only LOGIN and pg_monitor (sql/pgsqlchk-role.sql)"))
        }
        return findings
    }

    private static func peerFindings(_ local: NodePosition, reports: [PeerReport], configuration: Configuration) -> [Finding] {
        guard !configuration.peers.isEmpty else {
            return [Finding(grade: .warning, subject: "peers", detail: "none listed (--peers, PGSQLCHK_PEERS): the stale-primary guard is off")]
        }
        var findings: [Finding] = []
        let peers = StalePrimaryGuard.findings(of: reports, local: local)
        for peer in peers {
            let report = peer.report
            let subject = "peer \(report.peer)"
            switch report.outcome {
            case .failure(let failure):
                findings.append(Finding(grade: .problem, subject: subject, detail: "\(failure.reason): \(failure.detail)"))
                continue
            case .success(let position) where position.isSameServer(as: local):
                findings.append(Finding(grade: .ok, subject: subject, detail: "this node"))
                continue
            case .success(let position) where position.systemIdentifier != local.systemIdentifier:
                findings.append(Finding(grade: .problem, subject: subject,
                                        detail: "another cluster (system identifier \(position.systemIdentifier), this node's \(local.systemIdentifier)): check its host and port"))
                continue
            case .success:
                break
            }
            // The standings that bear on a primary; a standby's peers only
            // have to be reachable and of its cluster.
            guard case .success(let position) = report.outcome else { continue }
            let seen = "\(position.role) on timeline \(position.timeline)"
            switch peer.standing {
            case .newer where !local.inRecovery:
                findings.append(Finding(grade: .problem, subject: subject, detail: "\(seen): this primary is stale, and its checks answer 503"))
            case .rival where !local.inRecovery:
                findings.append(Finding(grade: .problem, subject: subject, detail: "\(seen): two primaries on one timeline, and both answer 503"))
            default:
                findings.append(Finding(grade: .ok, subject: subject, detail: "\(seen), same cluster"))
            }
        }
        if !reports.isEmpty, !reports.contains(where: { (try? $0.outcome.get())?.isSameServer(as: local) == true }) {
            findings.append(Finding(grade: .warning, subject: "peers",
                                    detail: "this node is not among them: give every node the same list, itself included"))
        }
        if let quorum = configuration.quorum {
            findings.append(quorumFinding(QuorumCount(quorum: quorum, findings: peers), primary: !local.inRecovery))
        }
        return findings
    }

    /// Whether the quorum can be met at all and, on a primary, is met now.
    private static func quorumFinding(_ count: QuorumCount, primary: Bool) -> Finding {
        let subject = "quorum \(count.quorum)"
        if count.needed > count.members {
            return Finding(grade: .problem, subject: subject,
                           detail: "needs \(count.needed) nodes, but the cluster has \(count.members) (--peers, this node included): a primary always answers 503")
        }
        if primary, !count.isMet {
            return Finding(grade: .problem, subject: subject, detail: "\(count): this primary answers 503 until it reaches more nodes")
        }
        return Finding(grade: .ok, subject: subject, detail: primary ? "\(count)" : "needs \(count.needed) of \(count.members) nodes on a primary")
    }

    /// What needs no server: the directories, the drain file, the host.
    private static func localFindings(_ observations: Observations, configuration: Configuration) -> [Finding] {
        var findings: [Finding] = []
        if !configuration.peers.isEmpty {
            let subject = "state directory \(configuration.stateDirectory)"
            switch observations.stateDirectory {
            case .unusable(let reason):
                findings.append(Finding(grade: .problem, subject: subject, detail: reason))
            case .usable:
                findings.append(Finding(grade: .ok, subject: subject, detail: "writable by uid \(observations.effectiveUser)"))
            }
            switch observations.fence {
            case .fence(let fence)?:
                findings.append(Finding(grade: .problem, subject: "fence", detail: (GuardDecision.fenced(fence).refusal ?? "fenced")
                                            + "; rebuild this node as a standby, or remove the fence with pgsqlchk --clear-fence"))
            case .unreadable(let reason)?:
                findings.append(Finding(grade: .problem, subject: "fence", detail: reason))
            case .absent?, nil:
                break
            }
        }
        if let cache = observations.cacheDirectory {
            let subject = "result cache \(configuration.cache.directory)"
            switch cache {
            case .usable: findings.append(Finding(grade: .ok, subject: subject, detail: "usable, TTL \(configuration.cache.ttl)s"))
            case .unusable(let reason): findings.append(Finding(grade: .problem, subject: subject, detail: reason))
            }
        }
        let drainSubject = "drain file \(configuration.maintenanceFile)"
        switch observations.drain {
        case .present:
            findings.append(Finding(grade: .warning, subject: drainSubject, detail: "exists: this node answers 404 maintenance"))
        case .unreadable(let reason):
            findings.append(Finding(grade: .problem, subject: drainSubject, detail: reason))
        case .absent where !observations.drainDirectoryExists:
            findings.append(Finding(grade: .problem, subject: drainSubject,
                                    detail: "its directory does not exist, so touching the file to drain this node would fail"))
        case .absent:
            findings.append(Finding(grade: .ok, subject: drainSubject, detail: "absent: this node is in rotation"))
        }
        if observations.effectiveUser == 0 {
            findings.append(Finding(grade: .warning, subject: "user",
                                    detail: "running as root, but the checks run as their own user: run the preflight as that user"))
        }
        if observations.clustersOnHost > 1, configuration.maintenanceFile == Configuration.defaultMaintenanceFile {
            findings.append(Finding(grade: .warning, subject: "host",
                                    detail: "\(observations.clustersOnHost) clusters in \(debianClusterConfigurations), and this check uses the default drain file: "
                                        + "unless every other cluster's check has its own (-m, PGSQLCHK_MAINTENANCE_FILE), one file drains them all"))
        }
        return findings
    }

    // MARK: Observing

    /// Logs in, asks the peers, and looks at the directories, all before `deadline`.
    static func observe(_ configuration: Configuration, deadline: Deadline) -> Observations {
        let login = logIn(configuration.connection, deadline: deadline)
        var peers: [PeerReport]?
        if case .success = login, !configuration.peers.isEmpty {
            peers = PeerProbe.ask(configuration.peers, settings: configuration.connection, before: deadline)
        }
        let drain = DrainState.read(path: configuration.maintenanceFile) { _ in }
        return Observations(
            login: login,
            peers: peers,
            stateDirectory: writableDirectory(configuration.stateDirectory),
            // A standby's own fence is a leftover its next check removes.
            fence: (try? login.get()).map { $0.position.inRecovery ? .absent : fence(of: $0.position, in: configuration.stateDirectory) },
            cacheDirectory: configuration.cache.isEnabled ? privateDirectory(configuration.cache.directory) : nil,
            drain: drain,
            drainDirectoryExists: isDirectory(parent(of: configuration.maintenanceFile)),
            effectiveUser: geteuid(),
            clustersOnHost: debianClusters()
        )
    }

    /// What fences the node at `position`, as ``StalePrimaryGuard`` reads it:
    /// its own file, else the one `fence` file of earlier builds where it
    /// applies to this node.
    static func fence(of position: NodePosition, in stateDirectory: String) -> FenceFile.Content {
        let own = FenceFile(stateDirectory: stateDirectory, node: position.node).read()
        guard own == .absent, case .fence(let legacy) = FenceFile.legacy(stateDirectory: stateDirectory).read(),
              legacy.applies(to: position) else { return own }
        return .fence(legacy)
    }

    private static func logIn(_ settings: ConnectionSettings, deadline: Deadline) -> Result<Login, ProbeFailure> {
        Result { () throws(ProbeFailure) -> Login in
            let start = Deadline.now()
            let connection = try PostgresConnection.connect(settings, before: deadline) { _ in }
            let state = try RoleProbe.nodeState(from: try connection.firstRow(of: .replication, before: deadline),
                                                serverVersion: connection.serverVersion)
            let position = try NodePosition(row: try connection.firstRow(of: .position, before: deadline))
            let privileges = try connection.firstRow(of: .privileges, before: deadline)
            return Login(state: state, position: position, role: try privileges.value(of: "role") ?? "",
                         readsAllStats: try privileges.value(of: "reads_all_stats") == "t",
                         superuser: try privileges.value(of: "superuser") == "t",
                         duration: Milliseconds(Int((Deadline.now() - start) / 1_000_000)))
        }
    }

    /// Whether this user may create and remove a file in `path`, which must
    /// be its own directory: the fence is written there.
    static func writableDirectory(_ path: String) -> DirectoryStatus {
        var status = stat()
        guard stat(path, &status) == 0 else { return .unusable(reason: "cannot be used: \(Errno.current)") }
        guard status.st_mode & S_IFMT == S_IFDIR else { return .unusable(reason: "not a directory") }
        guard status.st_uid == geteuid() else {
            return .unusable(reason: "owned by uid \(status.st_uid), but the check runs as uid \(geteuid())")
        }
        let probe = "\(path)/.preflight.\(getpid())"
        let descriptor = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return .unusable(reason: "cannot create a file in it: \(Errno.current)") }
        close(descriptor)
        unlink(probe)
        return .usable
    }

    /// Whether `path` is a directory the result cache accepts: this user's,
    /// no access for anyone else (``ResultCache``), or missing under a parent
    /// where this user may make it.
    static func privateDirectory(_ path: String) -> DirectoryStatus {
        var status = stat()
        guard stat(path, &status) == 0 else {
            guard errno == ENOENT else { return .unusable(reason: "cannot be used: \(Errno.current)") }
            return access(parent(of: path), W_OK | X_OK) == 0
                ? .usable : .unusable(reason: "missing, and uid \(geteuid()) may not make it in \(parent(of: path))")
        }
        guard status.st_mode & S_IFMT == S_IFDIR else { return .unusable(reason: "not a directory") }
        guard ResultCache.isPrivate(status) else {
            return .unusable(reason: "must belong to uid \(geteuid()) with mode 0700 (owner uid \(status.st_uid), mode \(String(status.st_mode & 0o777, radix: 8)))")
        }
        return .usable
    }

    private static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// How many clusters `pg_createcluster` has made here: one
    /// `VERSION/NAME/postgresql.conf` each.
    private static func debianClusters() -> Int {
        POSIX.names(inDirectoryAt: debianClusterConfigurations).reduce(0) { count, version in
            count + POSIX.names(inDirectoryAt: "\(debianClusterConfigurations)/\(version)").filter { cluster in
                access("\(debianClusterConfigurations)/\(version)/\(cluster)/postgresql.conf", F_OK) == 0
            }.count
        }
    }

}
