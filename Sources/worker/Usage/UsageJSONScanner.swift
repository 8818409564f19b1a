/// Reads one JSON document (RFC 8259) fed in slices of any size, and keeps only what the usage
/// reader needs (`UsageDocument`): no tree is built, strings it does not need are skipped without
/// being kept, and its memory is this value alone — about a kilobyte inline, no heap — however
/// large the document (`retainedBytes`; `BitwiseCopyable` has the compiler check that it holds
/// no reference).
///
/// It tracks the path only where a value it needs can be: the top level, `usage` and its
/// `*_details`, `response`, `message`, `choices[]` and their `delta`. Below any other member it
/// keeps one bit per open container (object or array), so that brackets are still matched; a
/// document nested deeper than `maximumDepth` is treated as invalid. It validates the grammar
/// as it goes, so `finish()` says whether the bytes were exactly one JSON value: a client's
/// parser rejects anything else, and so does the reader. Duplicate members: the last wins, as in
/// the parsers of the SDKs.
///
/// Cost: one pass, one branch per structural byte; strings it skips go through a tight loop that
/// only looks for `"`, `\` and control bytes.
struct UsageJSONScanner: BitwiseCopyable {
    /// Open containers, tracked or not, beyond which a document is rejected (a client's parser
    /// has a limit too; this one keeps the bit stack below a fixed size).
    static let maximumDepth = 512

    private(set) var document = UsageDocument()

    private var state = State.value
    /// Containers on the interesting path, from the root down (at most four deep: root,
    /// `response`, `usage`, `input_tokens_details`; or root, `choices`, a choice, its `delta`).
    private var frames = InlineArray<4, Frame>(repeating: Frame(container: .root, isArray: false))
    private var frameCount = 0
    /// Open containers below the interesting path, and whether each is an array (one bit each).
    private var ignoredDepth = 0
    private var ignoredKinds = InlineArray<8, UInt64>(repeating: 0)

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
        ignoredDepth = 0
        highSurrogate = 0
    }

    /// Whether the bytes fed since the last reset were one whole JSON value and nothing else.
    func finish() -> Bool {
        // A top-level number ends with the document, not with a byte after it.
        state == .done || (state == .number && depth == 0 && number.isComplete)
    }

    mutating func scan(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        let n = bytes.count
        while i < n {
            switch state {
            case .string:
                i = scanString(bytes, from: i)
            case .failed:
                return
            default:
                step(bytes[i])
                i &+= 1
            }
        }
    }
}

// MARK: - Grammar

extension UsageJSONScanner {
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
        case string, escape, unicode, number, literal
        /// The top-level value is complete: only white space may follow.
        case done
        case failed
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
            case UInt8(ascii: ","): state = topIsArray ? .value : .key
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
        case .string, .failed:
            break
        }
    }

    private var depth: Int { frameCount &+ ignoredDepth }

    private var topIsArray: Bool {
        if ignoredDepth > 0 {
            let bit = ignoredDepth &- 1
            return ignoredKinds[bit >> 6] & (1 << UInt64(bit & 63)) != 0
        }
        return frames[frameCount &- 1].isArray
    }

    private mutating func beginValue(_ b: UInt8) {
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
            document[location] = UsageCounts()
        case .container(.response):
            document.responseUsage = UsageCounts()
        case .container(.message):
            document.messageUsage = UsageCounts()
        case .count(let location, let field):
            document[location][field] = nil
        case .keep(.model): document.model.clear()
        case .keep(.nestedModel): document.nestedModel.clear()
        case .keep(.type): document.type.clear()
        case .container, .keep, .content, .presence, .skip:
            break
        }
    }

    /// A value ended (scalar or container): what may follow depends on the container around it.
    private mutating func valueEnded() {
        state = depth == 0 ? .done : .afterValue
    }

    private mutating func open(array: Bool, role: Role) {
        if case .container(let container) = role, container.isArray == array {
            if case .usage(let location) = container { document[location].present = true }
            frames[frameCount] = Frame(container: container, isArray: array)
            frameCount &+= 1
        } else {
            if case .presence = role, array { document.contentDeltas &+= 1 }
            guard depth < Self.maximumDepth else { state = .failed; return }
            let bit = ignoredDepth
            if array {
                ignoredKinds[bit >> 6] |= 1 << UInt64(bit & 63)
            } else {
                ignoredKinds[bit >> 6] &= ~(1 << UInt64(bit & 63))
            }
            ignoredDepth &+= 1
        }
        state = array ? .valueOrArrayEnd : .keyOrObjectEnd
    }

    private mutating func close(array: Bool) {
        guard depth > 0, topIsArray == array else { state = .failed; return }
        if ignoredDepth > 0 { ignoredDepth &-= 1 } else { frameCount &-= 1 }
        valueEnded()
    }
}

// MARK: - Strings

extension UsageJSONScanner {
    /// What a string's bytes are kept for.
    enum StringTarget: UInt8 {
        case skip, key, model, nestedModel, type
        /// Counted as a content delta when not empty.
        case content
        /// A member name in a container off the interesting path.
        case ignoredKey

        var keepsBytes: Bool { self == .key || self == .model || self == .nestedModel || self == .type }
    }

    private mutating func beginKey() {
        if ignoredDepth == 0 {
            target = .key
            key.begin()
        } else {
            target = .ignoredKey
        }
        state = .string
    }

    private mutating func beginString(_ role: Role) {
        switch role {
        case .keep(let t):
            target = t
            switch t {
            case .model: document.model.begin()
            case .nestedModel: document.nestedModel.begin()
            case .type: document.type.begin()
            case .skip, .key, .content, .ignoredKey: break
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
        var i = start
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b == 0x22 || b == 0x5C || b < 0x20 { break }
            i &+= 1
        }
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
        case .nestedModel: document.nestedModel.append(bytes)
        case .type: document.type.append(bytes)
        case .skip, .content, .ignoredKey: break
        }
    }

    private mutating func keep(_ byte: UInt8) {
        switch target {
        case .key: key.append(byte)
        case .model: document.model.append(byte)
        case .nestedModel: document.nestedModel.append(byte)
        case .type: document.type.append(byte)
        case .skip, .content, .ignoredKey: break
        }
    }

    private mutating func endString() {
        flushSurrogate()
        switch target {
        case .key:
            frames[frameCount &- 1].key = MemberName(key)
            state = .colon
            return
        case .ignoredKey:
            state = .colon
            return
        case .content:
            if stringNonEmpty { document.contentDeltas &+= 1 }
        case .skip, .model, .nestedModel, .type:
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
            if let (location, field) = countField, number.isCount { document[location][field] = number.value }
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
        guard ignoredDepth == 0 else { return .skip }
        guard frameCount > 0 else { return .container(.root) }
        let frame = frames[frameCount &- 1]
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
            case .choices: return .container(.choices)
            default: return .skip
            }
        case .response, .message:
            let location: UsageLocation = frame.container == .response ? .response : .message
            switch name {
            case .model: return .keep(.nestedModel)
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

    init(_ name: KeptBytes<32>) {
        self = .other
        guard name.isComplete else { return }
        for candidate in Self.table where name.equals(candidate.0) {
            self = candidate.1
            return
        }
    }

    private static let table: [(StaticString, MemberName)] = [
        ("model", .model), ("type", .type), ("usage", .usage), ("response", .response), ("message", .message),
        ("choices", .choices), ("delta", .delta), ("content", .content), ("text", .text), ("refusal", .refusal),
        ("reasoning_content", .reasoningContent), ("reasoning", .reasoning), ("tool_calls", .toolCalls),
        ("prompt_tokens", .promptTokens), ("completion_tokens", .completionTokens),
        ("prompt_tokens_details", .promptTokensDetails), ("cached_tokens", .cachedTokens),
        ("input_tokens", .inputTokens), ("output_tokens", .outputTokens),
        ("input_tokens_details", .inputTokensDetails), ("cache_read_input_tokens", .cacheReadInputTokens),
        ("cache_creation_input_tokens", .cacheCreationInputTokens),
    ]
}
