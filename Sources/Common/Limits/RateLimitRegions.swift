import CLinux

/// One requests log in the segment (docs/rate-limits.md "Memory": 128 bytes + 8 per unit of the
/// limit):
///
///     0    capacity
///     8    moved (atomic; 0 while current, 1 once a larger log replaced it: the directory names that one)
///     16   head, 24 count (under the mutex)
///     64   the process-shared lock that survives its holder's death (`fluxgate_robust_mutex_lock`)
///     128  capacity × Int64 admission instants (CLOCK_MONOTONIC nanoseconds)
public struct RequestLogRegion {
    let segment: RateLimitSegment
    let entry: Int
    /// A slot of a `SubjectRequestsTable` (the directory entry names the table), or -1.
    var slot = -1

    static func bytes(capacity: Int) -> Int { 128 + 8 * capacity }

    static func initialize(_ region: UnsafeMutableRawPointer, capacity: Int) {
        region.assumingMemoryBound(to: Int64.self).pointee = Int64(capacity)
        precondition(fluxgate_mutex_size() <= 64 && fluxgate_robust_mutex_init(region + 64) == 0, "robust mutex")
    }

    /// Copies `old`'s window into `new` under `old`'s lock, then marks `old` moved (and lets the
    /// directory point at `new`, in `publish`) before unlocking: a worker that locks `old` later
    /// sees the mark and follows.
    static func move(from old: UnsafeMutableRawPointer, to new: UnsafeMutableRawPointer, publish: () -> Void) {
        _ = fluxgate_robust_mutex_lock(old + 64)
        defer { fluxgate_robust_mutex_unlock(old + 64) }
        let source = view(old)
        var target = view(new)
        for index in 0..<source.count { target.append(source.instant(index)) }
        store(target, in: new)
        publish()
        fluxgate_atomic_store((old + 8).assumingMemoryBound(to: Int64.self), 1)
    }

    @inlinable @inline(__always)
    static func view(_ region: UnsafeMutableRawPointer) -> AdmissionLog {
        let words = region.assumingMemoryBound(to: Int64.self)
        let entries = UnsafeMutableBufferPointer(start: (region + 128).assumingMemoryBound(to: Int64.self), count: Int(words[0]))
        return AdmissionLog(head: Int(words[2]), count: Int(words[3]), entries: entries)
    }

    @inlinable static func store(_ log: AdmissionLog, in region: UnsafeMutableRawPointer) {
        let words = region.assumingMemoryBound(to: Int64.self)
        // Count before head: a holder dying between the two loses at most one admission's
        // record (docs/rate-limits.md "Locking"), never reads outside the ring.
        words[3] = Int64(log.count)
        words[2] = Int64(log.head)
    }

    /// Locks the current log and returns it (follows a move made by a reload).
    public func lock() -> LockedRequestLog {
        guard slot < 0 else {
            while true {
                let region = SubjectRequestsTable.slotRegion(segment.base + segment.regionOffset(entry: entry), slot: slot)
                if let locked = Self.lockUnlessMoved(region) { return locked }
            }
        }
        return Self.lock(segmentBase: segment.base, entry: entry)
    }

    /// The segment's base address, for `lock(segmentBase:entry:)`: the segment must outlive
    /// every use of it (the configuration's limits keep it).
    public var segmentBase: UnsafeMutableRawPointer { segment.base }
    /// This log's directory entry; nil for a subject's slot.
    public var directoryEntry: Int? { slot < 0 ? entry : nil }
    /// Where the segment's directory keeps this log's region offset (`regionOffset(entry:)`),
    /// for `lock(segmentBase:offsetWord:)`.
    public var regionOffsetWord: UnsafeMutablePointer<Int64> { segment.regionOffsetWord(entry: entry) }

    /// `lock()` of the log at directory `entry` of the segment at `segmentBase`, from plain
    /// words (a stage that keeps them per configuration snapshot retains no segment per request).
    public static func lock(segmentBase: UnsafeMutableRawPointer, entry: Int) -> LockedRequestLog {
        lock(
            segmentBase: segmentBase,
            offsetWord: (segmentBase + RateLimitSegment.directoryOffset + entry * RateLimitSegment.entryBytes + 16)
                .assumingMemoryBound(to: Int64.self))
    }

    /// The same, with the directory's word for the entry's region offset (`regionOffsetWord`)
    /// also kept: inlined into the caller, no call per request (`@inline(__always)`: the
    /// specialisation alone was still called, ~15 instructions, docs/performance.md "gateway7").
    @inlinable @inline(__always) public static func lock(
        segmentBase: UnsafeMutableRawPointer, offsetWord: UnsafeMutablePointer<Int64>
    ) -> LockedRequestLog {
        while true {
            if let locked = lockUnlessMoved(segmentBase + Int(fluxgate_atomic_load(offsetWord))) { return locked }
        }
    }

    /// The log at `region` locked, or nil (unlocked again) when a reload moved it.
    @inlinable static func lockUnlessMoved(_ region: UnsafeMutableRawPointer) -> LockedRequestLog? {
        _ = fluxgate_robust_mutex_lock(region + 64)
        if fluxgate_atomic_load((region + 8).assumingMemoryBound(to: Int64.self)) == 0 {
            return LockedRequestLog(region: region, log: Self.view(region))
        }
        fluxgate_robust_mutex_unlock(region + 64)
        return nil
    }
}

/// A requests log while its lock is held: change `log`, then `unlock` (which stores it).
public struct LockedRequestLog {
    @usableFromInline let region: UnsafeMutableRawPointer
    public var log: AdmissionLog

    @inlinable init(region: UnsafeMutableRawPointer, log: AdmissionLog) {
        self.region = region
        self.log = log
    }

    @inlinable public func unlock() {
        RequestLogRegion.store(log, in: region)
        fluxgate_robust_mutex_unlock(region + 64)
    }
}

/// One `max_in_flight` counter: the total (offset 0, its own cache line) and, as in
/// `InFlightSegment`, what each worker process holds in its cell (offset 64 + 8·cell), so the
/// master can give back a crashed worker's requests.
public struct InFlightRegion {
    static let bytes = 64 + 8 * InFlightSegment.cellCount
    let base: UnsafeMutableRawPointer

    private var total: UnsafeMutablePointer<Int64> { base.assumingMemoryBound(to: Int64.self) }
    private func cell(_ index: Int) -> UnsafeMutablePointer<Int64> {
        (base + 64 + 8 * index).assumingMemoryBound(to: Int64.self)
    }

    /// Adds to the total first (sequentially consistent: of k+1 concurrent takers the last sees
    /// all k+1), then to the worker's cell.
    public func tryAcquire(limit: Int, cell index: Int) -> Bool {
        guard fluxgate_atomic_add(total, 1) <= Int64(limit) else {
            fluxgate_atomic_add(total, -1)
            return false
        }
        fluxgate_atomic_add(cell(index), 1)
        return true
    }

    public func release(cell index: Int) {
        fluxgate_atomic_add(cell(index), -1)
        fluxgate_atomic_add(total, -1)
    }

    public var current: Int { Int(fluxgate_atomic_load(total)) }

    func reset(cell index: Int) {
        let held = fluxgate_atomic_load(cell(index))
        guard held != 0 else { return }
        fluxgate_atomic_store(cell(index), 0)
        fluxgate_atomic_add(total, -held)
    }
}

/// One `tokens_per_minute` log (docs/rate-limits.md "Memory"): never moved, since its size does
/// not depend on the limit.
///
///     0    capacity (entries), 16 head, 24 count, 32 total tokens, 40 next sequence
///     64   the process-shared lock that survives its holder's death (`fluxgate_robust_mutex_lock`)
///     128  capacity × (instant, tokens, sequence)
public struct TokenLogRegion {
    /// Admissions of one minute a token limit can hold: 65,536 (1.5 MiB, touched as used).
    public static let capacity = 65_536
    static let bytes = 128 + 24 * capacity
    let region: UnsafeMutableRawPointer

    static func initialize(_ region: UnsafeMutableRawPointer, capacity: Int = capacity) {
        region.assumingMemoryBound(to: Int64.self).pointee = Int64(capacity)
        precondition(fluxgate_robust_mutex_init(region + 64) == 0, "robust mutex")
    }

    public func lock() -> LockedTokenLog {
        _ = fluxgate_robust_mutex_lock(region + 64)
        let words = region.assumingMemoryBound(to: Int64.self)
        let entries = UnsafeMutableBufferPointer(
            start: (region + 128).assumingMemoryBound(to: Int64.self), count: 3 * Int(words[0]))
        return LockedTokenLog(
            region: region,
            log: TokenLog(head: Int(words[2]), count: Int(words[3]), total: words[4], nextSequence: words[5], entries: entries))
    }
}

/// A token log while its lock is held: change `log`, then `unlock` (which stores it).
public struct LockedTokenLog {
    let region: UnsafeMutableRawPointer
    public var log: TokenLog

    public func unlock() {
        let words = region.assumingMemoryBound(to: Int64.self)
        words[3] = Int64(log.count)
        words[2] = Int64(log.head)
        words[4] = log.total
        words[5] = log.nextSequence
        fluxgate_robust_mutex_unlock(region + 64)
    }
}
