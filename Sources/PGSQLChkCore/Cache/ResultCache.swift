#if canImport(Glibc)
import Glibc
#endif

/// Lets concurrent checks of one node share one probe (README, "Result cache").
///
/// Per ``CacheKey`` the directory holds `DIGEST.entry` (a ``CacheEntry``) and
/// `DIGEST.lock`. A check:
/// 1. answers from a fresh entry: younger than the TTL, counted from the
///    start of the probe that wrote it, of this key and boot, owned by this
///    user; libpq is never loaded;
/// 2. otherwise takes the lock (`flock`, exclusive, on the file the name
///    still leads to), looks at the entry again (a holder may just have
///    written it), and if it is still missing or stale probes, writes the
///    entry if the outcome is the node's answer (``shares(_:)``: a new file,
///    then `rename()`), prunes the directory (``prune(_:keeping:)``) and
///    releases the lock, which `close()` does even if the check dies;
/// 3. while another check holds the lock, retries every
///    ``lockRetryInterval``, then uses what the holder wrote. It waits at most
///    half of what is left of its deadline, then probes by itself and writes
///    nothing: a holder that hangs (or is stopped) costs the others time,
///    never their answer or their deadline.
///
/// Every file is opened with `O_NOFOLLOW` and must be a regular file owned by
/// this user; the directory must be owned by this user with no access for
/// anyone else. Anything else is ignored (and an entry replaced), never
/// trusted, and is reported on the diagnostics channel.
struct ResultCache {
    static let lockRetryInterval = Milliseconds(2)

    /// The most entries the directory keeps: the checks of one host ask a
    /// handful of questions (a probe depth each, a `maxconn_role` each), but
    /// whoever reaches the agent port can name new roles forever. Past this
    /// the oldest go, so the directory holds at most twice as many files (an
    /// entry and its lock), plus the temporary files of writes under way.
    static let maximumEntries = 64

    let settings: CacheSettings
    let report: (String) -> Void

    /// What answers the check.
    struct Answer {
        var outcome: Result<NodeState, ProbeFailure>
        /// How old the outcome is: zero when probed for this check, nil when
        /// the cache's directory or lock could not be used (the cache is
        /// then off for this check, as the README's `null` says).
        var age: Milliseconds?
        /// How long the probe that found the outcome took.
        var probeDuration: Milliseconds
    }

    /// Whether `outcome` is the node's answer, which any check with the same
    /// key would get, and so may answer them; otherwise it says something
    /// about the check that asked, and is never written:
    ///
    /// | outcome | shared | because |
    /// |---|---|---|
    /// | a state (peers' answers included) | yes | the node's answer |
    /// | `noResponse` | yes | nothing listens where the key points |
    /// | `tooManyConnections` | yes | the server is full |
    /// | `notAcceptingConnections` | yes | starting up, shutting down, recovering |
    /// | `connectionRejected` | yes | the server said no, for a reason not the credentials' (class 28 is `authenticationFailed`) |
    /// | `authorizationFailed` | yes | database and role are in the key |
    /// | `queryFailed` | yes | the server failed one of the probe's statements |
    /// | `timedOut` | no | the asking check's deadline (`-t`) ran out |
    /// | `authenticationFailed` | no | the asking check's credentials, not in the key |
    /// | `tlsFailed` | no | the asking check's certificate and key files, not in the key |
    /// | `misconfigured` | no | no server was asked |
    /// | `libraryMissing` | no | no server was asked |
    static func shares(_ outcome: Result<NodeState, ProbeFailure>) -> Bool {
        switch outcome {
        case .success:
            true
        case .failure(let failure):
            switch failure {
            case .noResponse, .tooManyConnections, .notAcceptingConnections, .connectionRejected, .authorizationFailed, .queryFailed:
                true
            case .timedOut, .authenticationFailed, .tlsFailed, .misconfigured, .libraryMissing:
                false
            }
        }
    }

    /// The outcome for `key`: a fresh entry's, or `probe`'s, shared with
    /// checks that arrive while it runs. Waiting for another check's probe
    /// ends halfway to `deadline`.
    func outcome(for key: CacheKey, before deadline: Deadline, probe: () -> Result<NodeState, ProbeFailure>) -> Answer {
        guard let directory = openDirectory() else { return Self.probing(probe, age: nil).answer }
        defer { close(directory) }
        let digest = key.digest
        if let fresh = freshEntry(in: directory, digest) { return fresh }
        let waitEnd = deadline.earlier(by: Milliseconds(deadline.remaining().value / 2))
        let lock: Int32
        switch self.lock(in: directory, digest, waitingUntil: waitEnd) {
        case .held(let file): lock = file
        // Probed for this check (age 0), and not written: another check holds the lock.
        case .busy: return Self.probing(probe, age: Milliseconds(0)).answer
        case .unusable: return Self.probing(probe, age: nil).answer
        }
        defer { close(lock) }
        if let fresh = freshEntry(in: directory, digest) { return fresh }
        let (answer, started) = Self.probing(probe, age: Milliseconds(0))
        if Self.shares(answer.outcome) {
            write(CacheEntry(key: digest, boot: BootClock.bootTime(), probed: started, probeDuration: answer.probeDuration,
                             outcome: answer.outcome), in: directory, digest)
        }
        prune(directory, keeping: digest)
        return answer
    }

    /// `probe`'s answer, timed, and when it started (``BootClock/now()``):
    /// what an entry is dated by.
    static func probing(_ probe: () -> Result<NodeState, ProbeFailure>, age: Milliseconds?) -> (answer: Answer, started: UInt64) {
        let started = BootClock.now()
        let outcome = probe()
        let duration = Milliseconds(Int((BootClock.now() - started) / 1_000_000))
        return (Answer(outcome: outcome, age: age, probeDuration: duration), started)
    }

    // MARK: Files

    /// Whether a directory with `status` is one the cache trusts: this
    /// user's, with no access for anyone else.
    static func isPrivate(_ status: stat) -> Bool {
        status.st_uid == geteuid() && status.st_mode & 0o077 == 0
    }

    /// The directory, made (mode 0700) if missing; nil, reported, when it is
    /// not a directory of this user's that no one else may enter.
    ///
    /// The path itself may be a symbolic link: systemd keeps a
    /// `RuntimeDirectory=` of a `DynamicUser=` unit that preserves it under
    /// `/run/private` and links `/run/pgsqlchk` there. What protects the
    /// entries is the directory that opens, whose owner and mode are checked;
    /// every file in it is opened without following links.
    private func openDirectory() -> Int32? {
        let flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC
        var directory = open(settings.directory, flags)
        if directory < 0, errno == ENOENT, mkdir(settings.directory, 0o700) == 0 || errno == EEXIST {
            directory = open(settings.directory, flags)
        }
        guard directory >= 0 else {
            report("result cache off: cannot open \(settings.directory): \(Errno.current)")
            return nil
        }
        var status = stat()
        guard fstat(directory, &status) == 0, Self.isPrivate(status) else {
            report("result cache off: \(settings.directory) must belong to uid \(geteuid()) with mode 0700")
            close(directory)
            return nil
        }
        return directory
    }

    /// The entry's answer if it is fresh; nil (reported when the file is
    /// suspect rather than merely missing or expired) otherwise.
    private func freshEntry(in directory: Int32, _ digest: String) -> Answer? {
        let name = digest + ".entry"
        let file = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard file >= 0 else {
            if errno != ENOENT { report("result cache: ignoring \(name): \(Errno.current)") }
            return nil
        }
        defer { close(file) }
        var status = stat()
        guard fstat(file, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_uid == geteuid(),
              status.st_size <= CacheEntry.maximumSize else {
            report("result cache: ignoring \(name): not a regular file of uid \(geteuid()) under \(CacheEntry.maximumSize) bytes")
            return nil
        }
        do {
            // One byte more than fstat() said: an entry that grew is cut short and corrupt.
            let bytes = try POSIX.readAll(from: file, limit: Int(status.st_size) + 1)
            let entry = try CacheEntry.decode(String(decoding: bytes, as: UTF8.self))
            let age = try entry.age(answering: digest, ttl: settings.ttl, now: BootClock.now(), boot: BootClock.bootTime())
            return Answer(outcome: entry.outcome, age: age, probeDuration: entry.probeDuration)
        } catch let error as CacheEntry.Problem {
            if error != .expired { report("result cache: ignoring \(name): \(error.description)") }
            return nil
        } catch {
            report("result cache: ignoring \(name): \(error)")
            return nil
        }
    }

    /// What came of trying to lock an entry.
    private enum Locking {
        /// The lock file, locked (exclusive).
        case held(Int32)
        /// Another check held it until the wait ended.
        case busy
        /// It cannot be made or locked: the cache is off for this check.
        case unusable
    }

    /// The lock file of `digest`, locked, retried every
    /// ``lockRetryInterval`` while another check holds it, until `waitEnd`.
    /// Every failure is reported.
    private func lock(in directory: Int32, _ digest: String, waitingUntil waitEnd: Deadline) -> Locking {
        guard var lock = openLock(in: directory, digest) else { return .unusable }
        while true {
            if POSIX.retryingInterrupted({ flock(lock, LOCK_EX | LOCK_NB) }) == 0 {
                // A pruning check may have removed the file between our open
                // and our lock: a lock on a file no longer named excludes no one.
                if isStillNamed(lock, digest + ".lock", in: directory) { return .held(lock) }
                close(lock)
                guard let reopened = openLock(in: directory, digest) else { return .unusable }
                lock = reopened
                continue
            }
            guard errno == EWOULDBLOCK else {
                report("result cache: cannot lock \(digest).lock: \(Errno.current)")
                close(lock)
                return .unusable
            }
            guard waitEnd.remaining().value > 0 else {
                report("result cache: another check has held \(digest).lock too long; probing without it")
                close(lock)
                return .busy
            }
            var pause = timespec(tv_sec: 0, tv_nsec: Self.lockRetryInterval.value * 1_000_000)
            nanosleep(&pause, nil)
        }
    }

    /// Whether `name` in `directory` is still the file open as `file`.
    private func isStillNamed(_ file: Int32, _ name: String, in directory: Int32) -> Bool {
        var open = stat()
        var named = stat()
        return fstat(file, &open) == 0 && fstatat(directory, name, &named, AT_SYMLINK_NOFOLLOW) == 0
            && open.st_dev == named.st_dev && open.st_ino == named.st_ino
    }

    /// Keeps the directory bounded, after a write (under `keeping`'s lock):
    /// removes every entry older than ``CacheSettings/maximumTTL`` (no TTL
    /// lets it answer), then the oldest beyond ``maximumEntries``, each with
    /// its lock and only while holding that lock (a check that holds it is
    /// probing: its files stay); a lock without an entry the same way; and
    /// a temporary file older than the maximum TTL, whose writer died.
    /// Ages are the files' modification times: wrong only after a step of
    /// the wall clock, which costs a probe. Files the cache does not name
    /// are left alone.
    private func prune(_ directory: Int32, keeping kept: String) {
        let now = Int(time(nil))
        let oldest = now - CacheSettings.maximumTTL.value / 1_000
        var written: [String: Int] = [:]
        var locked: Set<String> = []
        for name in POSIX.names(in: directory) {
            var status = stat()
            guard fstatat(directory, name, &status, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let modified = Int(status.st_mtim.tv_sec)
            if let digest = Self.digest(of: name, suffix: ".entry") {
                written[digest] = modified
            } else if let digest = Self.digest(of: name, suffix: ".lock") {
                locked.insert(digest)
            } else if name.hasSuffix(".new"), CacheKey.isDigest(name.prefix(16)), modified < oldest {
                unlinkat(directory, name, 0)
            }
        }
        written[kept] = nil
        locked.remove(kept)
        var doomed = Array(locked.subtracting(written.keys))
        let current = written.filter { $0.value >= oldest }.sorted { $0.value > $1.value }
        doomed += written.filter { $0.value < oldest }.map(\.key)
        doomed += current.dropFirst(Self.maximumEntries - 1).map(\.key)
        for digest in doomed {
            let lock = openat(directory, digest + ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600)
            guard lock >= 0 else { continue }
            defer { close(lock) }
            guard flock(lock, LOCK_EX | LOCK_NB) == 0, isStillNamed(lock, digest + ".lock", in: directory) else { continue }
            unlinkat(directory, digest + ".entry", 0)
            unlinkat(directory, digest + ".lock", 0)
        }
    }

    /// The digest `name` is the file of, if it is a digest and `suffix`.
    private static func digest(of name: String, suffix: String) -> String? {
        guard name.hasSuffix(suffix) else { return nil }
        let digest = name.dropLast(suffix.count)
        return CacheKey.isDigest(digest) ? String(digest) : nil
    }

    /// The lock file, made if missing; a symlink or another user's file in
    /// its place is removed first.
    private func openLock(in directory: Int32, _ digest: String) -> Int32? {
        let name = digest + ".lock"
        for _ in 0..<2 {
            let lock = openat(directory, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600)
            var status = stat()
            if lock >= 0, fstat(lock, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_uid == geteuid() {
                return lock
            }
            let problem = lock >= 0 ? "not a regular file of uid \(geteuid())" : Errno.current.description
            if lock >= 0 { close(lock) }
            report("result cache: replacing \(name): \(problem)")
            guard unlinkat(directory, name, 0) == 0 else { break }
        }
        report("result cache: cannot lock \(name); probing without the cache")
        return nil
    }

    /// Writes `entry` over the old one (``POSIX/replace(_:in:with:temporary:mode:durably:)``),
    /// so a reader sees the old entry or the new one, whole. Not synced: an
    /// entry lost in a crash costs one probe, a sync would cost every write.
    private func write(_ entry: CacheEntry, in directory: Int32, _ digest: String) {
        let bytes = Array(entry.encoded.utf8)
        guard bytes.count <= CacheEntry.maximumSize else {
            report("result cache: not writing \(digest).entry: \(bytes.count) bytes, over the \(CacheEntry.maximumSize)-byte limit that readers keep")
            return
        }
        let temporary = "\(digest).\(getpid()).new"
        do {
            try POSIX.replace(digest + ".entry", in: directory, with: bytes, temporary: temporary, mode: 0o600, durably: false)
        } catch {
            report("result cache: cannot write \(error.step == .creating ? temporary : digest + ".entry"): \(error.error)")
        }
    }
}
