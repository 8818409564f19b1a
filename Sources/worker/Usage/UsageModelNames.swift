#if canImport(Glibc)
import Glibc
#endif

/// The model names the usage readers of one worker made (`UsageResult.model`), kept with their
/// bytes: a response naming a model of the last few gets the very `String` made before, whichever
/// connection read it. No allocation and no `String` comparison per response, and the metrics'
/// model-code cache (`ModelCodeCache`) finds the name by identity (docs/performance.md,
/// "fixedcost8"). Touched only from the worker's loop.
final class UsageModelNames {
    static let size = 4
    /// `UsageTally` keeps a model's first 256 bytes; a longer name is not kept (nor counted).
    static let capacity = 256

    /// `size` slots of `capacity` bytes each.
    private let storage: UnsafeMutableRawPointer
    /// Each slot's byte count; -1: empty.
    private var counts = [Int](repeating: -1, count: size)
    private var names = [String](repeating: "", count: size)
    /// The slot found or filled last, apart: most responses name the model of the one before
    /// them (the arrays' loads and checks cost more than the comparison).
    private var lastBytes: UnsafeMutableRawPointer
    private var lastCount = -1
    private var lastName = ""
    private var next = 0

    init() {
        storage = .allocate(byteCount: Self.size * Self.capacity, alignment: 8)
        lastBytes = storage
    }

    deinit {
        storage.deallocate()
    }

    /// The name of the kept bytes (`UsageTally`'s model: read in place, no closure context).
    @inline(__always)
    func name(of kept: inout KeptBytes<256>) -> String {
        kept.withBytes { name($0) }
    }

    /// The name of these UTF-8 bytes (as `String(decoding:as:)` makes it). (Inlined: the last
    /// name's test is a few loads; the rest is out of line.)
    @inline(__always)
    func name(_ bytes: UnsafeRawBufferPointer) -> String {
        if bytes.count == lastCount && Self.equal(lastBytes, bytes) { return lastName }
        return found(bytes) ?? kept(bytes)
    }

    @inline(never)
    private func found(_ bytes: UnsafeRawBufferPointer) -> String? {
        for slot in 0..<Self.size where counts[slot] == bytes.count && Self.equal(storage + slot * Self.capacity, bytes) {
            remember(slot)
            return names[slot]
        }
        return nil
    }

    @inline(never)
    private func kept(_ bytes: UnsafeRawBufferPointer) -> String {
        let made = String(decoding: bytes, as: UTF8.self)
        guard bytes.count <= Self.capacity else { return made }
        let slot = next
        next = (next + 1) % Self.size
        if let base = bytes.baseAddress {
            (storage + slot * Self.capacity).copyMemory(from: base, byteCount: bytes.count)
        }
        counts[slot] = bytes.count
        names[slot] = made
        remember(slot)
        return made
    }

    private func remember(_ slot: Int) {
        lastBytes = storage + slot * Self.capacity
        lastCount = counts[slot]
        lastName = names[slot]
    }

    /// `count` equal bytes, eight at a time (no `memcmp` call for a name of 8 bytes or more: the
    /// last word overlaps the one before it).
    @inline(__always) static func equal(_ kept: UnsafeRawPointer, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let n = bytes.count
        guard n > 0, let base = bytes.baseAddress else { return true }
        guard n >= 8 else { return memcmp(kept, base, n) == 0 }
        var i = 0
        while i &+ 8 < n {
            if kept.loadUnaligned(fromByteOffset: i, as: UInt64.self) != base.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i &+= 8
        }
        return kept.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
            == base.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
    }
}
