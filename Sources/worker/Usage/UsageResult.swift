/// The token usage of one response, normalised as `docs/usage.md` (gateway spec §2) says:
/// `inputTokens` counts every input token, cached ones included (OpenAI's `prompt_tokens`;
/// Anthropic's `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`);
/// `cacheReadTokens` and `cacheWriteTokens` are kept apart and are never added twice.
///
/// A count the response did not give is nil; the caller falls back for `model` to the request's.
struct UsageResult: Equatable, Sendable {
    /// How sure the numbers are: the request line's `usage` field and what limits settle on.
    enum Status: String, Sendable {
        /// The provider's own counts, read whole from a response relayed whole.
        case reported
        /// The response was relayed whole and carried no usage. A stream's `outputTokens` is
        /// then the number of content deltas it relayed.
        case missing
        /// The response ended early (the client left, or the upstream cut it). A stream's
        /// `outputTokens` is at least the number of content deltas relayed (never 0 or 1 when
        /// deltas went out); counts the stream had already reported are kept.
        case truncated
        /// An encoding, a corrupt encoded body or an event larger than the reader's cap: what
        /// could be read is given, but some of the response could not be.
        case unreadable
    }

    var model: String?
    var inputTokens: Int?
    var outputTokens: Int?
    var cacheReadTokens: Int?
    var cacheWriteTokens: Int?
    var status: Status

    init(
        model: String? = nil, inputTokens: Int? = nil, outputTokens: Int? = nil, cacheReadTokens: Int? = nil,
        cacheWriteTokens: Int? = nil, status: Status
    ) {
        self.model = model
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cacheReadTokens = cacheReadTokens
        self.cacheWriteTokens = cacheWriteTokens
        self.status = status
    }
}
