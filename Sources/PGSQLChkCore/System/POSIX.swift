#if canImport(Glibc)
import Glibc
#endif

/// The habits every system call of the check needs, written once (as
/// swift-nio's `System.swift` does): restart after a signal, finish a short
/// read or write, replace a file atomically, and say what an `errno` means.
/// Each caller still decides what a failure means for it and words it.
enum POSIX {
    /// Calls `call` again for as long as it fails with `EINTR`: a signal
    /// that interrupted it says nothing about the call. Returns the last
    /// result; `errno` is that call's.
    static func retryingInterrupted<Value: BinaryInteger>(_ call: () -> Value) -> Value {
        while true {
            let result = call()
            if result >= 0 || errno != EINTR { return result }
        }
    }

    /// What one `read()` of at most `count` bytes returned: empty at end of
    /// file (or when the peer closed). (C: `read`.)
    static func readSome(from descriptor: Int32, upTo count: Int) throws(Errno) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let received = buffer.withUnsafeMutableBytes { bytes in
            retryingInterrupted { Glibc.read(descriptor, bytes.baseAddress, count) }
        }
        guard received >= 0 else { throw .current }
        return Array(buffer[..<received])
    }

    /// Everything `descriptor` holds up to end of file, but no more than
    /// `limit` bytes: a caller that must tell "too long" passes one more
    /// byte than it accepts. (C: `read` until it returns 0.)
    static func readAll(from descriptor: Int32, limit: Int) throws(Errno) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: limit)
        var count = 0
        while count < limit {
            let received = bytes.withUnsafeMutableBytes { buffer in
                retryingInterrupted { Glibc.read(descriptor, buffer.baseAddress! + count, limit - count) }
            }
            guard received >= 0 else { throw .current }
            if received == 0 { break }
            count += received
        }
        bytes.removeSubrange(count...)
        return bytes
    }

    /// Writes all of `bytes`, continuing after a short write and after
    /// signals. A write that makes no progress fails as `EIO` rather than
    /// spinning. (C: `write` until all is written.)
    static func writeAll(_ bytes: [UInt8], to descriptor: Int32) throws(Errno) {
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in
                retryingInterrupted { Glibc.write(descriptor, buffer.baseAddress! + written, buffer.count - written) }
            }
            guard result >= 0 else { throw .current }
            guard result > 0 else { throw Errno(EIO) }
            written += result
        }
    }

    /// Why ``replace(_:in:with:temporary:mode:durably:)`` failed.
    struct ReplaceFailure: Error, Equatable {
        enum Step: Equatable {
            /// Making the temporary file.
            case creating
            /// Writing it.
            case writing
            /// Syncing it (when durable).
            case syncing
            /// Renaming it over the file.
            case renaming
        }

        var step: Step
        var error: Errno
    }

    /// Replaces `name` in `directory` with `bytes`, so that a reader sees
    /// the old file or the new one, whole, never a part: a new file
    /// `temporary` (`O_EXCL`, never through a link; one this process's pid
    /// left behind, whose writer died before its rename, is removed first),
    /// written in full, then renamed over `name`. `rename()` replaces a link
    /// or another user's file in `name`'s place without following or
    /// opening it. When `durably`, the file is synced before the rename and
    /// the directory after it, so the new file survives a crash of the
    /// machine. The temporary file is removed on failure.
    /// (C: `openat`, `write`, `fsync`, `renameat`.)
    static func replace(_ name: String, in directory: Int32, with bytes: [UInt8], temporary: String,
                        mode: mode_t, durably: Bool) throws(ReplaceFailure) {
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
        var file = openat(directory, temporary, flags, mode)
        if file < 0, errno == EEXIST {
            unlinkat(directory, temporary, 0)
            file = openat(directory, temporary, flags, mode)
        }
        guard file >= 0 else { throw ReplaceFailure(step: .creating, error: .current) }
        var failure: ReplaceFailure?
        do {
            try writeAll(bytes, to: file)
        } catch {
            failure = ReplaceFailure(step: .writing, error: error)
        }
        if failure == nil, durably, fsync(file) != 0 { failure = ReplaceFailure(step: .syncing, error: .current) }
        close(file)
        if failure == nil, renameat(directory, temporary, directory, name) != 0 {
            failure = ReplaceFailure(step: .renaming, error: .current)
        }
        if let failure {
            unlinkat(directory, temporary, 0)
            throw failure
        }
        // The rename is done; a directory that cannot be synced only makes
        // it less durable, which no caller could act on.
        if durably { fsync(directory) }
    }

    /// The text of a `getaddrinfo` error code (`EAI_*`, not an `errno`).
    /// (C: `gai_strerror`.)
    static func lookupErrorText(_ status: Int32) -> String { String(cString: gai_strerror(status)) }

    /// The names in the directory at `path`, but `.` and `..`; empty when it
    /// cannot be read. (C: `opendir`, `readdir`.)
    static func names(inDirectoryAt path: String) -> [String] {
        opendir(path).map(names(reading:)) ?? []
    }

    /// The names in the open `directory`, read through a duplicate
    /// descriptor so that `directory` stays open and where it was.
    /// (C: `fdopendir` of a `dup`, `rewinddir`, `readdir`.)
    static func names(in directory: Int32) -> [String] {
        let duplicate = dup(directory)
        guard duplicate >= 0 else { return [] }
        guard let stream = fdopendir(duplicate) else {
            close(duplicate)
            return []
        }
        rewinddir(stream)
        return names(reading: stream)
    }

    /// Reads `stream` to its end and closes it.
    private static func names(reading stream: OpaquePointer) -> [String] {
        defer { closedir(stream) }
        var names: [String] = []
        while let item = readdir(stream) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }
}

/// A failed system call's `errno`, whose description is the C library's
/// text for it ("No such file or directory"). (C: `strerror`.)
struct Errno: Error, Equatable, CustomStringConvertible {
    var code: Int32

    init(_ code: Int32) { self.code = code }

    /// The calling thread's `errno` now.
    static var current: Errno { Errno(errno) }

    var description: String { String(cString: strerror(code)) }
}
