import Common

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
    /// The SDKs' body shape for each of the few names (`linearNames`, in order): the bytes
    /// `{"model":"<name>"` one after another in `leadingBlock`, and for each its position in
    /// `names` and its span there. Only names of plain bytes (no `"`, `\`, control byte; at most
    /// `Configuration.maxModelNameBytes`): for those, a body that starts with the form has exactly
    /// that literal and name as `ModelMember.leadingModel` and `position(of:)` would find them
    /// (`leadingPosition(in:)`).
    private let leadingBlock: [UInt8]
    private let leadingSpans: [LeadingForm]

    private struct LeadingForm {
        var position: Int
        var bytes: Range<Int>
    }

    /// `{"model":"`, the form's first ten bytes.
    static let leadingStart = 10

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
        var leadingBlock: [UInt8] = []
        var leadingSpans: [LeadingForm] = []
        if self.names.count <= Self.linearNames {
            for (position, name) in self.names.enumerated()
            where name.count <= Configuration.maxModelNameBytes && !name.contains(where: { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 })
                && !self.names[..<position].contains(name)
            {
                let start = leadingBlock.count
                leadingBlock += Array(#"{"model":""#.utf8) + name + [0x22]
                leadingSpans.append(LeadingForm(position: position, bytes: start..<leadingBlock.count))
            }
        }
        self.leadingBlock = leadingBlock
        self.leadingSpans = leadingSpans
    }

    /// The position of the name whose SDK form (`{"model":"<name>"`, no white space) `body`
    /// starts with, among the few names of plain bytes; nil for any other body, which the walk
    /// then reads. The same answer as `ModelMember.leadingModel` and `position(of:)` of its
    /// literal: the form's closing quote is the first `"`, `\` or control byte after `{"model":"`
    /// (the name has none), so the literal is the form's, and its bytes are this name's only.
    /// One comparison of whole words per name instead of the name's pass and its comparison
    /// (~110 instructions per model-routed request, docs/performance.md "session 16, gateway").
    @inline(__always)
    func leadingPosition(in body: UnsafeRawBufferPointer) -> (position: Int, literal: Range<Int>)? {
        guard let base = body.baseAddress else { return nil }
        return leadingBlock.withUnsafeBytes { block in
            leadingSpans.withUnsafeBufferPointer { forms in
                for form in forms {
                    let count = form.bytes.count
                    guard body.count >= count,
                        Self.equalWords(block.baseAddress! + form.bytes.lowerBound, base, count: count)
                    else { continue }
                    return (form.position, (Self.leadingStart - 1)..<count)
                }
                return nil
            }
        }
    }

    /// `memcmp(a, b, count) == 0` for `count >= 8`, by whole words: the last one overlaps the one
    /// before (a form is at least 11 bytes), so no byte is compared alone.
    @inline(__always)
    static func equalWords(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
        var i = 0
        while count &- i > 8 {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i &+= 8
        }
        return a.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
            == b.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
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
