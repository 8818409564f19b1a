/// The token window of docs/rate-limits.md "Tokens": like `AdmissionLog`, a ring of the
/// admissions of the last minute, each with the tokens it holds (its reservation, settled later to
/// what the response reported) and a sequence number that finds it again. A request reserving `n`
/// is admitted when the window's tokens plus `n` stay within the limit.
///
/// A value over storage it does not own (three Int64 per entry: instant, tokens, sequence), as
/// `AdmissionLog`.
public struct TokenLog {
    public var head: Int
    public var count: Int
    /// Tokens held by the entries in the ring.
    public var total: Int64
    /// The sequence number the next entry gets.
    public var nextSequence: Int64
    public let entries: UnsafeMutableBufferPointer<Int64>

    public init(head: Int, count: Int, total: Int64, nextSequence: Int64, entries: UnsafeMutableBufferPointer<Int64>) {
        self.entries = entries
        let capacity = entries.count / 3
        self.head = capacity == 0 ? 0 : min(max(head, 0), capacity - 1)
        self.count = min(max(count, 0), capacity)
        self.total = max(total, 0)
        self.nextSequence = max(nextSequence, 0)
    }

    public var capacity: Int { entries.count / 3 }

    private func slot(_ index: Int) -> Int { 3 * ((head + index) % capacity) }
    public func instant(_ index: Int) -> Int64 { entries[slot(index)] }
    public func tokens(_ index: Int) -> Int64 { entries[slot(index) + 1] }

    public mutating func expire(now: Int64, window: Int64) {
        let horizon = now - window
        var dropped = 0
        var freed: Int64 = 0
        while dropped < count, instant(dropped) <= horizon {
            freed += tokens(dropped)
            dropped += 1
        }
        guard dropped > 0 else { return }
        head = (head + dropped) % capacity
        count -= dropped
        total = count == 0 ? 0 : max(total - freed, 0)
    }

    /// `reserve` more tokens fit under `limit` now (call `expire` first), and the ring has a slot.
    public func hasRoom(_ reserve: Int64, limit: Int64) -> Bool { count < capacity && total + reserve <= limit }

    /// Records `reserve` tokens at `now`; returns the entry's sequence number, for `settle`.
    public mutating func append(_ now: Int64, reserve: Int64) -> Int64 {
        precondition(count < capacity, "TokenLog.append without room")
        let at = slot(count)
        let sequence = nextSequence
        entries[at] = now
        entries[at + 1] = reserve
        entries[at + 2] = sequence
        count += 1
        total += reserve
        nextSequence += 1
        return sequence
    }

    /// The entry `sequence` now holds `tokens` instead of its reservation (nothing when it has
    /// left the window already).
    public mutating func settle(_ sequence: Int64, tokens: Int64) {
        guard count > 0 else { return }
        let first = entries[slot(0) + 2]
        let index = sequence - first
        guard index >= 0, index < Int64(count) else { return }
        let at = slot(Int(index))
        guard entries[at + 2] == sequence else { return }
        total = max(total - entries[at + 1] + tokens, 0)
        entries[at + 1] = tokens
    }

    /// How long until `reserve` more tokens fit under `limit`: the oldest entries whose expiry
    /// frees enough. nil when they never can (`reserve` alone exceeds the limit).
    public func waitUntilRoom(_ reserve: Int64, limit: Int64, now: Int64, window: Int64) -> Int64? {
        guard reserve <= limit else { return nil }
        var remaining = total
        var index = 0
        while index < count, remaining + reserve > limit || index < count - capacity + 1 {
            remaining -= tokens(index)
            index += 1
        }
        guard index > 0 else { return 0 }
        return max(instant(index - 1) + window - now, 0)
    }
}
