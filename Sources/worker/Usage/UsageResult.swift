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

    var status: Status
    /// `model`, or empty when it is nil (`hasModel`): a `String`, not a `String?`, whose copy is
    /// a retain where the optional's went through the type's value witnesses, and which is read
    /// in place (`WorkerMetrics.countTokens`) where `model` makes an optional (docs/performance.md,
    /// "fixedcost8").
    private(set) var modelName = ""
    /// The counts as plain words and which of them were given (a bit each, in the order of the
    /// accessors below, then 16 for `model`; an absent count's word is 0): a value of one reference and plain bytes,
    /// copied inline where four optionals made the copies go through the type's value witnesses
    /// (docs/performance.md, "usagetap5").
    private var input = 0
    private var output = 0
    private var cacheRead = 0
    private var cacheWrite = 0
    private var given: UInt8 = 0

    var model: String? {
        get { hasModel ? modelName : nil }
        set {
            modelName = newValue ?? ""
            given = newValue == nil ? given & ~16 : given | 16
        }
    }
    var hasModel: Bool { given & 16 != 0 }
    var inputTokens: Int? {
        get { given & 1 != 0 ? input : nil }
        set { (input, given) = Self.store(newValue, given, bit: 1) }
    }
    var outputTokens: Int? {
        get { given & 2 != 0 ? output : nil }
        set { (output, given) = Self.store(newValue, given, bit: 2) }
    }
    var cacheReadTokens: Int? {
        get { given & 4 != 0 ? cacheRead : nil }
        set { (cacheRead, given) = Self.store(newValue, given, bit: 4) }
    }
    var cacheWriteTokens: Int? {
        get { given & 8 != 0 ? cacheWrite : nil }
        set { (cacheWrite, given) = Self.store(newValue, given, bit: 8) }
    }

    init(
        model: String? = nil, inputTokens: Int? = nil, outputTokens: Int? = nil, cacheReadTokens: Int? = nil,
        cacheWriteTokens: Int? = nil, status: Status
    ) {
        self.status = status
        self.model = model
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cacheReadTokens = cacheReadTokens
        self.cacheWriteTokens = cacheWriteTokens
    }

    @inline(__always) private static func store(_ value: Int?, _ given: UInt8, bit: UInt8) -> (Int, UInt8) {
        guard let value else { return (0, given & ~bit) }
        return (value, given | bit)
    }
}
