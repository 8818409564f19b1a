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
    /// The slot found or filled last: most responses name the model of the one before them.
    private var last = 0
    private var next = 0

    init() {
        storage = .allocate(byteCount: Self.size * Self.capacity, alignment: 8)
    }

    deinit {
        storage.deallocate()
    }

    /// The name of these UTF-8 bytes (as `String(decoding:as:)` makes it).
    func name(_ bytes: UnsafeRawBufferPointer) -> String {
        if holds(last, bytes) { return names[last] }
        for slot in 0..<Self.size where slot != last && holds(slot, bytes) {
            last = slot
            return names[slot]
        }
        let made = String(decoding: bytes, as: UTF8.self)
        guard bytes.count <= Self.capacity else { return made }
        let slot = next
        next = (next + 1) % Self.size
        if let base = bytes.baseAddress {
            (storage + slot * Self.capacity).copyMemory(from: base, byteCount: bytes.count)
        }
        counts[slot] = bytes.count
        names[slot] = made
        last = slot
        return made
    }

    @inline(__always) private func holds(_ slot: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let n = bytes.count
        guard counts[slot] == n else { return false }
        return n == 0 || memcmp(storage + slot * Self.capacity, bytes.baseAddress!, n) == 0
    }
}
