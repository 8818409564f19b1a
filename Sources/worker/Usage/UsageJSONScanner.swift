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
/// says whether the bytes were one JSON object as far as the reader follows it; a document that
/// breaks the grammar where it is followed is not read at all. Duplicate members: the last wins,
/// as in the parsers of the SDKs.
///
/// Cost: the bytes of skipped values and strings are searched eight at a time
/// (`UsageByteScan`) for the few bytes that matter; structural bytes on the followed path take one
/// branch each.
///
/// In four files: the grammar (here), strings (`+Strings`), numbers and literals (`+Numbers`), and
/// the path that says what each value is to the reader (`UsageJSONPath.swift`). Their members are
/// internal rather than private so that the extensions can share them; nothing outside the
/// scanner uses them.
struct UsageJSONScanner: BitwiseCopyable {
    /// What has been found so far (written by the scanner's files only).
    var document = UsageDocument()
    /// Whether `choices[].delta` is followed, to count content deltas: for event streams only
    /// (a JSON body's `choices` are skipped whole).
    var countsDeltas = false

    var state = State.value
    // Containers on the followed path, from the root down (at most four deep: root, `response`,
    // `usage`, `input_tokens_details`; or root, `choices`, a choice, its `delta`).
    var top = Frame(container: .root, isArray: false)
    /// The frames around `top`, outermost first (`frameCount - 1` of them). The innermost is kept
    /// apart because it is read at every value: an `InlineArray` element read from a
    /// non-mutating context made the optimizer copy the whole scanner.
    var outer = InlineArray<3, Frame>(repeating: Frame(container: .root, isArray: false))
    var frameCount = 0
    /// Open brackets of the skipped value being read (0: none is).
    var skipDepth = 0
    /// The document's object was read whole by `readWholeRoot` (where `scan` met its `{`):
    /// `document` holds all it has; `finish()` says whether only white space followed it. (A
    /// JSON body's result is then made from the document, without the tally: `UsageReader`.)
    var readWhole = false

    // The value being read.
    var target = StringTarget.skip
    var stringNonEmpty = false
    var key = KeptBytes<32>()
    var unicode: UInt32 = 0
    var unicodeDigits = 0
    var highSurrogate: UInt32 = 0
    var countField: (UsageLocation, UsageCounts.Field)?
    var number = NumberState()
    var literal: StaticString = "null"
    var literalIndex = 0

    /// Bytes this value holds, all of it inline (it is `BitwiseCopyable`): the whole of its
    /// memory, whatever it scanned.
    static var retainedBytes: Int { MemoryLayout<UsageJSONScanner>.size }

    /// Forgets the document, to read another (the next event's data). (Inlined: a few stores,
    /// where the call cost as much, once a response and once an event.)
    @inline(__always)
    mutating func reset() {
        document.clear()
        state = .value
        frameCount = 0
        skipDepth = 0
        highSurrogate = 0
        readWhole = false
    }

    /// Whether the bytes fed since the last reset were one whole JSON object (as far as the
    /// reader follows it) and nothing else. Usage is only ever in an object: any other top-level
    /// value (`[DONE]`, a number) is not read.
    func finish() -> Bool {
        state == .done
    }

    /// Hands the document to `tally` in place (passing `document` from outside made the
    /// optimizer copy it, a kilobyte per event).
    mutating func report(to tally: inout UsageTally, eventKind: UsageTally.EventKind) {
        tally.add(&document, eventKind: eventKind)
    }

    mutating func scan(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        let n = bytes.count
        while i < n {
            switch state {
            case .string:
                i = scanString(bytes, from: i)
            case .skipping, .skippingString, .skippingEscape:
                i = skip(bytes, from: i)
            case .number:
                i = scanDigits(bytes, from: i)
                if i < n {
                    numberByte(bytes[i])
                    i &+= 1
                }
            case .failed:
                return
            default:
                if state.betweenMembers, frameCount > 0, !top.isArray {
                    let next = readMembers(bytes, from: i)
                    if next > i {
                        i = next
                        continue
                    }
                }
                let b = bytes[i]
                i &+= 1
                // Pretty-printed bodies are a third white space: stepped over here, not in `step`.
                if b <= 0x20 && Self.isWhitespace(b) && state.allowsWhitespace { continue }
                if b == 0x22 && (state == .keyOrObjectEnd || state == .key), let end = quickKey(bytes, from: i) {
                    i = end
                    continue
                }
                if b == UInt8(ascii: "{") && state == .value && frameCount == 0 {
                    // A body whole in this slice: read in one call (event data is not: its
                    // `choices` are followed).
                    if !countsDeltas, let end = readWholeRoot(bytes, from: i) {
                        i = end
                        readWhole = true
                        continue
                    }
                    open(array: false, role: .container(.root))  // the document's object, as `beginValue` opens it
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

    static func isWhitespace(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09
    }

    /// One byte outside a string.
    mutating func step(_ b: UInt8) {
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
        case .string, .skipping, .skippingString, .skippingEscape, .failed:
            break
        }
    }

    mutating func beginValue(_ b: UInt8) {
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
    mutating func clearPrevious(_ role: Role) {
        switch role {
        case .container(.usage(let location)):
            document.start(location, present: false)
        case .container(.response):
            document.responseUsage.restart(present: false)
        case .container(.message):
            document.messageUsage.restart(present: false)
        case .count(let location, let field):
            document.set(field, at: location, to: nil)
        case .keep(.model): document.model.clear()
        case .keep(.type): document.type.clear()
        case .container, .keep, .content, .presence, .skip:
            break
        }
    }

    /// A value ended (scalar or container): what may follow depends on the container around it.
    mutating func valueEnded() {
        state = frameCount == 0 ? .done : .afterValue
    }

    mutating func open(array: Bool, role: Role) {
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

    mutating func close(array: Bool) {
        guard frameCount > 0, top.isArray == array else { state = .failed; return }
        frameCount &-= 1
        if frameCount > 0 { top = outer[frameCount &- 1] }
        valueEnded()
    }

    /// Through a skipped value (`UsageBlockScan`): its brackets and strings, 64 bytes a step.
    mutating func skip(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var position = SkipPosition(
            depth: skipDepth, inString: state != .skipping, escaped: state == .skippingEscape)
        if let end = UsageBlockScan.skip(bytes, from: start, &position) {
            valueEnded()
            return end
        }
        skipDepth = position.depth
        state = position.inString ? (position.escaped ? .skippingEscape : .skippingString) : .skipping
        return bytes.count
    }
}
