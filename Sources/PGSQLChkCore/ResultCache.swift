#if canImport(Glibc)
import Glibc
#endif

/// Lets concurrent checks of one node share one probe (README, "Result cache").
///
/// Per ``CacheKey`` the directory holds `DIGEST.entry` (a ``CacheEntry``) and
/// `DIGEST.lock`. A check:
/// 1. answers from a fresh entry: younger than the TTL, of this key and boot,
///    owned by this user; libpq is never loaded;
/// 2. otherwise takes the lock (`flock`, exclusive), looks at the entry again
///    (a holder may just have written it), and if it is still missing or
///    stale probes, writes the entry (a new file, then `rename()`) and
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

    let settings: CacheSettings
    let report: (String) -> Void

    /// What answers the check, and how old it is (zero when probed now).
    struct Answer {
        var outcome: Result<NodeState, ProbeFailure>
        var age: Milliseconds
    }

    /// The outcome for `key`: a fresh entry's, or `probe`'s, shared with
    /// checks that arrive while it runs. Waiting for another check's probe
    /// ends halfway to `deadline`.
    func outcome(for key: CacheKey, before deadline: Deadline, probe: () -> Result<NodeState, ProbeFailure>) -> Answer {
        guard let directory = openDirectory() else { return Answer(outcome: probe(), age: Milliseconds(0)) }
        defer { close(directory) }
        let digest = key.digest
        if let fresh = freshEntry(in: directory, digest) { return fresh }
        guard let lock = openLock(in: directory, digest) else { return Answer(outcome: probe(), age: Milliseconds(0)) }
        defer { close(lock) }
        let waitEnd = deadline.earlier(by: Milliseconds(deadline.remaining().value / 2))
        while true {
            if flock(lock, LOCK_EX | LOCK_NB) == 0 {
                if let fresh = freshEntry(in: directory, digest) { return fresh }
                let outcome = probe()
                write(CacheEntry(key: digest, boot: BootClock.bootTime(), probed: BootClock.now(), outcome: outcome),
                      in: directory, digest)
                return Answer(outcome: outcome, age: Milliseconds(0))
            }
            guard errno == EWOULDBLOCK || errno == EINTR else {
                report("result cache: cannot lock \(digest).lock: \(String(cString: strerror(errno)))")
                break
            }
            guard waitEnd.remaining().value > 0 else {
                report("result cache: another check has held \(digest).lock too long; probing without it")
                break
            }
            var pause = timespec(tv_sec: 0, tv_nsec: Self.lockRetryInterval.value * 1_000_000)
            nanosleep(&pause, nil)
        }
        return Answer(outcome: probe(), age: Milliseconds(0))
    }

    // MARK: Files

    /// The directory, made (mode 0700) if missing; nil, reported, when it is
    /// not a directory of this user's that no one else may enter.
    private func openDirectory() -> Int32? {
        let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
        var directory = open(settings.directory, flags)
        if directory < 0, errno == ENOENT, mkdir(settings.directory, 0o700) == 0 || errno == EEXIST {
            directory = open(settings.directory, flags)
        }
        guard directory >= 0 else {
            report("result cache off: cannot open \(settings.directory): \(String(cString: strerror(errno)))")
            return nil
        }
        var status = stat()
        guard fstat(directory, &status) == 0, status.st_uid == geteuid(), status.st_mode & 0o077 == 0 else {
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
            if errno != ENOENT { report("result cache: ignoring \(name): \(String(cString: strerror(errno)))") }
            return nil
        }
        defer { close(file) }
        var status = stat()
        guard fstat(file, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_uid == geteuid(),
              status.st_size <= CacheEntry.maximumSize else {
            report("result cache: ignoring \(name): not a regular file of uid \(geteuid()) under \(CacheEntry.maximumSize) bytes")
            return nil
        }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size) + 1)
        var count = 0
        while count < bytes.count {
            let received = bytes.withUnsafeMutableBytes { read(file, $0.baseAddress! + count, $0.count - count) }
            if received < 0, errno == EINTR { continue }
            guard received > 0 else { break }
            count += received
        }
        do {
            let entry = try CacheEntry.decode(String(decoding: bytes[..<count], as: UTF8.self))
            let age = try entry.age(answering: digest, ttl: settings.ttl, now: BootClock.now(), boot: BootClock.bootTime())
            return Answer(outcome: entry.outcome, age: age)
        } catch .expired {
            return nil
        } catch {
            report("result cache: ignoring \(name): \(error.description)")
            return nil
        }
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
            let problem = lock >= 0 ? "not a regular file of uid \(geteuid())" : String(cString: strerror(errno))
            if lock >= 0 { close(lock) }
            report("result cache: replacing \(name): \(problem)")
            guard unlinkat(directory, name, 0) == 0 else { break }
        }
        report("result cache: cannot lock \(name); probing without the cache")
        return nil
    }

    /// Writes `entry` to a new file, then renames it over the entry, so a
    /// reader sees the old entry or the new one, whole. rename() replaces a
    /// symlink or another user's file in the entry's place without following
    /// or opening it.
    private func write(_ entry: CacheEntry, in directory: Int32, _ digest: String) {
        let bytes = Array(entry.encoded.utf8)
        guard bytes.count <= CacheEntry.maximumSize else {
            report("result cache: not writing \(digest).entry: \(bytes.count) bytes, over the \(CacheEntry.maximumSize)-byte limit that readers keep")
            return
        }
        let temporary = "\(digest).\(getpid()).new"
        var file = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if file < 0, errno == EEXIST {
            // Left by a check with this pid that died before its rename().
            unlinkat(directory, temporary, 0)
            file = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        }
        guard file >= 0 else {
            report("result cache: cannot write \(temporary): \(String(cString: strerror(errno)))")
            return
        }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { Glibc.write(file, $0.baseAddress! + written, $0.count - written) }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else { break }
            written += result
        }
        close(file)
        guard written == bytes.count, renameat(directory, temporary, directory, digest + ".entry") == 0 else {
            report("result cache: cannot write \(digest).entry: \(String(cString: strerror(errno)))")
            unlinkat(directory, temporary, 0)
            return
        }
    }
}
