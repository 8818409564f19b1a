// The validated, normalised configuration: one immutable value that the master builds from the
// YAML file (ConfigLoader) and sends to every worker as JSON over the control channel.
// Workers never read the YAML file.
//
// Every default lives in `Defaults` below; docs/configuration.md documents each key once with its
// type, default and whether it reloads hot or needs a worker restart.

/// A value that must never be printed: provider keys, client keys, JWT secrets.
/// `description` is redacted so that string interpolation or `dump` cannot leak it.
public struct Secret: Sendable, Hashable, Codable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var isBlank: Bool { value.allSatisfy(\.isWhitespace) }

    public init(from decoder: Decoder) throws {
        self.value = try decoder.singleValueContainer().decode(String.self)
    }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

public struct Configuration: Sendable, Hashable, Codable {
    public enum Defaults {
        public static let bindAddress = "0.0.0.0:8080"
        public static let maxConnections: UInt32 = 1024
        public static let workers: WorkerCount = .auto
        public static let requestTimeoutMs: UInt64 = 120_000
        public static let streamIdleTimeoutMs: UInt64 = 300_000
        public static let apiKeyHeader: UpstreamAuthHeader = .authorization
    }

    public var version: Int
    public var server: Server
    public var upstreams: Upstreams
    public var apiKeys: APIKeys
    /// `rate_limits` (docs/rate-limits.md); nil = limits hold per host.
    public var rateLimits: RateLimits?
    /// `observability:` (Configuration+Observability.swift).
    public var observability: Observability
    /// `models:` in file order (`Configuration+Models.swift`); empty = no model routing.
    public var models: [ModelRoute]

    public init(
        version: Int = 1, server: Server = Server(), upstreams: Upstreams = Upstreams(),
        apiKeys: APIKeys = APIKeys(), observability: Observability = Observability(), rateLimits: RateLimits? = nil,
        models: [ModelRoute] = []
    ) {
        self.version = version
        self.server = server
        self.upstreams = upstreams
        self.apiKeys = apiKeys
        self.rateLimits = rateLimits
        self.observability = observability
        self.models = models
    }

    /// Authentication is required iff at least one static or JWT key is configured
    /// (docs/authentication.md "When authentication is required").
    public var requiresAuthentication: Bool { !apiKeys.staticKeys.isEmpty || !apiKeys.jwt.isEmpty }
}

extension Configuration {
    public struct Server: Sendable, Hashable, Codable {
        /// `ip:port`, already checked to be a literal address (see `BindAddress`).
        public var bindAddress: BindAddress
        /// Concurrent in-flight requests for the whole proxy.
        public var maxConnections: UInt32
        /// Number of worker processes. Restart-class.
        public var workers: WorkerCount
        /// `server.tls`: when set the listener speaks HTTPS. Hot: new connections use the new
        /// certificate, connections in flight keep theirs.
        public var tls: ServerTLS?

        public init(
            bindAddress: BindAddress = BindAddress(parsing: Defaults.bindAddress)!,
            maxConnections: UInt32 = Defaults.maxConnections,
            workers: WorkerCount = Defaults.workers,
            tls: ServerTLS? = nil
        ) {
            self.bindAddress = bindAddress
            self.maxConnections = maxConnections
            self.workers = workers
            self.tls = tls
        }
    }

    /// The listener's certificate and key. The loader reads the files and carries their
    /// *contents*: workers never read files (they get this value as JSON over the control
    /// channel), and a reload after a certificate renewal that kept the file names is a
    /// configuration change like any other.
    public struct ServerTLS: Sendable, Hashable, Codable {
        /// As written in the file (for messages); the contents below are what is used.
        public var certificateFile: String
        /// PEM: the server certificate first, then any intermediates.
        public var certificateChainPEM: String
        public var privateKeyFile: String
        /// PEM private key, never printed.
        public var privateKeyPEM: Secret

        public init(certificateFile: String, certificateChainPEM: String, privateKeyFile: String, privateKeyPEM: Secret) {
            self.certificateFile = certificateFile
            self.certificateChainPEM = certificateChainPEM
            self.privateKeyFile = privateKeyFile
            self.privateKeyPEM = privateKeyPEM
        }
    }

    public enum WorkerCount: Sendable, Hashable, Codable, CustomStringConvertible {
        case auto
        case count(Int)

        /// The number of processes to run: `auto` is the number of online CPUs.
        public func resolved(onlineCPUs: Int) -> Int {
            switch self {
            case .auto: return max(1, onlineCPUs)
            case .count(let n): return n
            }
        }

        public var description: String {
            switch self {
            case .auto: return "auto"
            case .count(let n): return String(n)
            }
        }
    }

    public struct Upstreams: Sendable, Hashable, Codable {
        /// Deadline for the upstream's response headers.
        public var requestTimeoutMs: UInt64
        /// Longest allowed gap between two body chunks once the response has started.
        public var streamIdleTimeoutMs: UInt64
        /// In file order.
        public var entries: [Upstream]

        public init(
            requestTimeoutMs: UInt64 = Defaults.requestTimeoutMs,
            streamIdleTimeoutMs: UInt64 = Defaults.streamIdleTimeoutMs,
            entries: [Upstream] = []
        ) {
            self.requestTimeoutMs = requestTimeoutMs
            self.streamIdleTimeoutMs = streamIdleTimeoutMs
            self.entries = entries
        }
    }

    public struct Upstream: Sendable, Hashable, Codable {
        // Fluxgate's one-target form: setting one of these four on an upstream with a single
        // target sets that target's too, so the two views never disagree.
        public var name: String
        public var targetURL: TargetURL {
            didSet { if targets.count == 1 { targets[0].targetURL = targetURL } }
        }
        public var apiKey: Secret {
            didSet { if targets.count == 1 { targets[0].apiKey = apiKey } }
        }
        /// Trimmed route prefix, as written (trailing `/` kept; the router ignores it).
        public var requestPath: String
        public var apiKeyHeader: UpstreamAuthHeader {
            didSet { if targets.count == 1 { targets[0].apiKeyHeader = apiKeyHeader } }
        }
        /// `tls_ca_file`: certificates (PEM, contents read at load) that an https upstream's chain
        /// must lead to, *instead of* the system trust store. nil = system trust store.
        public var tlsCA: TrustedCA? {
            didSet { if targets.count == 1 { targets[0].tlsCA = tlsCA } }
        }
        /// Where requests go (docs/routing-and-forwarding.md "Several targets"); never empty.
        /// `targetURL`, `apiKey` above are the first target's (Fluxgate's one-target form).
        public var targets: [Target]
        public var retry: Retry
        public var health: Health
        /// Upstream names tried in order when every target here failed.
        public var fallback: [String]
        /// `limits`: all keys together (docs/rate-limits.md).
        public var limits: Limits?
        /// `usage`: whether the token usage of its responses is read (docs/usage.md). Hot.
        public var usage: UsageMode = .auto
        /// `stream_usage`: whether streaming OpenAI requests are made to report usage
        /// (docs/usage.md "stream_usage: inject"). Hot.
        public var streamUsage: StreamUsageMode = .passthrough

        public init(
            name: String, targetURL: TargetURL, apiKey: Secret, requestPath: String,
            apiKeyHeader: UpstreamAuthHeader = Defaults.apiKeyHeader, tlsCA: TrustedCA? = nil,
            targets: [Target]? = nil, retry: Retry = Retry(), health: Health = Health(), fallback: [String] = [],
            usage: UsageMode = .auto, limits: Limits? = nil
        ) {
            self.limits = limits
            self.name = name
            self.targetURL = targetURL
            self.apiKey = apiKey
            self.requestPath = requestPath
            self.apiKeyHeader = apiKeyHeader
            self.tlsCA = tlsCA
            self.targets = targets ?? [Target(targetURL: targetURL, apiKey: apiKey, apiKeyHeader: apiKeyHeader, tlsCA: tlsCA)]
            self.retry = retry
            self.health = health
            self.fallback = fallback
            self.usage = usage
        }
    }

    /// An upstream's `usage` key (docs/configuration.md, docs/usage.md).
    public enum UsageMode: String, Sendable, Hashable, Codable, CaseIterable {
        /// The usage each response reports is read as it is relayed (the default).
        case auto
        /// Nothing is read: the request line has no token fields.
        case off
    }

    /// An upstream's `stream_usage` key (docs/configuration.md, docs/usage.md).
    public enum StreamUsageMode: String, Sendable, Hashable, Codable, CaseIterable {
        /// Requests and responses go as they are (the default).
        case passthrough
        /// A streaming OpenAI request that did not ask for usage is made to, and the usage-only
        /// chunk is kept from the client.
        case inject
    }

    /// A private CA for upstream verification: the file name (for messages) and its PEM contents.
    public struct TrustedCA: Sendable, Hashable, Codable {
        public var file: String
        public var pem: String

        public init(file: String, pem: String) {
            self.file = file
            self.pem = pem
        }
    }

    /// How the provider key is put on the forwarded request.
    public enum UpstreamAuthHeader: String, Sendable, Hashable, Codable, CaseIterable {
        /// `Authorization: Bearer <key>` (OpenAI and most HTTP APIs; Fluxgate's only style).
        case authorization
        /// `x-api-key: <key>` (Anthropic).
        case xAPIKey = "x-api-key"
        /// `api-key: <key>` (Azure OpenAI).
        case apiKey = "api-key"
    }

    public struct APIKeys: Sendable, Hashable, Codable {
        public var staticKeys: [StaticKey]
        public var jwt: [JWTKey]

        public init(staticKeys: [StaticKey] = [], jwt: [JWTKey] = []) {
            self.staticKeys = staticKeys
            self.jwt = jwt
        }
    }

    public struct StaticKey: Sendable, Hashable, Codable {
        public var id: String?
        public var key: Secret
        /// Upstream names this key may reach; empty = all.
        public var upstreams: [String]
        /// `limits` (docs/rate-limits.md); needs an `id`.
        public var limits: Limits?
        /// Model names and patterns this key may send to the model-routed endpoint; nil or
        /// empty = every model whose upstream it may reach.
        public var models: [String]?

        public init(id: String?, key: Secret, upstreams: [String] = [], limits: Limits? = nil, models: [String]? = nil) {
            self.limits = limits
            self.id = id
            self.key = key
            self.upstreams = upstreams
            self.models = models
        }
    }

    public struct JWTKey: Sendable, Hashable, Codable {
        /// Matched exactly against the token header's `kid`.
        public var id: String
        /// HMAC-SHA256 secret: the raw UTF-8 bytes of the configured string.
        public var key: Secret
        /// `limits`, per token subject (docs/rate-limits.md).
        public var limits: Limits?

        public init(id: String, key: Secret, limits: Limits? = nil) {
            self.limits = limits
            self.id = id
            self.key = key
        }
    }
}
