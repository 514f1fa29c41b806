#if canImport(Glibc)
import Glibc
#endif

/// What the drain file says, read once per check before anything else can
/// go wrong, so that every answer (the backstop's too) reflects it.
///
/// | the path                                   | state      | routing            |
/// |--------------------------------------------|------------|--------------------|
/// | missing (or its directory is)              | absent     | by role            |
/// | exists, after following links              | present    | 404 `maintenance`  |
/// | a symbolic link to nothing                 | absent     | by role, logged    |
/// | cannot be looked at (EACCES, ENOTDIR, ...) | unreadable | by role, logged    |
///
/// A link to nothing is absent because that is how a link to a shared flag
/// file ends a drain: the flag is removed, the link stays. A path that cannot
/// be looked at is a configuration error; it routes by role rather than
/// draining or failing, because the same mistake on every node (a drain
/// directory the check's user cannot search) would otherwise take the whole
/// cluster out. It is reported on every check and in `/status`.
enum DrainState: Equatable, Sendable {
    case absent
    case present
    case unreadable(reason: String)

    /// Looks at `path`; `report` hears of a link to nothing and of an
    /// unreadable path. (C: `stat`, `lstat`.)
    static func read(path: String, report: (String) -> Void) -> DrainState {
        var status = stat()
        if stat(path, &status) == 0 { return .present }
        let error = errno
        guard error == ENOENT else {
            let reason = "drain file \(path) cannot be checked: \(Errno(error))"
            report(reason + "; routing as if it were absent")
            return .unreadable(reason: reason)
        }
        if lstat(path, &status) == 0 {
            report("drain file \(path) is a symbolic link to nothing: not draining")
        }
        return .absent
    }

    /// Whether the file could be looked at.
    var isKnown: Bool {
        if case .unreadable = self { return false }
        return true
    }

    /// Why the file could not be looked at, if it could not.
    var reason: String? {
        if case .unreadable(let reason) = self { return reason }
        return nil
    }
}
