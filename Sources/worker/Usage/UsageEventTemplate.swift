import CByteClasses

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
    /// The kept event's suffix (after its delta object, to the end of its blank line), then its
    /// head: its `data:` or `data: `, the prefix and `"delta"`. An event that ends with the suffix
    /// and is followed by an event with the head is one memcmp of both (`repeated`); a run of
    /// such events whose deltas are plain content strings, a string scan and one 32-bytes-a-step
    /// compare each (`fluxgate_event_run_avx2`).
    private var chain = InlineArray<400, UInt8>(repeating: 0)
    /// 0: none kept.
    private var prefixCount = 0
    /// 0: none kept (a suffix is kept only with the prefix of the same event).
    private var suffixCount = 0
    /// The head's bytes in `chain`, after the suffix.
    private var headCount = 0
    /// Where the kept event's data begins (after `data:` or `data: `).
    private var dataOffset = 0
    /// `fluxgate_event_run_avx2` reads runs of the kept event (AVX2, and 128 to 384 kept bytes).
    private var wide = false

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
    /// prefix, and its suffix and head when it is a `data` line and a blank line with one delta
    /// object.
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
        // The event's bytes begin with `data:`, the prefix (its data's first bytes) and `"delta"`.
        let head = event.dataOffset &+ prefixCount &+ 7
        withUnsafeMutableBytes(of: &chain) {
            $0.baseAddress!.copyMemory(from: bytes.baseAddress! + from, byteCount: length)
            ($0.baseAddress! + length).copyMemory(from: bytes.baseAddress!, byteCount: head)
        }
        suffixCount = length
        headCount = head
        dataOffset = event.dataOffset
        wide = UsageEventPrefilter.avx2 && (128...384).contains(length &+ head)
    }

    /// The events from `start` (at a line's start, no event begun) that are the kept one but for
    /// their delta objects: the index after the last and their content deltas; nil when the first
    /// is not, for the ordinary paths. One memcmp per event: its suffix and the next one's head.
    /// The event after them that begins as the kept one but ends otherwise (an OpenAI stream's last
    /// chunk, with its finish reason) is read too when the model is known (`modelKnown`): the
    /// prefilter from the kept prefix on, as `UsageCollector.wholeEvent` would read it; and a
    /// `data: [DONE]` event right after it.
    @inline(__always)
    mutating func repeated(
        _ bytes: UnsafeRawBufferPointer, from start: Int, modelKnown: Bool
    ) -> (end: Int, deltas: Int)? {
        let h = headCount
        let s = suffixCount
        let n = bytes.count
        guard s > 0, let base = bytes.baseAddress, n &- start >= h &+ 2 &+ s else { return nil }
        return withUnsafeBytes(of: &chain) { kept -> (end: Int, deltas: Int)? in
            let suffix = kept.baseAddress!
            guard memcmp(base + start, suffix + s, h) == 0 else { return nil }
            var done: (end: Int, deltas: Int)?
            var counted = 0
            var at = start &+ h
            while true {
                // Room for a chunk and the next one's `:{"content":"` (a read's last chunks are
                // read one at a time).
                if wide && n &- at >= s &+ h &+ 28 {
                    let run = Self.run(base, n, from: at, kept: suffix, count: s &+ h, deltas: &counted)
                    if run != at {
                        done = (run &- h, counted)
                        at = run
                    }
                }
                guard let (deltas, end) = Self.deltaObject(bytes, from: at) else { break }
                if end &+ s &+ h <= n && memcmp(base + end, suffix, s &+ h) == 0 {
                    // This event ends as the kept one did and the next begins as it did.
                    counted &+= deltas
                    done = (end &+ s, counted)
                    at = end &+ s &+ h
                    continue
                }
                if end &+ s <= n && memcmp(base + end, suffix, s) == 0 { return (end &+ s, counted &+ deltas) }
                break
            }
            // The event at `at - h` begins with the kept head.
            if modelKnown, let (end, deltas) = Self.lastEvent(bytes, at: at &- h, data: dataOffset, prefix: prefixCount) {
                return (end, counted &+ deltas)
            }
            return done
        }
    }

    /// The event at `event`, which begins with the kept head (its data at `data`, the `"delta"`
    /// name at `prefix` in it), when it is one `data` line ended by LF and a blank line (LF) and
    /// the prefilter passes its data from the delta on: the index after it and its content deltas.
    /// Its data is then the splitter's `SSEWholeEvent.data`; anything else (a CR, a slice that
    /// ends inside the event) is for the ordinary paths.
    private static func lastEvent(
        _ bytes: UnsafeRawBufferPointer, at event: Int, data: Int, prefix: Int
    ) -> (end: Int, deltas: Int)? {
        let n = bytes.count
        let value = event &+ data
        let from = value &+ prefix
        guard from < n, let base = bytes.baseAddress, let found = memchr(base + from, 0x0A, n &- from) else { return nil }
        let lf = base.distance(to: UnsafeRawPointer(found))
        guard lf &+ 1 < n, bytes[lf &+ 1] == 0x0A, lf &- value <= SSEEventSplitter.maximumEventBytes else { return nil }
        var marks = UsageEventPrefilter.Marks()
        guard
            let deltas = UsageEventPrefilter.contentDeltas(
                UnsafeRawBufferPointer(rebasing: bytes[value..<lf]), from: prefix, modelKnown: true, countsDeltas: true,
                marks: &marks)
        else { return nil }
        return (isDone(bytes, at: lf &+ 2) ? lf &+ 16 : lf &+ 2, deltas)
    }

    /// `data: [DONE]` and a blank line at `at`, an OpenAI stream's end: an event that the
    /// prefilter passes, without deltas (it holds no quote, backslash or CR).
    @inline(__always)
    private static func isDone(_ bytes: UnsafeRawBufferPointer, at: Int) -> Bool {
        at &+ 14 <= bytes.count
            && bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self) == 0x445B_203A_6174_6164  // data: [D
            && bytes.loadUnaligned(fromByteOffset: at &+ 8, as: UInt32.self) == 0x5D45_4E4F  // ONE]
            && bytes.loadUnaligned(fromByteOffset: at &+ 12, as: UInt16.self) == 0x0A0A
    }

    /// The events from `at` (after a `"delta"` name) whose delta object is `{"content":"…"}`, its
    /// string without escapes, followed by the `count` kept bytes (suffix and head), at once: where
    /// the last one's next event's `"delta"` name ends; `at` when none. Only when `wide` (without
    /// it, the loop in `repeated` reads them one at a time, with the same result).
    @inline(__always)
    private static func run(
        _ base: UnsafeRawPointer, _ n: Int, from at: Int, kept: UnsafeRawPointer, count: Int, deltas: inout Int
    ) -> Int {
        #if arch(x86_64)
        return fluxgate_event_run_avx2(
            base.assumingMemoryBound(to: UInt8.self), n, at, kept.assumingMemoryBound(to: UInt8.self), count, &deltas)
        #else
        return at
        #endif
    }

    /// The delta object after a `"delta"` member name ending before `at`: its content deltas and
    /// the index after it. `{"content":"…"}` without escapes, the commonest, is read here.
    @inline(__always)
    private static func deltaObject(_ bytes: UnsafeRawBufferPointer, from at: Int) -> (Int, Int)? {
        let n = bytes.count
        let content = at &+ 13
        if content < n
            && bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self) == 0x6574_6E6F_6322_7B3A  // :{"conte
            && bytes.loadUnaligned(fromByteOffset: at &+ 5, as: UInt64.self) == 0x223A_2274_6E65_746E  // ntent":"
        {
            let end = UsageByteScan.stringEnd(bytes, from: content)
            if end &+ 1 < n && bytes[end] == 0x22 && bytes[end &+ 1] == UInt8(ascii: "}") {
                return (end > content ? 1 : 0, end &+ 2)
            }
        }
        return UsageEventPrefilter.deltaObject(bytes, from: at)
    }
}
