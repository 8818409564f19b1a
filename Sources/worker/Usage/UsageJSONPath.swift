// The path the JSON scanner follows: what each value is to the usage reader, by where it stands.

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

    /// (`mutating` only so that `self` is read in place: called from `beginValue`, a
    /// non-mutating call made the optimizer copy the whole scanner, a kilobyte, per value.)
    mutating func valueRole() -> Role {
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
            if equals("model") { self = .model } else if equals("usage") { self = .usage } else if equals("delta") { self = .delta }
        case 7:
            if equals("choices") {
                self = .choices
            } else if equals("content") {
                self = .content
            } else if equals("message") {
                self = .message
            } else if equals("refusal") {
                self = .refusal
            }
        case 8: if equals("response") { self = .response }
        case 9: if equals("reasoning") { self = .reasoning }
        case 10: if equals("tool_calls") { self = .toolCalls }
        case 12: if equals("input_tokens") { self = .inputTokens }
        case 13:
            if equals("prompt_tokens") {
                self = .promptTokens
            } else if equals("output_tokens") {
                self = .outputTokens
            } else if equals("cached_tokens") {
                self = .cachedTokens
            }
        case 17:
            if equals("completion_tokens") { self = .completionTokens } else if equals("reasoning_content") { self = .reasoningContent }
        case 20: if equals("input_tokens_details") { self = .inputTokensDetails }
        case 21: if equals("prompt_tokens_details") { self = .promptTokensDetails }
        case 23: if equals("cache_read_input_tokens") { self = .cacheReadInputTokens }
        case 27: if equals("cache_creation_input_tokens") { self = .cacheCreationInputTokens }
        default: break
        }
    }
}
