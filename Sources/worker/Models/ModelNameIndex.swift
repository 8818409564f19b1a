#if canImport(Glibc)
import Glibc
#endif

/// The exact model names of `models:` by their UTF-8 bytes (docs/routing-and-forwarding.md
/// "Model routing"): an open-addressing table over FNV-1a, at most half full, looked up with a
/// client's name as bytes. Not a `[String: Int]`: hashing a `String` through `Hasher` (SipHash)
/// and the dictionary's probe cost ~340 instructions per model-routed request, this ~60. The
/// table is built from the configuration only; a client's name just probes it (at most every
/// slot, never more), so no input can make it grow or slow beyond that.
struct ModelNameIndex: Sendable {
    /// A position in `names`, or -1 for an empty slot; the count is a power of two.
    private let slots: [Int32]
    private let names: [[UInt8]]
    /// The names' bytes one after another, and where each is (`spans[position]`): the linear
    /// comparison reads them without retaining each name's array (~40 instructions a lookup).
    private let block: [UInt8]
    private let spans: [Range<Int>]

    /// `names` in order; a repeated name keeps its first position.
    init(_ names: [String]) {
        self.names = names.map { Array($0.utf8) }
        var size = 1
        while size < 2 * max(names.count, 1) { size <<= 1 }
        var slots = [Int32](repeating: -1, count: size)
        for (position, name) in self.names.enumerated() {
            var i = Int(truncatingIfNeeded: name.withUnsafeBytes(Self.hash)) & (size - 1)
            while slots[i] >= 0, self.names[Int(slots[i])] != name { i = (i + 1) & (size - 1) }
            if slots[i] < 0 { slots[i] = Int32(position) }
        }
        self.slots = slots
        var block: [UInt8] = []
        var spans: [Range<Int>] = []
        for name in self.names {
            spans.append(block.count..<(block.count + name.count))
            block += name
        }
        self.block = block
        self.spans = spans
    }

    /// At most this many names are compared one by one, by length first, without hashing: the
    /// usual `models:` has a few exact names, and for those the hash and the probe cost more than
    /// the comparisons (~120 against ~30 for one name).
    static let linearNames = 4

    /// The position of the name whose bytes are `bytes`. Inlined: with the few names compared
    /// in place, the model stage reads the body's bytes with no call between (its storage was
    /// retained around the call, docs/performance.md "gateway8"); the table's probe is
    /// `hashedPosition`.
    @inline(__always)
    func position(of bytes: UnsafeRawBufferPointer) -> Int? {
        if spans.count <= Self.linearNames {
            // In order: a repeated name keeps its first position, as in the table.
            return block.withUnsafeBytes { block in
                spans.withUnsafeBufferPointer { spans in
                    for position in 0..<spans.count {
                        let span = spans[position]
                        guard span.count == bytes.count else { continue }
                        if span.isEmpty || ShortBytes.equal(block.baseAddress! + span.lowerBound, bytes.baseAddress!, count: span.count) {
                            return position
                        }
                    }
                    return nil
                }
            }
        }
        return hashedPosition(of: bytes)
    }

    /// `position(of:)` by the table.
    private func hashedPosition(of bytes: UnsafeRawBufferPointer) -> Int? {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: Self.hash(bytes)) & mask
        for _ in 0..<slots.count {
            let slot = Int(slots[i])
            if slot < 0 { return nil }
            let found = names[slot].withUnsafeBytes {
                $0.count == bytes.count && ($0.isEmpty || memcmp($0.baseAddress!, bytes.baseAddress!, $0.count) == 0)
            }
            if found { return slot }
            i = (i + 1) & mask
        }
        return nil
    }

    func position(of name: String) -> Int? {
        var name = name
        return name.withUTF8 { position(of: UnsafeRawBufferPointer($0)) }
    }

    /// FNV-1a, 64 bits.
    private static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return h
    }
}
