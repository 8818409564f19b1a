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
        /// What the value of the member named last is (objects): found from the name's bytes once,
        /// when the name ends (`name(_:)`).
        var member = Role.skip
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
    @inline(__always)
    mutating func valueRole() -> Role {
        guard frameCount > 0 else { return .container(.root) }
        if top.isArray { return top.container == .choices ? .container(.choice) : .skip }
        return top.member
    }

    /// A member of the innermost object is named `name` (its bytes, escapes decoded): its value's role.
    @inline(__always)
    mutating func name(_ name: UnsafeRawBufferPointer) {
        // Most names are none of the reader's by their length alone (`id`, `object`, …).
        guard name.count < 64, Self.namedLengths >> UInt64(name.count) & 1 != 0 else {
            top.member = .skip
            return
        }
        top.member = Self.role(ofMember: name, in: top.container, countsDeltas: countsDeltas)
    }

    /// Bit n set: some name `role(ofMember:in:countsDeltas:)` knows is n bytes long.
    /// (4, 5, 7, 8, 9, 10, 12, 13, 17, 20, 21, 23 and 27.)
    static var namedLengths: UInt64 { 0x8B2_37B0 }

    /// The role of the value of member `name` of an object `container` (by the name's length
    /// first, then a word or two compared at once: a name that matters to no container is one
    /// comparison of its length).
    static func role(ofMember name: UnsafeRawBufferPointer, in container: Container, countsDeltas: Bool) -> Role {
        @inline(__always) func named(_ literal: StaticString) -> Bool { MemberName.equals(name, literal) }
        switch container {
        case .root:
            switch name.count {
            case 4: return named("type") ? .keep(.type) : .skip
            case 5:
                if named("model") { return .keep(.model) }
                return named("usage") ? .container(.usage(.root)) : .skip
            case 7:
                if named("message") { return .container(.message) }
                return countsDeltas && named("choices") ? .container(.choices) : .skip
            case 8: return named("response") ? .container(.response) : .skip
            default: return .skip
            }
        case .response, .message:
            guard name.count == 5 else { return .skip }
            if named("model") { return .keep(.model) }
            return named("usage") ? .container(.usage(container == .response ? .response : .message)) : .skip
        case .usage(let location):
            switch name.count {
            case 12: return named("input_tokens") ? .count(location, .inputTokens) : .skip
            case 13:
                if named("prompt_tokens") { return .count(location, .promptTokens) }
                return named("output_tokens") ? .count(location, .outputTokens) : .skip
            case 17: return named("completion_tokens") ? .count(location, .completionTokens) : .skip
            case 20: return named("input_tokens_details") ? .container(.inputDetails(location)) : .skip
            case 21: return named("prompt_tokens_details") ? .container(.promptDetails(location)) : .skip
            case 23: return named("cache_read_input_tokens") ? .count(location, .cacheReadInputTokens) : .skip
            case 27: return named("cache_creation_input_tokens") ? .count(location, .cacheCreationInputTokens) : .skip
            default: return .skip
            }
        case .promptDetails(let location):
            return name.count == 13 && named("cached_tokens") ? .count(location, .promptCachedTokens) : .skip
        case .inputDetails(let location):
            return name.count == 13 && named("cached_tokens") ? .count(location, .inputCachedTokens) : .skip
        case .choice:
            switch name.count {
            case 4: return named("text") ? .content : .skip
            case 5: return named("delta") ? .container(.delta) : .skip
            default: return .skip
            }
        case .delta:
            switch name.count {
            case 7: return named("content") || named("refusal") ? .content : .skip
            case 9: return named("reasoning") ? .content : .skip
            case 10: return named("tool_calls") ? .presence : .skip
            case 17: return named("reasoning_content") ? .content : .skip
            default: return .skip
            }
        case .choices:
            return .skip
        }
    }
}

/// The member names the event prefilter acts on (`UsageEventPrefilter`); any other is `.other`.
enum MemberName: UInt8 {
    case other
    case model, type, usage, response, message, choices, delta, content, text, refusal, reasoningContent, reasoning
    case toolCalls
    case promptTokens, completionTokens, promptTokensDetails, cachedTokens
    case inputTokens, outputTokens, inputTokensDetails, cacheReadInputTokens, cacheCreationInputTokens

    init(_ name: UnsafeRawBufferPointer) {
        self = .other
        // By length first, then a word or two compared at once: one or two comparisons per name.
        switch name.count {
        case 4: if Self.equals(name, "type") { self = .type } else if Self.equals(name, "text") { self = .text }
        case 5:
            if Self.equals(name, "model") {
                self = .model
            } else if Self.equals(name, "usage") {
                self = .usage
            } else if Self.equals(name, "delta") {
                self = .delta
            }
        case 7:
            if Self.equals(name, "choices") {
                self = .choices
            } else if Self.equals(name, "content") {
                self = .content
            } else if Self.equals(name, "message") {
                self = .message
            } else if Self.equals(name, "refusal") {
                self = .refusal
            }
        case 8: if Self.equals(name, "response") { self = .response }
        case 9: if Self.equals(name, "reasoning") { self = .reasoning }
        case 10: if Self.equals(name, "tool_calls") { self = .toolCalls }
        case 12: if Self.equals(name, "input_tokens") { self = .inputTokens }
        case 13:
            if Self.equals(name, "prompt_tokens") {
                self = .promptTokens
            } else if Self.equals(name, "output_tokens") {
                self = .outputTokens
            } else if Self.equals(name, "cached_tokens") {
                self = .cachedTokens
            }
        case 17:
            if Self.equals(name, "completion_tokens") {
                self = .completionTokens
            } else if Self.equals(name, "reasoning_content") {
                self = .reasoningContent
            }
        case 20: if Self.equals(name, "input_tokens_details") { self = .inputTokensDetails }
        case 21: if Self.equals(name, "prompt_tokens_details") { self = .promptTokensDetails }
        case 23: if Self.equals(name, "cache_read_input_tokens") { self = .cacheReadInputTokens }
        case 27: if Self.equals(name, "cache_creation_input_tokens") { self = .cacheCreationInputTokens }
        default: break
        }
    }

    /// `name` (as long as `literal`, 4 bytes or more) is `literal`: compared a word at a time, the
    /// last word overlapping the one before it (the literal's words fold to constants).
    @inline(__always)
    static func equals(_ name: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        let text = UnsafeRawPointer(literal.utf8Start)
        let n = literal.utf8CodeUnitCount
        if n < 8 {
            return name.loadUnaligned(as: UInt32.self) == text.loadUnaligned(as: UInt32.self)
                && name.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)
                    == text.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)
        }
        var at = 0
        while at &+ 8 < n {
            guard name.loadUnaligned(fromByteOffset: at, as: UInt64.self) == text.loadUnaligned(fromByteOffset: at, as: UInt64.self)
            else { return false }
            at &+= 8
        }
        return name.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
            == text.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
    }
}
