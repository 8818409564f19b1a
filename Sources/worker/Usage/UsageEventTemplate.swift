#if canImport(Glibc)
import Glibc
#endif

/// What the chunks of one OpenAI stream share (`docs/usage.md`, "Cost"): they begin alike (`id`,
/// `object`, `created`, `model`, …, `"choices":[{"index":0,`) and, but for the last, end alike
/// (`,"logprobs":null,"finish_reason":null}]}` and the blank line); only their delta object
/// differs. This keeps, from the last event the prefilter passed, its data up to its first
/// `"delta"` member name (`prefix`) and its bytes after that delta object to its end (`suffix`).
///
/// The prefilter (`UsageEventPrefilter`) is a function of the bytes alone — whether the model was
/// known only changes from no to yes, and a prefix that passed with a `"model"` stays passed —
/// so the bytes it passed pass again, with the same deltas:
/// * an event whose data begins with `prefix` is searched from there on (`start`): one `memcmp`
///   instead of a search through most of the event;
/// * an event made of `data:`, `prefix`, a delta object and `suffix` is the same event but for its
///   delta object (which holds no line break), and is counted without finding its end or
///   searching it (`repeated`): two `memcmp`s and the delta object's members.
struct EventTemplate {
    static let prefixCapacity = 256
    static let suffixCapacity = 128
    private var prefix = InlineArray<256, UInt8>(repeating: 0)
    private var suffix = InlineArray<128, UInt8>(repeating: 0)
    /// 0: none kept.
    private var prefixCount = 0
    /// 0: none kept (a suffix is kept only with the prefix of the same event).
    private var suffixCount = 0
    /// Where the data began in that event's bytes: 5 after `data:`, 6 after `data: `.
    private var dataOffset = 0

    mutating func clear() {
        prefixCount = 0
        suffixCount = 0
    }

    /// Where the prefilter may start in `data`: after the kept prefix when `data` begins with it.
    mutating func start(in data: UnsafeRawBufferPointer) -> Int {
        let n = prefixCount
        guard n > 0, data.count > n, let base = data.baseAddress else { return 0 }
        let same = withUnsafeBytes(of: &prefix) { memcmp(base, $0.baseAddress!, n) == 0 }
        return same ? n : 0
    }

    /// The prefilter passed `event`, read from `start` (`marks` where its deltas were): keeps its
    /// prefix, and its suffix when it is a `data` line and a blank line with one delta object.
    mutating func keep(_ event: SSEWholeEvent, from start: Int, marks: UsageEventPrefilter.Marks) {
        if start == 0 {
            let length = marks.deltaObjects > 0 ? marks.firstDelta : 0
            guard length > 0, length <= Self.prefixCapacity, let from = event.data.baseAddress else {
                clear()
                return
            }
            withUnsafeMutableBytes(of: &prefix) { $0.baseAddress!.copyMemory(from: from, byteCount: length) }
            prefixCount = length
        }
        suffixCount = 0
        guard let bytes = event.bytes, marks.deltaObjects == 1, marks.firstDelta == prefixCount else { return }
        let from = event.dataOffset &+ marks.firstDeltaEnd
        let length = bytes.count &- from
        guard length <= Self.suffixCapacity else { return }
        withUnsafeMutableBytes(of: &suffix) { $0.baseAddress!.copyMemory(from: bytes.baseAddress! + from, byteCount: length) }
        suffixCount = length
        dataOffset = event.dataOffset
    }

    /// `"delta"` as eight bytes, little-endian, with the byte after it masked off.
    private static let deltaName: UInt64 = 0x0022_6174_6C65_6422

    /// The event at `start` (at a line's start, no event begun) when it is the kept one but for its
    /// delta object: the index after it and its content deltas; nil for the ordinary paths.
    mutating func repeated(_ bytes: UnsafeRawBufferPointer, from start: Int) -> (end: Int, deltas: Int)? {
        let p = prefixCount
        let s = suffixCount
        let head = start &+ dataOffset
        // `data:`, the prefix, `"delta"`, `:{}` at least, the suffix.
        guard s > 0, let base = bytes.baseAddress, bytes.count &- head >= p &+ 10 &+ s else { return nil }
        guard bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self) == 0x6174_6164,  // data
            bytes[start &+ 4] == UInt8(ascii: ":"), dataOffset == 5 || bytes[start &+ 5] == 0x20
        else { return nil }
        let prefixSame = withUnsafeBytes(of: &prefix) { memcmp(base + head, $0.baseAddress!, p) == 0 }
        guard prefixSame,
            bytes.loadUnaligned(fromByteOffset: head &+ p, as: UInt64.self) & 0x00FF_FFFF_FFFF_FFFF == Self.deltaName
        else { return nil }
        let rest = UnsafeRawBufferPointer(rebasing: bytes[head...])
        guard let (deltas, end) = UsageEventPrefilter.deltaObject(rest, from: p &+ 7), head &+ end &+ s <= bytes.count
        else { return nil }
        let suffixSame = withUnsafeBytes(of: &suffix) { memcmp(base + head + end, $0.baseAddress!, s) == 0 }
        return suffixSame ? (head &+ end &+ s, deltas) : nil
    }
}
