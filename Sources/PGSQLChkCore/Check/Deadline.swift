#if canImport(Glibc)
import Glibc
#endif

/// One monotonic budget for the whole check: connect, log in, query, write.
///
/// Wall-clock jumps (NTP, an admin's `date -s`) cannot stretch or cut it.
/// (C: `clock_gettime(CLOCK_MONOTONIC)`.)
struct Deadline: Comparable, Sendable {
    /// The moment the budget runs out, in nanoseconds of the monotonic clock.
    let expiry: UInt64

    /// A deadline `budget` after `start`.
    init(after budget: Milliseconds, from start: UInt64 = Deadline.now()) {
        expiry = start + UInt64(max(budget.value, 0)) * 1_000_000
    }

    /// A deadline `amount` earlier than this one.
    func earlier(by amount: Milliseconds) -> Deadline {
        Deadline(expiry: expiry - min(expiry, UInt64(max(amount.value, 0)) * 1_000_000))
    }

    static func < (lhs: Deadline, rhs: Deadline) -> Bool {
        lhs.expiry < rhs.expiry
    }

    private init(expiry: UInt64) {
        self.expiry = expiry
    }

    /// Now, in nanoseconds of the monotonic clock.
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// What is left, rounded up to a whole millisecond so that a caller waiting
    /// for it never spins on a zero timeout while a fraction remains.
    func remaining(at now: UInt64 = Deadline.now()) -> Milliseconds {
        guard now < expiry else { return Milliseconds(0) }
        return Milliseconds(Int((expiry - now + 999_999) / 1_000_000))
    }

    /// The smaller of what is left and `limit`.
    func remaining(atMost limit: Milliseconds, at now: UInt64 = Deadline.now()) -> Milliseconds {
        min(remaining(at: now), limit)
    }
}

/// What waiting on a descriptor came to.
enum Readiness: Equatable, Sendable {
    /// Ready, with `poll()`'s `revents`.
    case ready(events: Int16)
    /// The deadline passed first.
    case timedOut
    /// `poll()` failed with this `errno`.
    case failed(errno: Int32)
}

extension Deadline {
    /// Waits until `descriptor` is ready for `events`, restarting after
    /// signals, but never past this deadline. (C: `poll()`.)
    func wait(for events: Int16, on descriptor: Int32) -> Readiness {
        var request = pollfd(fd: descriptor, events: events, revents: 0)
        let ready = POSIX.retryingInterrupted { () -> Int32 in
            let left = remaining()
            return left.value > 0 ? poll(&request, 1, Int32(left.value)) : 0
        }
        if ready > 0 { return .ready(events: request.revents) }
        if ready == 0 { return .timedOut }
        return .failed(errno: errno)
    }
}
