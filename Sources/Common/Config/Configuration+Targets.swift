// The keys of docs/routing-and-forwarding.md "Several targets": an upstream's `targets`, `retry`,
// `health` and `fallback`. Fluxgate's `target_url` + `api_key` is a one-target list, so every
// upstream has at least one target.

extension Configuration {
    /// One place an upstream's requests may go.
    public struct Target: Sendable, Hashable, Codable {
        public var targetURL: TargetURL
        public var apiKey: Secret
        /// The upstream's `api_key_header` unless the target sets its own.
        public var apiKeyHeader: UpstreamAuthHeader
        /// The upstream's `tls_ca_file` unless the target sets its own.
        public var tlsCA: TrustedCA?
        /// Share of the requests, relative to the other targets' (≥ 1).
        public var weight: Int

        public init(
            targetURL: TargetURL, apiKey: Secret, apiKeyHeader: UpstreamAuthHeader = Defaults.apiKeyHeader,
            tlsCA: TrustedCA? = nil, weight: Int = 1
        ) {
            self.targetURL = targetURL
            self.apiKey = apiKey
            self.apiKeyHeader = apiKeyHeader
            self.tlsCA = tlsCA
            self.weight = weight
        }
    }

    /// What makes a try fail and another one follow (`retry.on`), a closed vocabulary.
    public struct RetryConditions: Sendable, Hashable, Codable {
        /// The request never left: refused, unreachable, DNS, TLS handshake, a reset before any
        /// request byte was written.
        public var connect: Bool
        /// No response head within `attempt_timeout_ms`.
        public var timeout: Bool
        /// The connection closed or reset after request bytes went out, before a response head.
        public var reset: Bool
        /// Statuses (429 and 500–599) that move on.
        public var statuses: Set<UInt16>

        public init(connect: Bool = true, timeout: Bool = false, reset: Bool = false, statuses: Set<UInt16> = [429, 502, 503, 504]) {
            self.connect = connect
            self.timeout = timeout
            self.reset = reset
            self.statuses = statuses
        }

        /// The statuses `on` may name: 429 and the 5xx. 400, 401, 403, 404, 413 and 422 are
        /// never retried: the same request fails the same way on every target.
        public static func mayRetry(status: UInt16) -> Bool { status == 429 || (500...599).contains(status) }
    }

    public struct Retry: Sendable, Hashable, Codable {
        /// Tries in all, the first included; nil = targets + fallbacks, at most 3.
        public var attempts: Int?
        public var on: RetryConditions
        /// Per try, to the response head; nil = `upstreams.request_timeout_ms`.
        public var attemptTimeoutMs: UInt64?
        /// A body longer than this is only retried if no byte of it was sent.
        public var replayBufferBytes: Int

        public static let defaultReplayBufferBytes = 8 * 1024 * 1024
        public static let defaultMaxAttempts = 3

        public init(
            attempts: Int? = nil, on: RetryConditions = RetryConditions(), attemptTimeoutMs: UInt64? = nil,
            replayBufferBytes: Int = Retry.defaultReplayBufferBytes
        ) {
            self.attempts = attempts
            self.on = on
            self.attemptTimeoutMs = attemptTimeoutMs
            self.replayBufferBytes = replayBufferBytes
        }
    }

    /// Passive health: consecutive failed tries take a target out of service for a cooldown.
    public struct Health: Sendable, Hashable, Codable {
        public var failures: Int
        /// The first time out; doubles with each new ejection, at most `maxCooldownMs`.
        public var cooldownMs: UInt64

        public static let maxCooldownMs: UInt64 = 300_000

        public init(failures: Int = 5, cooldownMs: UInt64 = 30_000) {
            self.failures = failures
            self.cooldownMs = cooldownMs
        }
    }
}

extension Configuration.Upstream {
    /// Tries a request to this upstream may make (`retry.attempts`, or its default).
    public var maxAttempts: Int {
        retry.attempts ?? min(targets.count + fallback.count, Configuration.Retry.defaultMaxAttempts)
    }
}
