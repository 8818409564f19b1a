/// The usage of one response, put together from its documents (a JSON body, or a stream's
/// events) by the rules of spec §2. A pure value: documents in, a `UsageResult` out.
///
/// * A JSON body, or any event not named below (OpenAI chunks): a non-null top-level `usage`
///   replaces what came before — the last one wins, whatever the chunk's `choices` hold.
/// * Responses API: the terminal event's (`response.completed`, also `response.incomplete` and
///   `response.failed`, which carry the same object) `response.usage` replaces what came before.
/// * Anthropic: `message_start.message.usage` gives input and cache counts; each
///   `message_delta.usage` is cumulative, and each member it carries replaces the earlier one
///   (`overlay`): the last delta's `output_tokens` is the output, and its input and cache counts
///   win when it has them. The usage is reported only once a `message_delta` gave it.
/// * Content deltas (OpenAI `choices[].delta`, Responses `response.*.delta`, Anthropic
///   `content_block_delta`) are counted for the estimate of a stream without final usage.
/// * `model`: the first the response names (top-level, `response.model` or `message.model`).
struct UsageTally {
    /// The model's bytes, kept in place: the `String` is made once, by `result` (a tally holding
    /// a `String` made every copy and reset of the reader's state go through value witnesses).
    private var model = KeptBytes<256>()
    private(set) var contentDeltas = 0
    /// The last usage that replaced earlier ones (OpenAI, Responses API, JSON bodies).
    private var replaced: NormalizedUsage?
    /// Anthropic's members, overlaid event after event.
    private var anthropic = UsageCounts()
    private var anthropicFinal = false
    /// `anthropic` or `anthropicFinal` were written since the last `reset()`.
    private var anthropicWritten = false
    private var source = Source.none

    private enum Source { case none, replaced, anthropic }

    /// For a new response, in place (a new value is built and copied, ~400 bytes).
    @inline(__always)
    mutating func reset() {
        model.clear()
        contentDeltas = 0
        replaced = nil
        // Emptied only when an Anthropic event wrote them (sixteen stores a response otherwise).
        if anthropicWritten {
            anthropic.restart(present: false)
            anthropicFinal = false
            anthropicWritten = false
        }
        source = .none
    }

    /// What an event's `type` (or its SSE `event` name) says about it.
    enum EventKind: Equatable {
        case messageStart, messageDelta, contentBlockDelta
        /// `response.completed`, `response.incomplete`, `response.failed`.
        case responseFinal
        /// A Responses API `response.….delta` event (text, refusal, reasoning, arguments, audio).
        case responseDelta
        /// Any other `response.…` event (`response.created` names the model).
        case responseOther
        /// No type, or one without a rule: read by shape (OpenAI chunks).
        case other

        init(_ type: borrowing KeptBytes<64>) {
            if type.equals("message_start") {
                self = .messageStart
            } else if type.equals("message_delta") {
                self = .messageDelta
            } else if type.equals("content_block_delta") {
                self = .contentBlockDelta
            } else if !type.hasPrefix("response.") {
                self = .other
            } else if type.hasSuffix(".delta") {
                self = .responseDelta
            } else if type.equals("response.completed") {
                self = .responseFinal
            } else if type.equals("response.incomplete") {
                self = .responseFinal
            } else if type.equals("response.failed") {
                self = .responseFinal
            } else {
                self = .responseOther
            }
        }
    }

    /// One whole JSON document: a body, or an event's data (`eventKind`: what its SSE `event`
    /// name says, used when the data has no top-level `type`; `.other` for a body).
    /// (`inout` only so that the document is read where it lies: passed borrowed, the caller
    /// copied it, 768 bytes, for every document.)
    mutating func add(_ document: inout UsageDocument, eventKind: EventKind) {
        let kind = document.type.isComplete ? EventKind(document.type) : eventKind
        switch kind {
        case .messageStart:
            name(&document.model)
            if document.messageUsage.present {
                anthropic.overlay(document.messageUsage)
                anthropicWritten = true
                source = .anthropic
            }
        case .messageDelta:
            name(&document.model)
            if document.usage.present {
                anthropic.overlay(document.usage)
                anthropicWritten = true
                anthropicFinal = true
                source = .anthropic
            }
        case .contentBlockDelta:
            contentDeltas &+= 1
        case .responseFinal:
            name(&document.model)
            if document.responseUsage.present, let usage = document.responseUsage.normalized {
                replaced = usage
                source = .replaced
            }
        case .responseDelta:
            contentDeltas &+= 1
        case .responseOther:
            name(&document.model)
        case .other:
            name(&document.model)
            contentDeltas &+= document.contentDeltas
            if document.usage.present, let usage = document.usage.normalized {
                replaced = usage
                source = .replaced
            }
        }
    }

    /// The response has named its model.
    var knowsModel: Bool { model.isSet }

    /// The document's model, when it is the first the response names. Its bytes are read in
    /// place: `KeptBytes.set` of a borrowed value copied its 256 bytes to the stack first.
    private mutating func name(_ kept: inout KeptBytes<256>) {
        guard !model.isSet, kept.isComplete, kept.count > 0 else { return }
        kept.withBytes { name($0) }
    }

    /// The model the response named, as a new `String`.
    var modelString: String? { model.string }

    /// The model the response named, as the `String` of `names` (the worker's: a response naming
    /// a model named before allocates nothing).
    @inline(__always)
    mutating func modelName(in names: UsageModelNames) -> String? {
        guard model.isComplete else { return nil }
        return names.name(of: &model)
    }

    /// The model named by an event the prefilter read (its top-level `model`, 1 to 256 bytes).
    mutating func name(_ bytes: UnsafeRawBufferPointer) {
        guard !model.isSet, !bytes.isEmpty else { return }
        model.begin()
        model.append(bytes)
    }

    /// An event the splitter did not hand on because its `event` name says it is a content
    /// delta (`content_block_delta`, `response.….delta`): such events carry no usage.
    mutating func addDelta() {
        contentDeltas &+= 1
    }

    /// Content deltas of an event the prefilter read (`UsageEventPrefilter`).
    mutating func addDeltas(_ count: Int) {
        contentDeltas &+= count
    }

    /// The result once the response has ended. `stream`: the body was an event stream, whose
    /// content deltas estimate the output when the usage is not the provider's final word.
    /// `model`: `modelString` or `modelName(in:)`. (`mutating` only so that the tally is read
    /// in place.)
    @inline(__always)
    mutating func result(complete: Bool, unreadable: Bool, stream: Bool, model: String?) -> UsageResult {
        var usage: NormalizedUsage?
        var final = false
        switch source {
        case .none: break
        case .replaced: usage = replaced; final = true
        case .anthropic: usage = anthropic.normalized; final = anthropicFinal
        }
        let status: UsageResult.Status =
            unreadable ? .unreadable : !complete ? .truncated : final && usage != nil ? .reported : .missing
        var output = usage?.output
        if stream && status != .reported {
            // Never below the deltas relayed: a stream cut after 806 deltas is not 1 token
            // (the 1 of Anthropic's `message_start`).
            output = max(output ?? 0, contentDeltas)
        }
        // Made once, as returned: a result changed after it was made was copied whole.
        return UsageResult(
            model: model, inputTokens: usage?.input, outputTokens: output,
            cacheReadTokens: usage?.cacheRead, cacheWriteTokens: usage?.cacheWrite, status: status)
    }
}
