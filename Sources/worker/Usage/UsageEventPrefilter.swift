#if canImport(Glibc)
import Glibc
#endif

/// Decides, from one whole event's data, that the JSON scanner need not read it, and counts its
/// content deltas meanwhile (`docs/usage.md`, "Cost"). Most events of a stream are content deltas
/// that carry no usage; scanning each one's grammar cost several thousand instructions per event.
///
/// An event can change the usage only through a member named `usage` (top-level, or in `message`
/// or `response`), `type` (which says what the event is), or `model` (until the response has named
/// one). In valid JSON such a name appears in the bytes as `"usage"`, `"type"`, `"model"` — a quote
/// inside a string is escaped, so these bytes never come from a string's content — or spelled with
/// `\u00XX` escapes. So an event whose data has none of these byte strings, and no `\u00`, is read
/// here: its content deltas are the non-empty `content`, `refusal`, `reasoning_content` or
/// `reasoning` strings of each `"delta":{…}` object, as the scanner counts them. Anything else
/// (`"text"` of Completions, `"tool_calls"`, a delta member that is not a string or null, any
/// surprise) returns nil and the scanner reads the event: a false alarm costs a scan, never a count.
enum UsageEventPrefilter {
    // The bytes after an opening quote, little-endian, and the masks of their lengths.
    private static let usage: UInt64 = 0x2265_6761_7375  // usage"
    private static let model: UInt64 = 0x226C_6564_6F6D  // model"
    private static let delta: UInt64 = 0x2261_746C_6564  // delta"
    private static let type: UInt64 = 0x22_6570_7974  // type"
    private static let text: UInt64 = 0x22_7478_6574  // text"
    private static let toolCal: UInt64 = 0x6C61_635F_6C6F_6F74  // tool_cal
    private static let u00: UInt64 = 0x30_3075  // u00
    private static let six: UInt64 = 0xFFFF_FFFF_FFFF
    private static let five: UInt64 = 0xFF_FFFF_FFFF
    private static let three: UInt64 = 0xFF_FFFF

    /// The content deltas of `data` (one event's data, whole), or nil when the scanner must read
    /// it. `modelKnown`: the response has named its model, so a `model` member changes nothing.
    /// `countsDeltas`: the event is of a kind whose chunk deltas count (an OpenAI chunk).
    ///
    /// `start`: where to begin, when the bytes before it are known to pass (`EventPrefix`).
    /// `firstDelta`: set to where the first `"delta"` member name is, when the bytes before it
    /// passed.
    static func contentDeltas(
        _ data: UnsafeRawBufferPointer, from start: Int = 0, modelKnown: Bool, countsDeltas: Bool,
        firstDelta: inout Int?
    ) -> Int? {
        var deltas = 0
        var i = start
        let n = data.count
        while true {
            i = nextCandidate(data, from: i)
            guard i < n else { return deltas }
            if data[i] == 0x0D { return nil }  // a CR alone ends a line: the splitter's to read
            let after = word(data, at: i &+ 1)
            if data[i] == 0x5C {
                if after & three == u00 { return nil }
                i &+= 2
                continue
            }
            if after & six == usage || after & five == type || after & five == text || after == toolCal {
                return nil
            }
            if after & six == model {
                if !modelKnown { return nil }
            } else if after & six == delta {
                if firstDelta == nil { firstDelta = i }
                guard let (count, end) = deltaObject(data, from: i &+ 7) else { return nil }
                if countsDeltas { deltas &+= count }
                i = end
                continue
            }
            i &+= 1
        }
    }

    /// The next `"` followed by `u`, `t`, `m` or `d`, or `\` followed by `u`: where a name that
    /// matters, or a `\u00` escape, can begin. Sixteen bytes a step (SIMD compares), since these
    /// are rare: most quotes of an event begin other names and values.
    @inline(__always)
    private static func nextCandidate(_ data: UnsafeRawBufferPointer, from start: Int) -> Int {
        typealias V = SIMD16<UInt8>
        var i = start
        let n = data.count
        while i &+ 17 <= n {
            let a = data.loadUnaligned(fromByteOffset: i, as: V.self)
            let b = data.loadUnaligned(fromByteOffset: i &+ 1, as: V.self)
            let u = b .== V(repeating: 0x75)
            let letter = u .| (b .== V(repeating: 0x74)) .| (b .== V(repeating: 0x6D)) .| (b .== V(repeating: 0x64))
            let hits = (a .== V(repeating: 0x22)) .& letter .| (a .== V(repeating: 0x5C)) .& u .| (a .== V(repeating: 0x0D))
            if any(hits) {
                for lane in 0..<16 where hits[lane] { return i &+ lane }
            }
            i &+= 16
        }
        while i < n {
            let b = data[i]
            if b == 0x0D { return i }
            if b == 0x22 || b == 0x5C {
                let c = i &+ 1 < n ? data[i &+ 1] : 0
                if c == 0x75 || (b == 0x22 && (c == 0x74 || c == 0x6D || c == 0x64)) { return i }
            }
            i &+= 1
        }
        return n
    }

    /// Up to eight bytes from `at`, little-endian, zero past the end.
    @inline(__always)
    private static func word(_ data: UnsafeRawBufferPointer, at: Int) -> UInt64 {
        if at &+ 8 <= data.count { return data.loadUnaligned(fromByteOffset: at, as: UInt64.self) }
        var w: UInt64 = 0
        var k = data.count &- 1
        while k >= at {
            w = w << 8 | UInt64(data[k])
            k &-= 1
        }
        return w
    }

    /// `: { "name": "string" | null, … }` after a `"delta"` member name: its counted members and
    /// the index after its `}`; nil for anything else.
    private static func deltaObject(_ data: UnsafeRawBufferPointer, from start: Int) -> (Int, Int)? {
        var i = skipSpace(data, from: start)
        guard i < data.count, data[i] == UInt8(ascii: ":") else { return nil }
        i = skipSpace(data, from: i &+ 1)
        guard i < data.count, data[i] == UInt8(ascii: "{") else { return nil }
        var count = 0
        i = skipSpace(data, from: i &+ 1)
        if i < data.count, data[i] == UInt8(ascii: "}") { return (0, i &+ 1) }
        while true {
            guard let (nameEnd, counted) = memberName(data, from: i) else { return nil }
            i = skipSpace(data, from: nameEnd)
            guard i < data.count, data[i] == UInt8(ascii: ":") else { return nil }
            i = skipSpace(data, from: i &+ 1)
            guard i < data.count else { return nil }
            if data[i] == 0x22 {
                guard let (end, nonEmpty) = string(data, from: i &+ 1) else { return nil }
                if counted && nonEmpty { count &+= 1 }
                i = end
            } else if word(data, at: i) & 0xFFFF_FFFF == 0x6C6C_756E {  // null
                i &+= 4
            } else {
                return nil
            }
            i = skipSpace(data, from: i)
            guard i < data.count else { return nil }
            if data[i] == UInt8(ascii: "}") { return (count, i &+ 1) }
            guard data[i] == UInt8(ascii: ",") else { return nil }
            i = skipSpace(data, from: i &+ 1)
        }
    }

    /// A member name without escapes at `start` (its opening quote): the index after its closing
    /// quote, and whether it names a counted member. nil for `tool_calls` (an array: scanned).
    private static func memberName(_ data: UnsafeRawBufferPointer, from start: Int) -> (Int, Bool)? {
        guard start < data.count, data[start] == 0x22 else { return nil }
        let end = UsageByteScan.quoteOrBackslash(data, from: start &+ 1)
        guard end < data.count, data[end] == 0x22 else { return nil }
        let name = UnsafeRawBufferPointer(rebasing: data[(start &+ 1)..<end])
        switch MemberName(name) {
        case .content, .refusal, .reasoningContent, .reasoning: return (end &+ 1, true)
        case .toolCalls: return nil
        default: return (end &+ 1, false)
        }
    }

    /// A string's rest after its opening quote: the index after its closing quote, and whether it
    /// is not empty. nil when it holds a `\u00` escape (which may spell a name the scanner reads).
    private static func string(_ data: UnsafeRawBufferPointer, from start: Int) -> (Int, Bool)? {
        var i = start
        while true {
            i = UsageByteScan.stringEnd(data, from: i)
            guard i < data.count, data[i] >= 0x20 else { return nil }  // a control byte (a CR): scanned
            if data[i] == 0x22 { return (i &+ 1, i > start) }
            if word(data, at: i &+ 1) & three == u00 { return nil }
            i &+= 2
        }
    }

    @inline(__always)
    private static func skipSpace(_ data: UnsafeRawBufferPointer, from start: Int) -> Int {
        var i = start
        // Spaces and tabs: a CR is the splitter's to read, and a data line holds no LF.
        while i < data.count, data[i] == 0x20 || data[i] == 0x09 { i &+= 1 }
        return i
    }
}

/// The bytes of the last event read by the prefilter, up to its first `"delta"` member name. The
/// chunks of one OpenAI stream begin alike (`id`, `object`, `created`, `model`, …, `"choices":
/// [{"index":0,`) and differ from their delta on: when an event begins with these bytes, the
/// prefilter, a function of the bytes alone, would pass them again (whether the model was known
/// only changes from no to yes, and a prefix that passed with a `"model"` stays passed), so it
/// starts at the delta. One `memcmp` instead of a search through most of the event.
struct EventPrefix {
    static let capacity = 256
    private var storage = InlineArray<256, UInt8>(repeating: 0)
    /// 0: none kept.
    private var count = 0

    mutating func clear() { count = 0 }

    /// Where the prefilter may start in `data`: after the kept bytes when `data` begins with them.
    mutating func start(in data: UnsafeRawBufferPointer) -> Int {
        let n = count
        guard n > 0, data.count > n, let base = data.baseAddress else { return 0 }
        let same = withUnsafeBytes(of: &storage) { memcmp(base, $0.baseAddress!, n) == 0 }
        return same ? n : 0
    }

    /// Keeps `data[..<length]`, which the prefilter passed, up to a `"delta"` member name.
    mutating func keep(_ data: UnsafeRawBufferPointer, length: Int) {
        guard length <= Self.capacity, length > 0 else { count = 0; return }
        if length == count { return }  // the same bytes: `start` has just compared them
        withUnsafeMutableBytes(of: &storage) {
            $0.baseAddress!.copyMemory(from: data.baseAddress!, byteCount: length)
        }
        count = length
    }
}
