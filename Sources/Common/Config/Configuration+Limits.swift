// Rate limits (docs/rate-limits.md, docs/configuration.md "Rate limits"): the `limits:` mapping of
// a static key, a JWT key or an upstream, and the top-level `rate_limits` section.

extension Configuration {
    /// What one key (or one upstream, all keys together) may spend. A nil field is no limit.
    public struct Limits: Sendable, Hashable, Codable {
        /// Admissions in any sliding 60-second window.
        public var requestsPerMinute: UInt32?
        /// Tokens (reserved at admission, settled to the reported usage) in any 60-second window.
        public var tokensPerMinute: UInt32?
        /// The reservation of a request whose body names no `max_tokens`.
        public var defaultReservedTokens: UInt32
        /// Concurrent requests on this host (every worker).
        public var maxInFlight: UInt32?

        public static let defaultReservedTokens: UInt32 = 1000

        public init(
            requestsPerMinute: UInt32? = nil, tokensPerMinute: UInt32? = nil,
            defaultReservedTokens: UInt32 = Self.defaultReservedTokens, maxInFlight: UInt32? = nil
        ) {
            self.requestsPerMinute = requestsPerMinute
            self.tokensPerMinute = tokensPerMinute
            self.defaultReservedTokens = defaultReservedTokens
            self.maxInFlight = maxInFlight
        }

        public var isEmpty: Bool { requestsPerMinute == nil && tokensPerMinute == nil && maxInFlight == nil }
    }

    /// `rate_limits`: where limits are kept beyond this host.
    public struct RateLimits: Sendable, Hashable, Codable {
        public var redis: Redis?

        public init(redis: Redis? = nil) { self.redis = redis }
    }

    /// `rate_limits.redis`.
    public struct Redis: Sendable, Hashable, Codable {
        public enum Unavailable: String, Sendable, Hashable, Codable, CaseIterable {
            /// This host enforces the whole limit on its own (its shared memory).
            case local
            /// Requests pass unlimited.
            case allow
            /// Requests are refused with 503.
            case reject
        }

        public var tls: Bool
        public var host: String
        public var port: Int
        public var database: Int
        /// From the URL's userinfo; never printed.
        public var password: Secret?
        public var username: String?
        public var timeoutMs: UInt32
        public var onUnavailable: Unavailable
        public var keyPrefix: String

        public static let defaultTimeoutMs: UInt32 = 5
        public static let defaultKeyPrefix = "fluxgate:"

        public init(
            tls: Bool = false, host: String, port: Int = 6379, database: Int = 0, password: Secret? = nil,
            username: String? = nil, timeoutMs: UInt32 = Self.defaultTimeoutMs, onUnavailable: Unavailable = .local,
            keyPrefix: String = Self.defaultKeyPrefix
        ) {
            self.tls = tls
            self.host = host
            self.port = port
            self.database = database
            self.password = password
            self.username = username
            self.timeoutMs = timeoutMs
            self.onUnavailable = onUnavailable
            self.keyPrefix = keyPrefix
        }
    }
}

/// The piece of shared memory a limit keeps its state in, named by the configuration (a key id or
/// an upstream name and the kind of limit), never by a position in a list.
public struct RateLimitRegionName: Sendable, Hashable, CustomStringConvertible {
    public enum Owner: String, Sendable, Hashable {
        case key = "k"
        case upstream = "u"
    }

    public enum Kind: String, Sendable, Hashable {
        case requests = "r"
        case inFlight = "f"
        case tokens = "t"
        /// A JWT key's subjects (`SubjectTable`) and their requests logs (docs/rate-limits.md "JWT keys").
        case subjects = "s"
        case subjectRequests = "q"
    }

    public var owner: Owner
    public var name: String
    public var kind: Kind

    public init(_ owner: Owner, _ name: String, _ kind: Kind) {
        self.owner = owner
        self.name = name
        self.kind = kind
    }

    /// The directory's key: "k/r/team-a".
    public var description: String { "\(owner.rawValue)/\(kind.rawValue)/\(name)" }
}

extension Configuration {
    /// Every limit of this configuration with its owner's name: what the master makes room for
    /// before sending the configuration, and what the worker looks up.
    public var limitedOwners: [(owner: RateLimitRegionName.Owner, name: String, limits: Limits)] {
        var result: [(RateLimitRegionName.Owner, String, Limits)] = []
        for key in apiKeys.staticKeys {
            if let id = key.id, let limits = key.limits, !limits.isEmpty { result.append((.key, id, limits)) }
        }
        for key in apiKeys.jwt {
            if let limits = key.limits, !limits.isEmpty { result.append((.key, key.id, limits)) }
        }
        for upstream in upstreams.entries {
            if let limits = upstream.limits, !limits.isEmpty { result.append((.upstream, upstream.name, limits)) }
        }
        return result
    }
}
