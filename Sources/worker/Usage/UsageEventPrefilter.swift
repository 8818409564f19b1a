import CByteClasses

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
    /// `start`: where to begin, when the bytes before it are known to pass (`EventTemplate`).
    /// `marks`: where the `"delta"` members were (for `EventTemplate`).
    static func contentDeltas(
        _ data: UnsafeRawBufferPointer, from start: Int = 0, modelKnown: Bool, countsDeltas: Bool,
        marks: inout Marks
    ) -> Int? {
        var deltas = 0
        var i = start
        let n = data.count
        // Where the structure is known from, for `isChoiceMember`.
        var walk = Walk()
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
            if after & six == usage {
                // `"usage":null` changes nothing (an `include_usage` stream has it on every chunk
                // but the last): a usage that is not null, in the same event, is the scanner's.
                guard let end = null(data, from: i &+ 7) else { return nil }
                i = end
                continue
            }
            if after & five == type || after & five == text || after == toolCal {
                return nil
            }
            if after & six == model {
                if !modelKnown {
                    // The first event to name the model: read here when it is the top-level
                    // member's plain string and the event's only `"model"`.
                    guard marks.model == nil, let value = topLevelModel(data, at: i) else { return nil }
                    marks.model = value
                    walk = Walk(at: value.upperBound &+ 1, depth: 1, onPath: 1)
                    i = value.upperBound
                    continue
                }
            } else if after & six == delta {
                // The scanner counts a delta only in an object of the top-level `choices` array:
                // known here when the bytes before it are the kept event's (`EventTemplate`, whose
                // first delta was walked to), walked to otherwise.
                guard (i == start && start > 0) || isChoiceMember(data, at: i, walk: walk),
                    let (count, end) = deltaObject(data, from: i &+ 7)
                else { return nil }
                walk = Walk(at: end, depth: 3, onPath: 3)
                if marks.deltaObjects == 0 {
                    marks.firstDelta = i
                    marks.firstDeltaEnd = end
                }
                marks.deltaObjects &+= 1
                if countsDeltas { deltas &+= count }
                i = end
                continue
            }
            i &+= 1
        }
    }

    /// Where the prefilter's marks are, for `EventTemplate`.
    struct Marks {
        /// The first `"delta"` member name.
        var firstDelta = 0
        /// The index after the first delta object.
        var firstDeltaEnd = 0
        var deltaObjects = 0
        /// The top-level `model` string's bytes, when the event named it and it was read here.
        var model: Range<Int>?
    }

    /// A point of an event's data outside any string, and the structure there: for
    /// `isChoiceMember`, which walks from it.
    struct Walk {
        var at = 0
        /// Containers open there.
        var depth = 0
        /// How many of them are the path to a choice: the top-level object, its `choices` array,
        /// an object in that array.
        var onPath = 0
    }

    /// Whether the member name at `target` is one of an object in the top-level `choices` array
    /// (the only `delta` the scanner counts, `UsageJSONScanner.role(ofMember:in:countsDeltas:)`),
    /// from the structure at `walk` and the bytes from there. False for anything else, including
    /// bytes that are not JSON: the scanner reads the event.
    static func isChoiceMember(_ data: UnsafeRawBufferPointer, at target: Int, walk: Walk) -> Bool {
        if walk.depth == 1 && walk.onPath == 1, let head = choicesHead(data, before: target), head >= walk.at {
            // An OpenAI chunk's first delta: the top level's members up to `"choices":[{`, and no
            // bracket, escape, control byte or open string among them.
            if flatMembers(data, walk.at..<head) { return true }
        }
        var i = walk.at
        var depth = walk.depth
        var onPath = walk.onPath
        // The top-level object's member named last is `choices`: 1 after its name, 2 after its colon.
        var choices = 0
        // The last byte outside a string that is not white space (a string: its quote).
        var last: UInt8 = 0
        guard i <= target, target < data.count else { return false }
        while i < target {
            let b = data[i]
            switch b {
            case 0x22:
                var end = i &+ 1
                while true {
                    end = UsageByteScan.stringEnd(data, from: end)
                    guard end < target else { return false }
                    if data[end] == 0x22 { break }
                    end &+= data[end] == 0x5C ? 2 : 1
                }
                choices = depth == 1 && onPath == 1 && end &- i == 8 && Self.isChoices(data, at: i &+ 1) ? 1 : 0
                last = b
                i = end &+ 1
                continue
            case UInt8(ascii: "{"):
                depth &+= 1
                if depth == 1 || (depth == 3 && onPath == 2) { onPath = depth }
            case UInt8(ascii: "["):
                depth &+= 1
                if depth == 2 && onPath == 1 && choices == 2 { onPath = 2 }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard depth > 0 else { return false }
                if onPath == depth { onPath &-= 1 }
                depth &-= 1
            case UInt8(ascii: ":"):
                if choices == 1 { choices = 2 }
            case 0x20, 0x09:
                i &+= 1
                continue
            default:
                break
            }
            if b != UInt8(ascii: ":") { choices = 0 }
            last = b
            i &+= 1
        }
        return depth == 3 && onPath == 3 && (last == UInt8(ascii: "{") || last == UInt8(ascii: ","))
    }

    /// `data[range]` holds none of `[ \ ] { | }`, no control byte and an even number of quotes
    /// (`fluxgate_flat_members`): read from a point outside any string of an object, plain members.
    @inline(__always)
    static func flatMembers(_ data: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        guard let base = data.baseAddress else { return range.isEmpty }
        return fluxgate_flat_members(base.assumingMemoryBound(to: UInt8.self) + range.lowerBound, range.count) != 0
    }

    /// Where `"choices":[{` begins when it ends at `target`, or with `"index":` and digits and a
    /// comma after it.
    @inline(__always)
    private static func choicesHead(_ data: UnsafeRawBufferPointer, before target: Int) -> Int? {
        guard target >= 12 else { return nil }
        var k = target
        if data[k &- 1] == UInt8(ascii: ",") {
            var j = k &- 2
            while j >= 0 && data[j] >= 0x30 && data[j] <= 0x39 { j &-= 1 }
            guard j < k &- 2, j >= 19,
                data.loadUnaligned(fromByteOffset: j &- 7, as: UInt64.self) == 0x3A22_7865_646E_6922  // "index":
            else { return nil }
            k = j &- 7
        }
        guard data.loadUnaligned(fromByteOffset: k &- 12, as: UInt64.self) == 0x7365_6369_6F68_6322,  // "choices
            data.loadUnaligned(fromByteOffset: k &- 4, as: UInt32.self) == 0x7B5B_3A22  // ":[{
        else { return nil }
        return k &- 12
    }

    /// `choices` at `at`.
    @inline(__always)
    private static func isChoices(_ data: UnsafeRawBufferPointer, at: Int) -> Bool {
        data.loadUnaligned(fromByteOffset: at, as: UInt32.self) == 0x696F_6863  // choi
            && data.loadUnaligned(fromByteOffset: at &+ 3, as: UInt32.self) == 0x7365_6369  // ices
    }

    /// `: null` after a member name ending before `start`: the index after `null`.
    @inline(__always)
    private static func null(_ data: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var i = skipSpace(data, from: start)
        guard i < data.count, data[i] == UInt8(ascii: ":") else { return nil }
        i = skipSpace(data, from: i &+ 1)
        guard word(data, at: i) & 0xFFFF_FFFF == 0x6C6C_756E else { return nil }  // null
        return i &+ 4
    }

    /// The bytes of the `model` member's string when `"model"` at `at` is a member name of the
    /// top-level object, every member before it having a plain string (no escapes or control
    /// bytes), a number or a literal; its value a string without escapes of 1 to 256 bytes (what
    /// the scanner keeps, `KeptBytes<256>`). nil otherwise: the scanner reads the event.
    /// `shortcut`: false for the member walk alone (the tests compare the two).
    static func topLevelModel(_ data: UnsafeRawBufferPointer, at target: Int, shortcut: Bool = true) -> Range<Int>? {
        let n = data.count
        guard let value = modelValue(data, after: target &+ 7) else { return nil }
        var i = skipSpace(data, from: 0)
        guard i < n, data[i] == UInt8(ascii: "{") else { return nil }
        i = skipSpace(data, from: i &+ 1)
        // An OpenAI chunk's members before the model: no bracket, escape, control byte or open
        // string among them (`fluxgate_flat_members`), and `"model"` after a comma.
        if shortcut && i < target && data[i] == 0x22 && flatMembers(data, i..<target) {
            var k = target &- 1
            while data[k] == 0x20 || data[k] == 0x09 { k &-= 1 }
            if data[k] == UInt8(ascii: ",") { return value }
        }
        while i < target {
            guard let nameEnd = plainString(data, from: i) else { return nil }
            i = skipSpace(data, from: nameEnd)
            guard i < n, data[i] == UInt8(ascii: ":") else { return nil }
            i = skipSpace(data, from: i &+ 1)
            guard i < n else { return nil }
            if data[i] == 0x22 {
                guard let end = plainString(data, from: i) else { return nil }
                i = end
            } else {
                // A number or a literal: its bytes up to the next `,` (checked below).
                let start = i
                while i < n, isScalarByte(data[i]) { i &+= 1 }
                guard i > start else { return nil }
            }
            i = skipSpace(data, from: i)
            guard i < n, data[i] == UInt8(ascii: ",") else { return nil }
            i = skipSpace(data, from: i &+ 1)
        }
        return i == target ? value : nil
    }

    /// The model's string after its member name (ending before `start`), as `topLevelModel` takes it.
    @inline(__always)
    private static func modelValue(_ data: UnsafeRawBufferPointer, after start: Int) -> Range<Int>? {
        var i = skipSpace(data, from: start)
        guard i < data.count, data[i] == UInt8(ascii: ":") else { return nil }
        i = skipSpace(data, from: i &+ 1)
        guard let end = plainString(data, from: i), end &- i >= 3, end &- i <= 258 else { return nil }
        return (i &+ 1)..<(end &- 1)
    }

    /// A string without escapes or control bytes at `start` (its opening quote): the index after
    /// its closing quote.
    @inline(__always)
    private static func plainString(_ data: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < data.count, data[start] == 0x22 else { return nil }
        let end = UsageByteScan.stringEnd(data, from: start &+ 1)
        guard end < data.count, data[end] == 0x22 else { return nil }
        return end &+ 1
    }

    /// A byte of a JSON number or literal (`true`, `false`, `null`).
    @inline(__always)
    private static func isScalarByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) || b == 0x2D || b == 0x2B || b == 0x2E
    }

    /// The next `"` followed by `u`, `t`, `m` or `d`, or `\` followed by `u`: where a name that
    /// matters, or a `\u00` escape, can begin. Sixteen bytes a step (`fluxgate_event_candidates16`),
    /// since these are rare: most quotes of an event begin other names and values; the last step
    /// reads the last seventeen bytes again rather than byte by byte. With AVX2 (`wide`) and 33
    /// bytes or more, 32 positions a step (`fluxgate_event_candidates_avx2`).
    @inline(__always)
    static func nextCandidate(_ data: UnsafeRawBufferPointer, from start: Int, wide: Bool = avx2) -> Int {
        var i = start
        let n = data.count
        #if arch(x86_64)
        if wide, n >= 33, let base = data.baseAddress {
            return fluxgate_event_candidates_avx2(base.assumingMemoryBound(to: UInt8.self), n, i)
        }
        #endif
        if let base = data.baseAddress, n >= 17 {
            while i &+ 17 <= n {
                let hits = fluxgate_event_candidates16(base + i)
                if hits != 0 { return i &+ hits.trailingZeroBitCount }
                i &+= 16
            }
            // Positions i..<n-1 (fewer than 16) are the last window's highest ones.
            if i < n &- 1 {
                let hits = fluxgate_event_candidates16(base + (n &- 17)) >> UInt32(16 &- (n &- 1 &- i))
                if hits != 0 { return i &+ hits.trailingZeroBitCount }
                i = n &- 1
            }
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

    /// The CPU runs the AVX2 paths (`fluxgate_cpu_has_avx2`, asked once per process).
    #if arch(x86_64)
    static let avx2 = fluxgate_cpu_has_avx2() != 0
    #else
    static let avx2 = false
    #endif

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
    static func deltaObject(_ data: UnsafeRawBufferPointer, from start: Int) -> (Int, Int)? {
        if let quick = contentOnly(data, from: start) { return quick }
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

    /// `:{"content":"…"}` (a chunk's delta, nearly always), `:{"role":"assistant","content":"…"}`
    /// (an OpenAI stream's first), its string without escapes, or `:{}` (its last): what
    /// `deltaObject` gives for it, without its general steps.
    @inline(__always)
    private static func contentOnly(_ data: UnsafeRawBufferPointer, from start: Int) -> (Int, Int)? {
        guard start &+ 15 <= data.count else { return nil }
        var content = start &+ 13
        let head = data.loadUnaligned(fromByteOffset: start, as: UInt64.self)
        if head == 0x6574_6E6F_6322_7B3A {  // :{"conte
            guard data.loadUnaligned(fromByteOffset: start &+ 5, as: UInt64.self) == 0x223A_2274_6E65_746E  // ntent":"
            else { return nil }
        } else if head & 0xFF_FFFF == 0x7D_7B3A {  // :{}
            return (0, start &+ 3)
        } else {
            content = start &+ 32
            guard content &+ 2 <= data.count,
                data.loadUnaligned(fromByteOffset: start, as: UInt64.self) == 0x2265_6C6F_7222_7B3A,  // :{"role"
                data.loadUnaligned(fromByteOffset: start &+ 8, as: UInt64.self) == 0x7473_6973_7361_223A,  // :"assist
                data.loadUnaligned(fromByteOffset: start &+ 16, as: UInt64.self) == 0x6F63_222C_2274_6E61,  // ant","co
                data.loadUnaligned(fromByteOffset: start &+ 24, as: UInt64.self) == 0x223A_2274_6E65_746E  // ntent":"
            else { return nil }
        }
        let end = UsageByteScan.stringEnd(data, from: content)
        guard end &+ 1 < data.count, data[end] == 0x22, data[end &+ 1] == UInt8(ascii: "}") else { return nil }
        return (end > content ? 1 : 0, end &+ 2)
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
