#if canImport(Glibc)
import Glibc
#endif

/// A string value the JSON scanner keeps (a model name, an event type, a member name), stored in
/// place: at most `capacity` bytes and no allocation. A longer value is marked `overflowed` and
/// reads as absent rather than cut, so a long model name is never reported as a shorter one.
struct KeptBytes<let capacity: Int> {
    fileprivate var storage = InlineArray<capacity, UInt8>(repeating: 0)
    private(set) var count = 0
    private(set) var overflowed = false
    /// A value was kept since the last `clear()` (a JSON string, possibly empty).
    private(set) var isSet = false

    mutating func clear() {
        count = 0
        overflowed = false
        isSet = false
    }

    /// Starts a new value (a string began).
    mutating func begin() {
        count = 0
        overflowed = false
        isSet = true
    }

    mutating func append(_ byte: UInt8) {
        guard count < capacity else { overflowed = true; return }
        storage[count] = byte
        count &+= 1
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count <= capacity &- count else { overflowed = true; return }
        let at = count
        withUnsafeMutableBytes(of: &storage) {
            $0.baseAddress!.advanced(by: at).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        }
        count &+= bytes.count
    }

    /// The value when it was kept whole.
    var isComplete: Bool { isSet && !overflowed }

    func equals(_ literal: StaticString) -> Bool {
        guard isComplete, literal.utf8CodeUnitCount == count else { return false }
        return literal.withUTF8Buffer { text in
            for i in 0..<count where storage[i] != text[i] { return false }
            return true
        }
    }

    /// The kept bytes, in place (mutating only so that the storage is not copied first).
    mutating func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        let n = count
        return withUnsafeBytes(of: &storage) { body(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
    }

    func hasPrefix(_ literal: StaticString) -> Bool {
        guard isComplete, literal.utf8CodeUnitCount <= count else { return false }
        return literal.withUTF8Buffer { text in
            for i in 0..<text.count where storage[i] != text[i] { return false }
            return true
        }
    }

    func hasSuffix(_ literal: StaticString) -> Bool {
        guard isComplete, literal.utf8CodeUnitCount <= count else { return false }
        return literal.withUTF8Buffer { text in
            let offset = count &- text.count
            for i in 0..<text.count where storage[offset &+ i] != text[i] { return false }
            return true
        }
    }

    /// Keeps `other`'s value (a whole one, not overflowed), copying only its bytes.
    mutating func set(_ other: borrowing KeptBytes<capacity>) {
        let n = other.count
        other.storage.span.withUnsafeBufferPointer { from in
            withUnsafeMutableBytes(of: &storage) { $0.baseAddress!.copyMemory(from: from.baseAddress!, byteCount: n) }
        }
        count = n
        overflowed = other.overflowed
        isSet = other.isSet
    }

    /// The value as text (an allocation: called once per response, for the model).
    var string: String? {
        guard isComplete else { return nil }
        return storage.span.withUnsafeBufferPointer {
            String(decoding: UnsafeBufferPointer(rebasing: $0[..<count]), as: UTF8.self)
        }
    }
}

/// Where in a document a `usage` object was found.
enum UsageLocation {
    /// The top-level `usage` (OpenAI JSON and chunks, Responses JSON, Anthropic JSON and `message_delta`).
    case root
    /// `response.usage` (Responses API stream events).
    case response
    /// `message.usage` (Anthropic `message_start`).
    case message
}

/// The members of one `usage` object the reader uses, as the provider wrote them. A member that
/// is absent, null, negative, fractional or longer than 15 digits is nil.
///
/// Kept as eight words and a bit each (a word not given is not looked at, `==` included): emptied
/// by two stores (`restart`), where eight `Int?` were seventeen, for every document that has a
/// `usage` member, null or not (docs/performance.md, "Session 16, usagetap").
struct UsageCounts: Equatable {
    enum Field {
        case promptTokens, completionTokens, promptCachedTokens
        case inputTokens, outputTokens, inputCachedTokens, cacheReadInputTokens, cacheCreationInputTokens
    }

    /// The member was an object (not null): the document carries usage here.
    var present = false
    /// Bit f: the count of the f-th `Field` was given.
    private var given: UInt8 = 0
    private var prompt = 0
    private var completion = 0
    private var promptCached = 0
    private var input = 0
    private var output = 0
    private var inputCached = 0
    private var cacheReadInput = 0
    private var cacheCreationInput = 0

    init(
        present: Bool = false, promptTokens: Int? = nil, completionTokens: Int? = nil, promptCachedTokens: Int? = nil,
        inputTokens: Int? = nil, outputTokens: Int? = nil, inputCachedTokens: Int? = nil, cacheReadInputTokens: Int? = nil,
        cacheCreationInputTokens: Int? = nil
    ) {
        self.present = present
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.promptCachedTokens = promptCachedTokens
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.inputCachedTokens = inputCachedTokens
        self.cacheReadInputTokens = cacheReadInputTokens
        self.cacheCreationInputTokens = cacheCreationInputTokens
    }

    /// Empty, in place: `UsageCounts(present: present)` without writing the words.
    @inline(__always)
    mutating func restart(present: Bool) {
        self.present = present
        given = 0
    }

    @inline(__always) private static func store(_ value: Int?, _ word: inout Int, _ given: inout UInt8, _ bit: UInt8) {
        if let value {
            word = value
            given |= bit
        } else {
            given &= ~bit
        }
    }

    var promptTokens: Int? {
        get { given & 1 != 0 ? prompt : nil }
        set { Self.store(newValue, &prompt, &given, 1) }
    }
    var completionTokens: Int? {
        get { given & 2 != 0 ? completion : nil }
        set { Self.store(newValue, &completion, &given, 2) }
    }
    /// `prompt_tokens_details.cached_tokens`
    var promptCachedTokens: Int? {
        get { given & 4 != 0 ? promptCached : nil }
        set { Self.store(newValue, &promptCached, &given, 4) }
    }
    var inputTokens: Int? {
        get { given & 8 != 0 ? input : nil }
        set { Self.store(newValue, &input, &given, 8) }
    }
    var outputTokens: Int? {
        get { given & 16 != 0 ? output : nil }
        set { Self.store(newValue, &output, &given, 16) }
    }
    /// `input_tokens_details.cached_tokens`
    var inputCachedTokens: Int? {
        get { given & 32 != 0 ? inputCached : nil }
        set { Self.store(newValue, &inputCached, &given, 32) }
    }
    var cacheReadInputTokens: Int? {
        get { given & 64 != 0 ? cacheReadInput : nil }
        set { Self.store(newValue, &cacheReadInput, &given, 64) }
    }
    var cacheCreationInputTokens: Int? {
        get { given & 128 != 0 ? cacheCreationInput : nil }
        set { Self.store(newValue, &cacheCreationInput, &given, 128) }
    }

    /// The same members given, with the same values (the words of members not given differ).
    static func == (a: UsageCounts, b: UsageCounts) -> Bool {
        a.present == b.present && a.given == b.given && a.promptTokens == b.promptTokens
            && a.completionTokens == b.completionTokens && a.promptCachedTokens == b.promptCachedTokens
            && a.inputTokens == b.inputTokens && a.outputTokens == b.outputTokens
            && a.inputCachedTokens == b.inputCachedTokens && a.cacheReadInputTokens == b.cacheReadInputTokens
            && a.cacheCreationInputTokens == b.cacheCreationInputTokens
    }

    subscript(field: Field) -> Int? {
        get {
            switch field {
            case .promptTokens: promptTokens
            case .completionTokens: completionTokens
            case .promptCachedTokens: promptCachedTokens
            case .inputTokens: inputTokens
            case .outputTokens: outputTokens
            case .inputCachedTokens: inputCachedTokens
            case .cacheReadInputTokens: cacheReadInputTokens
            case .cacheCreationInputTokens: cacheCreationInputTokens
            }
        }
        set {
            switch field {
            case .promptTokens: promptTokens = newValue
            case .completionTokens: completionTokens = newValue
            case .promptCachedTokens: promptCachedTokens = newValue
            case .inputTokens: inputTokens = newValue
            case .outputTokens: outputTokens = newValue
            case .inputCachedTokens: inputCachedTokens = newValue
            case .cacheReadInputTokens: cacheReadInputTokens = newValue
            case .cacheCreationInputTokens: cacheCreationInputTokens = newValue
            }
        }
    }

    /// Anthropic's `message_delta.usage` is cumulative: each member it carries replaces the one
    /// `message_start` (or an earlier delta) gave. Nothing is ever summed across events — the
    /// double-counted cache tokens of other gateways came from summing.
    mutating func overlay(_ later: UsageCounts) {
        present = present || later.present
        if let v = later.promptTokens { promptTokens = v }
        if let v = later.completionTokens { completionTokens = v }
        if let v = later.promptCachedTokens { promptCachedTokens = v }
        if let v = later.inputTokens { inputTokens = v }
        if let v = later.outputTokens { outputTokens = v }
        if let v = later.inputCachedTokens { inputCachedTokens = v }
        if let v = later.cacheReadInputTokens { cacheReadInputTokens = v }
        if let v = later.cacheCreationInputTokens { cacheCreationInputTokens = v }
    }

    /// The counts normalised by their shape, whatever the path (spec §2):
    /// * `prompt_tokens` (OpenAI Chat Completions, Completions, Embeddings): input is
    ///   `prompt_tokens`, which already includes `prompt_tokens_details.cached_tokens`.
    /// * `input_tokens` (Responses API, Anthropic): input is `input_tokens` plus Anthropic's
    ///   `cache_read_input_tokens` and `cache_creation_input_tokens`, which Anthropic counts apart
    ///   (the Responses API has neither: its `input_tokens` includes
    ///   `input_tokens_details.cached_tokens`). Cache reads are Anthropic's reads, else the
    ///   Responses API's cached tokens.
    /// Reasoning tokens are part of `completion_tokens` / `output_tokens` already and are not added.
    /// nil when the object has neither family. (Inlined: called, it was given a copy of the
    /// counts, 129 bytes.)
    @inline(__always)
    var normalized: NormalizedUsage? {
        if let prompt = promptTokens {
            return NormalizedUsage(
                input: prompt, output: completionTokens ?? 0, cacheRead: promptCachedTokens ?? 0,
                cacheWrite: 0)
        }
        guard
            inputTokens != nil || outputTokens != nil || cacheReadInputTokens != nil
                || cacheCreationInputTokens != nil
        else { return nil }
        let read = cacheReadInputTokens ?? inputCachedTokens ?? 0
        let write = cacheCreationInputTokens ?? 0
        return NormalizedUsage(
            input: (inputTokens ?? 0) + (cacheReadInputTokens ?? 0) + write,
            output: outputTokens ?? 0, cacheRead: read, cacheWrite: write)
    }
}

/// Counts in the reader's normalised form (see `UsageResult`).
struct NormalizedUsage: Equatable {
    var input: Int
    var output: Int
    var cacheRead: Int
    var cacheWrite: Int
}

/// Everything the scanner keeps from one JSON document (a body, or one event's data): a few
/// fixed-size values, whatever the document's size.
struct UsageDocument {
    /// The top-level `type` (Anthropic and Responses API events).
    var type = KeptBytes<64>()
    /// The top-level `model`, `response.model` or `message.model`, whichever came last (a
    /// document has one of them).
    var model = KeptBytes<256>()
    var usage = UsageCounts()
    var responseUsage = UsageCounts()
    var messageUsage = UsageCounts()
    /// OpenAI chunk deltas that carried content: `choices[].delta` with a non-empty `content`,
    /// `refusal`, `reasoning_content` or `reasoning`, or with `tool_calls`; `choices[].text`
    /// (Completions) non-empty.
    var contentDeltas = 0

    /// Bit 0, 1, 2: `usage`, `responseUsage`, `messageUsage` may have been written since the
    /// last `clear()` (through `set`, `start` or the subscript; a bit clear means the counts are
    /// empty). `clear()` empties only those: a body or an event uses one at most, and each is
    /// about sixteen stores (`docs/performance.md`, "usagejson4").
    private var written: UInt8 = 0

    mutating func clear() {
        type.clear()
        model.clear()
        if written != 0 {
            if written & 1 != 0 { usage.restart(present: false) }
            if written & 2 != 0 { responseUsage.restart(present: false) }
            if written & 4 != 0 { messageUsage.restart(present: false) }
            written = 0
        }
        contentDeltas = 0
    }

    @inline(__always)
    private mutating func noteWritten(_ location: UsageLocation) {
        switch location {
        case .root: written |= 1
        case .response: written |= 2
        case .message: written |= 4
        }
    }

    /// In place (through `subscript(location:)`, the counts were copied out and back).
    mutating func set(_ field: UsageCounts.Field, at location: UsageLocation, to value: Int?) {
        noteWritten(location)
        switch location {
        case .root: usage[field] = value
        case .response: responseUsage[field] = value
        case .message: messageUsage[field] = value
        }
    }

    /// `present`: an object opened there; false: the member's earlier value is forgotten.
    mutating func start(_ location: UsageLocation, present: Bool) {
        noteWritten(location)
        switch location {
        case .root: usage.restart(present: present)
        case .response: responseUsage.restart(present: present)
        case .message: messageUsage.restart(present: present)
        }
    }

    subscript(location: UsageLocation) -> UsageCounts {
        get {
            switch location {
            case .root: usage
            case .response: responseUsage
            case .message: messageUsage
            }
        }
        set {
            noteWritten(location)
            switch location {
            case .root: usage = newValue
            case .response: responseUsage = newValue
            case .message: messageUsage = newValue
            }
        }
    }
}
