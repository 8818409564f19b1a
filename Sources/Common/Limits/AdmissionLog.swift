/// The exact sliding window of docs/rate-limits.md "The algorithm": the instants of the
/// admissions of the last `window`, oldest first, in a ring of `entries.count` slots. A request
/// is admitted at `now` when fewer than `limit` admissions are later than `now − window`; its
/// instant is then appended. So no 60-second window ever holds more than `limit` admissions, and
/// no request is refused while one holds fewer (a token bucket or GCRA keeps neither promise).
///
/// A value over storage it does not own: the ring lives in the shared segment (guarded by that
/// limit's mutex) or, in tests, in a buffer of their own, with explicit instants.
public struct AdmissionLog {
    /// Index of the oldest admission.
    public var head: Int
    /// Admissions in the ring.
    public var count: Int
    public let entries: UnsafeMutableBufferPointer<Int64>

    @inlinable public init(head: Int, count: Int, entries: UnsafeMutableBufferPointer<Int64>) {
        self.entries = entries
        // Clamped: after a holder died mid-update (its lock taken over, docs/rate-limits.md "Locking") the two numbers
        // may be from different moments; within the ring they are always safe to read.
        let capacity = entries.count
        // Both within the ring (the usual case) by two unsigned comparisons, the clamp only
        // otherwise: it is the same for numbers within the ring (~10 instructions per admission).
        if UInt(bitPattern: head) < UInt(bitPattern: capacity), UInt(bitPattern: count) <= UInt(bitPattern: capacity) {
            self.head = head
            self.count = count
        } else {
            self.head = capacity == 0 ? 0 : min(max(head, 0), capacity - 1)
            self.count = min(max(count, 0), capacity)
        }
    }

    @inlinable public var capacity: Int { entries.count }

    /// The `index`-th oldest admission (0 = oldest).
    @inlinable public func instant(_ index: Int) -> Int64 { entries[(head + index) % capacity] }

    /// Forgets the admissions that are `window` or more old.
    @inlinable @inline(__always)
    public mutating func expire(now: Int64, window: Int64) {
        let horizon = now - window
        // The usual case first: the oldest admission still counts (`head` is within the ring),
        // so nothing is dropped and no index is divided out.
        guard count > 0, entries[head] <= horizon else { return }
        var dropped = 1
        while dropped < count, instant(dropped) <= horizon { dropped += 1 }
        head = (head + dropped) % capacity
        count -= dropped
    }

    /// An admission under `limit` fits now (call `expire` first). The ring's size bounds it too:
    /// a region made for a smaller limit never overflows.
    @inlinable public func hasRoom(limit: Int) -> Bool { count < min(limit, capacity) }

    /// Records an admission at `now` (after `hasRoom`): instants are appended in lock order,
    /// which is time order, since every process reads one monotonic clock inside the lock.
    @inlinable public mutating func append(_ now: Int64) {
        precondition(count < capacity, "AdmissionLog.append without room")
        // `head` and `count` are both below the capacity: one wrap at most, no division.
        let slot = head + count
        entries[slot < capacity ? slot : slot - capacity] = now
        count += 1
    }

    /// How long until a request under `limit` would be admitted: the admission whose expiry
    /// leaves `limit − 1` in the window must expire first. 0 when there is room now.
    public func waitUntilRoom(limit: Int, now: Int64, window: Int64) -> Int64 {
        let effective = min(limit, capacity)
        guard count >= effective else { return 0 }
        let mustExpire = count - effective
        return max(instant(mustExpire) + window - now, 0)
    }

    /// Until the window is empty again (the `x-ratelimit-reset-*` of an admitted request is
    /// when its oldest admission expires): 0 for an empty window.
    public func untilOldestExpires(now: Int64, window: Int64) -> Int64 {
        count == 0 ? 0 : max(instant(0) + window - now, 0)
    }
}
