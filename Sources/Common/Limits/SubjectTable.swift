import CLinux

/// The per-subject limits of one JWT key (docs/rate-limits.md "JWT keys"): a fixed table of
/// `slots` subjects, each with its own `max_in_flight` counter and token log here, and its own
/// requests log in the key's subject requests table (`SubjectRequestsTable`), which a reload that
/// raises `requests_per_minute` may move. Subjects are found by a 128-bit digest of `sub` with
/// linear probing over at most `probes` slots, under the table's process-shared lock (`fluxgate_robust_mutex_lock`: it survives its holder's death).
///
/// Bounded: a slot is reused for another subject once it is idle — looked up last a full window
/// ago and with nothing in flight — so its windows are empty and nothing is lost. When every slot
/// probed is live, the subject is not placed (`nil`): the caller counts the request under the
/// JWT key's own limits, shared with the tokens that have no `sub`; never unlimited.
///
///     0      slots, 8 token capacity per slot
///     64     the process-shared lock (claims; the master's moves of the requests table)
///     128    slots × (digest 16 bytes, last lookup instant 8, in use 8)
///     then   slots × stride: in-flight counter (`InFlightRegion`), token log (`TokenLogRegion`)
public struct SubjectTable {
    public static let slots = 4096
    public static let probes = 64
    public static let tokenCapacity = 1024
    static let stride = InFlightRegion.bytes + 128 + 24 * tokenCapacity
    static let slotsOffset = (128 + 32 * slots + 63) & ~63
    static let bytes = slotsOffset + slots * stride

    let base: UnsafeMutableRawPointer

    public init(base: UnsafeMutableRawPointer) { self.base = base }

    static func initialize(_ region: UnsafeMutableRawPointer) {
        let words = region.assumingMemoryBound(to: Int64.self)
        words[0] = Int64(slots)
        words[1] = Int64(tokenCapacity)
        precondition(fluxgate_robust_mutex_init(region + 64) == 0, "robust mutex")
    }

    private func header(_ slot: Int) -> UnsafeMutablePointer<Int64> {
        (base + 128 + 32 * slot).assumingMemoryBound(to: Int64.self)
    }

    public func inFlight(slot: Int) -> InFlightRegion {
        InFlightRegion(base: base + Self.slotsOffset + slot * Self.stride)
    }

    public func tokens(slot: Int) -> TokenLogRegion {
        TokenLogRegion(region: base + Self.slotsOffset + slot * Self.stride + InFlightRegion.bytes)
    }

    /// The digest a slot is found by: the first 128 bits of SHA-256(`sub`), never zero (zero is
    /// an empty slot).
    public struct Digest: Equatable, Sendable {
        public var high: Int64
        public var low: Int64
        public init(sha256 bytes: [UInt8]) {
            var high: Int64 = 0
            var low: Int64 = 0
            for index in 0..<8 {
                high = high << 8 | Int64(bytes[index])
                low = low << 8 | Int64(bytes[8 + index])
            }
            self.high = high | 1
            self.low = low
        }
    }

    /// The slot of `digest`, claimed for it when it has none (`requests`: the key's subject
    /// requests table, whose slot is made ready too); nil when every probed slot is live.
    public func slot(for digest: Digest, now: Int64, window: Int64, requests: SubjectRequestsTable?) -> Int? {
        _ = fluxgate_robust_mutex_lock(base + 64)
        defer { fluxgate_robust_mutex_unlock(base + 64) }
        let start = Int(UInt64(bitPattern: digest.low) % UInt64(Self.slots))
        var empty: Int?
        var idle: Int?
        for probe in 0..<Self.probes {
            let slot = (start + probe) % Self.slots
            let words = header(slot)
            if words[0] == digest.high, words[1] == digest.low {
                words[2] = now
                return slot
            }
            if words[0] == 0 {
                empty = slot
                break  // Slots are never emptied again: nothing of this digest lies further on.
            }
            if idle == nil, words[2] <= now - window, inFlight(slot: slot).current == 0 { idle = slot }
        }
        guard let chosen = empty ?? idle else { return nil }
        let words = header(chosen)
        if words[3] == 0 {
            TokenLogRegion.initialize(tokens(slot: chosen).region, capacity: Self.tokenCapacity)
            words[3] = 1
        }
        requests?.prepare(slot: chosen)
        words[0] = digest.high
        words[1] = digest.low
        words[2] = now
        return chosen
    }

    /// The slots in use (for the master's in-flight reset of a dead worker).
    func forEachUsedSlot(_ body: (Int) -> Void) {
        for slot in 0..<Self.slots where header(slot)[3] != 0 { body(slot) }
    }

    func withLock<T>(_ body: () -> T) -> T {
        _ = fluxgate_robust_mutex_lock(base + 64)
        defer { fluxgate_robust_mutex_unlock(base + 64) }
        return body()
    }
}

/// The requests logs of one JWT key's subjects, slot by slot as in its `SubjectTable`; each slot
/// is a requests log (`RequestLogRegion`'s layout) of the table's capacity, made ready when its
/// subject slot is first claimed.
///
///     0    slots, 8 capacity per slot
///     64   slots × (128 + 8 × capacity)
public struct SubjectRequestsTable {
    let segment: RateLimitSegment
    let entry: Int

    static func bytes(capacity: Int) -> Int { 64 + SubjectTable.slots * RequestLogRegion.bytes(capacity: capacity) }

    static func initialize(_ region: UnsafeMutableRawPointer, capacity: Int) {
        let words = region.assumingMemoryBound(to: Int64.self)
        words[0] = Int64(SubjectTable.slots)
        words[1] = Int64(capacity)
    }

    static func slotRegion(_ table: UnsafeMutableRawPointer, slot: Int) -> UnsafeMutableRawPointer {
        let capacity = Int(table.assumingMemoryBound(to: Int64.self)[1])
        return table + 64 + slot * RequestLogRegion.bytes(capacity: capacity)
    }

    var current: UnsafeMutableRawPointer { segment.base + segment.regionOffset(entry: entry) }

    /// Under the subject table's lock (as every move is): the slot's log of the current table.
    func prepare(slot: Int) {
        let region = Self.slotRegion(current, slot: slot)
        guard region.assumingMemoryBound(to: Int64.self)[0] == 0 else { return }
        let capacity = Int(current.assumingMemoryBound(to: Int64.self)[1])
        RequestLogRegion.initialize(region, capacity: capacity)
    }

    public func log(slot: Int) -> RequestLogRegion { RequestLogRegion(segment: segment, entry: entry, slot: slot) }

    /// The master, under the subject table's lock: copies every ready slot of `old` into `new`
    /// (each under its lock, all held until the directory points at `new` and they are marked
    /// moved), as `RequestLogRegion.move` does for one log.
    static func move(from old: UnsafeMutableRawPointer, to new: UnsafeMutableRawPointer, publish: () -> Void) {
        var locked: [UnsafeMutableRawPointer] = []
        for slot in 0..<SubjectTable.slots {
            let source = slotRegion(old, slot: slot)
            guard source.assumingMemoryBound(to: Int64.self)[0] != 0 else { continue }
            _ = fluxgate_robust_mutex_lock(source + 64)
            locked.append(source)
            let target = slotRegion(new, slot: slot)
            RequestLogRegion.initialize(target, capacity: Int(new.assumingMemoryBound(to: Int64.self)[1]))
            let from = RequestLogRegion.view(source)
            var to = RequestLogRegion.view(target)
            for index in 0..<from.count { to.append(from.instant(index)) }
            RequestLogRegion.store(to, in: target)
        }
        publish()
        for source in locked {
            fluxgate_atomic_store((source + 8).assumingMemoryBound(to: Int64.self), 1)
            fluxgate_robust_mutex_unlock(source + 64)
        }
    }
}
