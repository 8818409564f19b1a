/// Reads one JSON document (RFC 8259) fed in slices of any size, and keeps only what the usage
/// reader needs (`UsageDocument`): no tree is built, strings it does not need are skipped without
/// being kept, and its memory is this value alone — about a kilobyte inline, no heap — however
/// large or deep the document (`retainedBytes`; `BitwiseCopyable` has the compiler check that it
/// holds no reference).
///
/// It follows the grammar strictly where a value it needs can be: the top level, `usage` and its
/// `*_details`, `response`, `message`, `choices[]` and their `delta`. The value of any other
/// member is skipped by following only its strings and its bracket depth (a counter, so any depth
/// fits): that is what finds the value's end, and nothing inside it can be usage. So `finish()`
/// says whether the bytes were one JSON value as far as the reader follows it; a document that
/// breaks the grammar where it is followed is not read at all. Duplicate members: the last wins,
/// as in the parsers of the SDKs.
///
/// Cost: the bytes of skipped values and strings are searched eight at a time
/// (`UsageByteScan`) for the few bytes that matter; structural bytes on the followed path take one
/// branch each.
struct UsageJSONScanner: BitwiseCopyable {
    private(set) var document = UsageDocument()
    /// Whether `choices[].delta` is followed, to count content deltas: for event streams only
    /// (a JSON body's `choices` are skipped whole).
    var countsDeltas = false

    private var state = State.value
    // Containers on the followed path, from the root down (at most four deep: root, `response`,
    // `usage`, `input_tokens_details`; or root, `choices`, a choice, its `delta`).
    private var top = Frame(container: .root, isArray: false)
    /// The frames around `top`, outermost first (`frameCount - 1` of them). The innermost is kept
    /// apart because it is read at every value: an `InlineArray` element read from a
    /// non-mutating context made the optimizer copy the whole scanner.
    private var outer = InlineArray<3, Frame>(repeating: Frame(container: .root, isArray: false))
    private var frameCount = 0
    /// Open brackets of the skipped value being read (0: none is).
    private var skipDepth = 0

    // The value being read.
    private var target = StringTarget.skip
    private var stringNonEmpty = false
    private var key = KeptBytes<32>()
    private var unicode: UInt32 = 0
    private var unicodeDigits = 0
    private var highSurrogate: UInt32 = 0
    private var countField: (UsageLocation, UsageCounts.Field)?
    private var number = NumberState()
    private var literal: StaticString = "null"
    private var literalIndex = 0

    /// Bytes this value holds, all of it inline (it is `BitwiseCopyable`): the whole of its
    /// memory, whatever it scanned.
    static var retainedBytes: Int { MemoryLayout<UsageJSONScanner>.size }

    /// Forgets the document, to read another (the next event's data).
    mutating func reset() {
        document.clear()
        state = .value
        frameCount = 0
        skipDepth = 0
        highSurrogate = 0
    }

    /// Whether the bytes fed since the last reset were one whole JSON object (as far as the
    /// reader follows it) and nothing else. Usage is only ever in an object: any other top-level
    /// value (`[DONE]`, a number) is not read.
    func finish() -> Bool {
        state == .done
    }

    /// Hands the document to `tally` in place (passing `document` from outside made the
    /// optimizer copy it, a kilobyte per event).
    mutating func report(to tally: inout UsageTally, eventType: borrowing KeptBytes<64>) {
        tally.add(document, eventType: eventType)
    }

    mutating func scan(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        let n = bytes.count
        while i < n {
            switch state {
            case .string:
                i = scanString(bytes, from: i)
            case .skipping:
                i = skip(bytes, from: i)
            case .skippingString:
                i = skipString(bytes, from: i)
            case .number:
                i = scanDigits(bytes, from: i)
                if i < n {
                    numberByte(bytes[i])
                    i &+= 1
                }
            case .failed:
                return
            default:
                let b = bytes[i]
                i &+= 1
                // Pretty-printed bodies are a third white space: stepped over here, not in `step`.
                if b <= 0x20 && Self.isWhitespace(b) && state.allowsWhitespace { continue }
                if b == 0x22 && (state == .keyOrObjectEnd || state == .key), let end = quickKey(bytes, from: i) {
                    i = end
                    continue
                }
                step(b)
            }
        }
    }
}

// MARK: - Grammar

extension UsageJSONScanner {
    /// The states white space may stand in come first (`allowsWhitespace`).
    enum State: UInt8 {
        /// A value must come: the document's start, after `:`, or after `,` in an array.
        case value
        /// Just after `[`: a value or `]`.
        case valueOrArrayEnd
        /// Just after `{`: a member name or `}`.
        case keyOrObjectEnd
        /// After `,` in an object: a member name.
        case key
        case colon
        /// After a value: `,` or the end of its container (or of the document).
        case afterValue
        /// The top-level value is complete: only white space may follow.
        case done
        case string, escape, unicode, number, literal
        /// In a skipped value (`skipDepth` brackets open), outside its strings.
        case skipping
        case skippingString
        /// After a `\` in a skipped string: the next byte is part of the escape.
        case skippingEscape
        case failed

        var allowsWhitespace: Bool { rawValue <= State.done.rawValue }
    }

    private static func isWhitespace(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09
    }

    /// One byte outside a string.
    private mutating func step(_ b: UInt8) {
        switch state {
        case .value, .valueOrArrayEnd:
            if Self.isWhitespace(b) { return }
            if b == UInt8(ascii: "]") && state == .valueOrArrayEnd { close(array: true); return }
            beginValue(b)
        case .keyOrObjectEnd, .key:
            if Self.isWhitespace(b) { return }
            if b == UInt8(ascii: "}") && state == .keyOrObjectEnd { close(array: false); return }
            guard b == UInt8(ascii: "\"") else { state = .failed; return }
            beginKey()
        case .colon:
            if Self.isWhitespace(b) { return }
            state = b == UInt8(ascii: ":") ? .value : .failed
        case .afterValue:
            if Self.isWhitespace(b) { return }
            switch b {
            case UInt8(ascii: ","): state = top.isArray ? .value : .key
            case UInt8(ascii: "]"): close(array: true)
            case UInt8(ascii: "}"): close(array: false)
            default: state = .failed
            }
        case .escape:
            escape(b)
        case .unicode:
            unicodeDigit(b)
        case .number:
            numberByte(b)
        case .literal:
            literalByte(b)
        case .done:
            if !Self.isWhitespace(b) { state = .failed }
        case .skippingEscape:
            state = .skippingString
        case .string, .skipping, .skippingString, .failed:
            break
        }
    }

    private mutating func beginValue(_ b: UInt8) {
        guard frameCount > 0 || b == UInt8(ascii: "{") else { state = .failed; return }
        let role = valueRole()
        clearPrevious(role)
        switch b {
        case UInt8(ascii: "{"): open(array: false, role: role)
        case UInt8(ascii: "["): open(array: true, role: role)
        case UInt8(ascii: "\""): beginString(role)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            if case .count(let location, let field) = role { countField = (location, field) } else { countField = nil }
            number = NumberState()
            state = .number
            numberByte(b)
        case UInt8(ascii: "t"): beginLiteral("true")
        case UInt8(ascii: "f"): beginLiteral("false")
        case UInt8(ascii: "n"): beginLiteral("null")
        default: state = .failed
        }
    }

    /// A member given twice: the later value replaces the earlier, as in a client's parser.
    private mutating func clearPrevious(_ role: Role) {
        switch role {
        case .container(.usage(let location)):
            document.start(location, present: false)
        case .container(.response):
            document.responseUsage = UsageCounts()
        case .container(.message):
            document.messageUsage = UsageCounts()
        case .count(let location, let field):
            document.set(field, at: location, to: nil)
        case .keep(.model): document.model.clear()
        case .keep(.type): document.type.clear()
        case .container, .keep, .content, .presence, .skip:
            break
        }
    }

    /// A value ended (scalar or container): what may follow depends on the container around it.
    private mutating func valueEnded() {
        state = frameCount == 0 ? .done : .afterValue
    }

    private mutating func open(array: Bool, role: Role) {
        guard case .container(let container) = role, container.isArray == array else {
            if case .presence = role, array { document.contentDeltas &+= 1 }
            skipDepth = 1
            state = .skipping
            return
        }
        if case .usage(let location) = container { document.start(location, present: true) }
        if frameCount > 0 { outer[frameCount &- 1] = top }
        top = Frame(container: container, isArray: array)
        frameCount &+= 1
        state = array ? .valueOrArrayEnd : .keyOrObjectEnd
    }

    private mutating func close(array: Bool) {
        guard frameCount > 0, top.isArray == array else { state = .failed; return }
        frameCount &-= 1
        if frameCount > 0 { top = outer[frameCount &- 1] }
        valueEnded()
    }

    /// Through a skipped value, outside its strings: only brackets and quotes matter.
    private mutating func skip(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var i = start
        while true {
            i = UsageByteScan.structural(bytes, from: i)
            guard i < bytes.count else { return i }
            let b = bytes[i]
            i &+= 1
            if b == 0x22 {
                state = .skippingString
                return i
            }
            if b | 0x20 == 0x7B {
                skipDepth &+= 1
            } else {
                skipDepth &-= 1
                if skipDepth == 0 { valueEnded(); return i }
            }
        }
    }

    /// Through a string of a skipped value: to its closing quote, escapes stepped over.
    private mutating func skipString(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var i = start
        let n = bytes.count
        while true {
            i = UsageByteScan.stringEnd(bytes, from: i)
            guard i < n else { return i }
            switch bytes[i] {
            case 0x22:
                state = .skipping
                return i &+ 1
            case 0x5C:
                guard i &+ 1 < n else { state = .skippingEscape; return n }
                i &+= 2
            default:
                i &+= 1  // a raw control byte: not followed here
            }
        }
    }
}

// MARK: - Strings

extension UsageJSONScanner {
    /// What a string's bytes are kept for.
    enum StringTarget: UInt8 {
        case skip, key, model, type
        /// Counted as a content delta when not empty.
        case content

        var keepsBytes: Bool { self == .key || self == .model || self == .type }
    }

    /// A member name whose closing quote is in `bytes` and that has no escape (nearly all):
    /// named from the input in place. Returns the index after the quote; nil for the general path.
    private mutating func quickKey(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        let end = UsageByteScan.stringEnd(bytes, from: start)
        guard end < bytes.count, bytes[end] == 0x22 else { return nil }
        top.key = MemberName(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
        state = .colon
        return end &+ 1
    }

    private mutating func beginKey() {
        target = .key
        key.begin()
        state = .string
    }

    private mutating func beginString(_ role: Role) {
        switch role {
        case .keep(let t):
            target = t
            switch t {
            case .model: document.model.begin()
            case .type: document.type.begin()
            case .skip, .key, .content: break
            }
        case .content:
            target = .content
        case .container, .count, .presence, .skip:
            target = .skip
        }
        stringNonEmpty = false
        highSurrogate = 0
        state = .string
    }

    /// Runs through a string's plain bytes at once; returns where it stopped.
    private mutating func scanString(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        let i = UsageByteScan.stringEnd(bytes, from: start)
        let n = bytes.count
        if i > start {
            stringNonEmpty = true
            if target.keepsBytes {
                flushSurrogate()
                keep(UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
            }
        }
        guard i < n else { return i }
        switch bytes[i] {
        case 0x22: endString()
        case 0x5C: state = .escape
        default: state = .failed  // a raw control character (RFC 8259 §7)
        }
        return i &+ 1
    }

    private mutating func keep(_ bytes: UnsafeRawBufferPointer) {
        switch target {
        case .key: key.append(bytes)
        case .model: document.model.append(bytes)
        case .type: document.type.append(bytes)
        case .skip, .content: break
        }
    }

    private mutating func keep(_ byte: UInt8) {
        switch target {
        case .key: key.append(byte)
        case .model: document.model.append(byte)
        case .type: document.type.append(byte)
        case .skip, .content: break
        }
    }

    private mutating func endString() {
        flushSurrogate()
        switch target {
        case .key:
            top.key = key.isComplete ? key.withBytes { MemberName($0) } : .other
            state = .colon
            return
        case .content:
            if stringNonEmpty { document.contentDeltas &+= 1 }
        case .skip, .model, .type:
            break
        }
        valueEnded()
    }

    private mutating func escape(_ b: UInt8) {
        stringNonEmpty = true
        let decoded: UInt8
        switch b {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded = b
        case UInt8(ascii: "b"): decoded = 0x08
        case UInt8(ascii: "f"): decoded = 0x0C
        case UInt8(ascii: "n"): decoded = 0x0A
        case UInt8(ascii: "r"): decoded = 0x0D
        case UInt8(ascii: "t"): decoded = 0x09
        case UInt8(ascii: "u"):
            unicode = 0
            unicodeDigits = 0
            state = .unicode
            return
        default:
            state = .failed
            return
        }
        flushSurrogate()
        keep(decoded)
        state = .string
    }

    private mutating func unicodeDigit(_ b: UInt8) {
        let v: UInt8
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): v = b &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): v = b &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): v = b &- UInt8(ascii: "A") &+ 10
        default: state = .failed; return
        }
        unicode = unicode << 4 | UInt32(v)
        unicodeDigits &+= 1
        guard unicodeDigits == 4 else { return }
        state = .string
        guard target.keepsBytes else { return }
        switch unicode {
        case 0xD800...0xDBFF:
            flushSurrogate()
            highSurrogate = unicode
        case 0xDC00...0xDFFF where highSurrogate != 0:
            let scalar = 0x10000 &+ ((highSurrogate &- 0xD800) << 10) &+ (unicode &- 0xDC00)
            highSurrogate = 0
            keepScalar(scalar)
        default:
            flushSurrogate()
            keepScalar(unicode)
        }
    }

    /// A high surrogate not followed by a low one stands for U+FFFD, as in the SDKs' decoders.
    private mutating func flushSurrogate() {
        guard highSurrogate != 0 else { return }
        highSurrogate = 0
        keepScalar(0xFFFD)
    }

    private mutating func keepScalar(_ value: UInt32) {
        let scalar = Unicode.Scalar(value) ?? "\u{FFFD}"
        for unit in UTF8.encode(scalar)! { keep(unit) }
    }
}

// MARK: - Numbers and literals

extension UsageJSONScanner {
    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`.
    struct NumberState {
        enum Phase: UInt8 { case sign, zero, integer, point, fraction, exponentMark, exponentSign, exponent }
        var phase = Phase.sign
        var value = 0
        var digits = 0
        /// A plain non-negative integer so far: the only form a token count takes.
        var isCount = true

        var isComplete: Bool { phase == .zero || phase == .integer || phase == .fraction || phase == .exponent }
    }

    /// A run of digits after the first byte of an integer part (most numbers are only that).
    private mutating func scanDigits(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        guard number.phase == .integer else { return start }
        var i = start
        var value = number.value
        var digits = number.digits
        while i < bytes.count {
            let digit = bytes[i] &- UInt8(ascii: "0")
            guard digit <= 9 else { break }
            value = value &* 10 &+ Int(digit)
            digits &+= 1
            i &+= 1
        }
        if digits > 15 { number.isCount = false }  // also keeps `value` from overflowing below
        if number.isCount {
            number.value = value
            number.digits = digits
        }
        return i
    }

    private mutating func numberByte(_ b: UInt8) {
        let digit = b &- UInt8(ascii: "0")
        if digit <= 9 {
            switch number.phase {
            case .sign: number.phase = digit == 0 ? .zero : .integer
            case .zero: state = .failed; return
            case .integer: break
            case .point, .fraction: number.phase = .fraction; number.isCount = false
            case .exponentMark, .exponentSign, .exponent: number.phase = .exponent
            }
            if number.isCount {
                number.value = number.value &* 10 &+ Int(digit)
                number.digits &+= 1
                if number.digits > 15 { number.isCount = false }
            }
            return
        }
        switch b {
        case UInt8(ascii: "-") where number.phase == .sign && number.digits == 0 && number.isCount:
            number.isCount = false  // negative: valid JSON, never a count
            return
        case UInt8(ascii: "."):
            guard number.phase == .zero || number.phase == .integer else { state = .failed; return }
            number.phase = .point
            number.isCount = false
            return
        case UInt8(ascii: "e"), UInt8(ascii: "E"):
            guard number.phase == .zero || number.phase == .integer || number.phase == .fraction else {
                state = .failed; return
            }
            number.phase = .exponentMark
            number.isCount = false
            return
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard number.phase == .exponentMark else { state = .failed; return }
            number.phase = .exponentSign
            return
        default:
            guard number.isComplete else { state = .failed; return }
            if let (location, field) = countField, number.isCount { document.set(field, at: location, to: number.value) }
            valueEnded()
            step(b)  // the byte after the number belongs to what follows it
        }
    }

    private mutating func beginLiteral(_ word: StaticString) {
        literal = word
        literalIndex = 1
        state = .literal
    }

    private mutating func literalByte(_ b: UInt8) {
        let expected = literal.withUTF8Buffer { $0[literalIndex] }
        guard b == expected else { state = .failed; return }
        literalIndex &+= 1
        if literalIndex == literal.utf8CodeUnitCount { valueEnded() }
    }
}

// MARK: - The path

extension UsageJSONScanner {
    /// An open container on the interesting path.
    enum Container: Equatable {
        case root, response, message, choices, choice, delta
        case usage(UsageLocation)
        case promptDetails(UsageLocation), inputDetails(UsageLocation)

        var isArray: Bool { self == .choices }
    }

    struct Frame {
        var container: Container
        var isArray: Bool
        /// The member whose value comes next (objects).
        var key = MemberName.other
    }

    /// What the next value is to the reader.
    enum Role {
        case skip
        /// A container on the interesting path (an object, or `choices`' array).
        case container(Container)
        case count(UsageLocation, UsageCounts.Field)
        case keep(StringTarget)
        /// A string counted as a content delta when not empty.
        case content
        /// Counted as a content delta when it is an array (`tool_calls`).
        case presence
    }

    private func valueRole() -> Role {
        guard frameCount > 0 else { return .container(.root) }
        let frame = top
        if frame.isArray { return frame.container == .choices ? .container(.choice) : .skip }
        let name = frame.key
        switch frame.container {
        case .root:
            switch name {
            case .model: return .keep(.model)
            case .type: return .keep(.type)
            case .usage: return .container(.usage(.root))
            case .response: return .container(.response)
            case .message: return .container(.message)
            case .choices: return countsDeltas ? .container(.choices) : .skip
            default: return .skip
            }
        case .response, .message:
            let location: UsageLocation = frame.container == .response ? .response : .message
            switch name {
            case .model: return .keep(.model)
            case .usage: return .container(.usage(location))
            default: return .skip
            }
        case .usage(let location):
            switch name {
            case .promptTokens: return .count(location, .promptTokens)
            case .completionTokens: return .count(location, .completionTokens)
            case .inputTokens: return .count(location, .inputTokens)
            case .outputTokens: return .count(location, .outputTokens)
            case .cacheReadInputTokens: return .count(location, .cacheReadInputTokens)
            case .cacheCreationInputTokens: return .count(location, .cacheCreationInputTokens)
            case .promptTokensDetails: return .container(.promptDetails(location))
            case .inputTokensDetails: return .container(.inputDetails(location))
            default: return .skip
            }
        case .promptDetails(let location):
            return name == .cachedTokens ? .count(location, .promptCachedTokens) : .skip
        case .inputDetails(let location):
            return name == .cachedTokens ? .count(location, .inputCachedTokens) : .skip
        case .choice:
            switch name {
            case .delta: return .container(.delta)
            case .text: return .content
            default: return .skip
            }
        case .delta:
            switch name {
            case .content, .refusal, .reasoningContent, .reasoning: return .content
            case .toolCalls: return .presence
            default: return .skip
            }
        case .choices:
            return .skip
        }
    }
}

/// The member names the scanner acts on; any other is `.other`.
enum MemberName: UInt8 {
    case other
    case model, type, usage, response, message, choices, delta, content, text, refusal, reasoningContent, reasoning
    case toolCalls
    case promptTokens, completionTokens, promptTokensDetails, cachedTokens
    case inputTokens, outputTokens, inputTokensDetails, cacheReadInputTokens, cacheCreationInputTokens

    init(_ name: UnsafeRawBufferPointer) {
        self = .other
        @inline(__always) func equals(_ literal: StaticString) -> Bool {
            literal.withUTF8Buffer { text in
                for i in 0..<text.count where name[i] != text[i] { return false }
                return true
            }
        }
        // By length first: one or two comparisons per member name.
        switch name.count {
        case 4: if equals("type") { self = .type } else if equals("text") { self = .text }
        case 5:
            if equals("model") { self = .model }
            else if equals("usage") { self = .usage }
            else if equals("delta") { self = .delta }
        case 7:
            if equals("choices") { self = .choices }
            else if equals("content") { self = .content }
            else if equals("message") { self = .message }
            else if equals("refusal") { self = .refusal }
        case 8: if equals("response") { self = .response }
        case 9: if equals("reasoning") { self = .reasoning }
        case 10: if equals("tool_calls") { self = .toolCalls }
        case 12: if equals("input_tokens") { self = .inputTokens }
        case 13:
            if equals("prompt_tokens") { self = .promptTokens }
            else if equals("output_tokens") { self = .outputTokens }
            else if equals("cached_tokens") { self = .cachedTokens }
        case 17:
            if equals("completion_tokens") { self = .completionTokens }
            else if equals("reasoning_content") { self = .reasoningContent }
        case 20: if equals("input_tokens_details") { self = .inputTokensDetails }
        case 21: if equals("prompt_tokens_details") { self = .promptTokensDetails }
        case 23: if equals("cache_read_input_tokens") { self = .cacheReadInputTokens }
        case 27: if equals("cache_creation_input_tokens") { self = .cacheCreationInputTokens }
        default: break
        }
    }
}
