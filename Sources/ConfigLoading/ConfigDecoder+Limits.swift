import Common

// `limits:` on a static key, a JWT key or an upstream, and the top-level `rate_limits` section
// (docs/configuration.md "Rate limits", docs/rate-limits.md). The Redis URL may carry a password:
// no message here quotes the URL or any part of it.
extension ConfigDecoder {
    static let limitsKeys: Set<String> = [
        "requests_per_minute", "tokens_per_minute", "default_reserved_tokens", "max_in_flight",
    ]
    static let rateLimitsKeys: Set<String> = ["redis"]
    static let redisKeys: Set<String> = ["url", "timeout_ms", "on_unavailable", "key_prefix", "tls_ca_file"]
    /// The host-local log keeps one 8-byte instant per admission of the window
    /// (docs/rate-limits.md "Memory"): a million is 8 MB for one key.
    static let maxRequestsPerMinute = ConfigLimits.maxRequestsPerMinute
    static let maxInFlight: UInt64 = 1_000_000
    /// Redis waits are bounded: a request never waits longer than this for it.
    static let maxRedisTimeoutMs: UInt64 = 10_000

    /// A `limits:` mapping; nil after an error (reported).
    mutating func decodeLimits(_ node: YAMLNode, _ path: String) -> Configuration.Limits? {
        guard let fields = entries(node, path) else { return nil }
        warnUnknown(fields, known: Self.limitsKeys, path)
        var limits = Configuration.Limits()
        var valid = true
        for field in fields {
            let fieldPath = Self.join(path, field.name)
            switch field.name {
            case "requests_per_minute":
                if let value = positive(field.value, fieldPath, max: Self.maxRequestsPerMinute) {
                    limits.requestsPerMinute = UInt32(value)
                } else {
                    valid = false
                }
            case "tokens_per_minute":
                if let value = positive(field.value, fieldPath, max: UInt64(UInt32.max)) {
                    limits.tokensPerMinute = UInt32(value)
                } else {
                    valid = false
                }
            case "default_reserved_tokens":
                if let value = positive(field.value, fieldPath, max: UInt64(UInt32.max)) {
                    limits.defaultReservedTokens = UInt32(value)
                } else {
                    valid = false
                }
            case "max_in_flight":
                if let value = positive(field.value, fieldPath, max: Self.maxInFlight) {
                    limits.maxInFlight = UInt32(value)
                } else {
                    valid = false
                }
            default:
                break
            }
        }
        if valid, limits.tokensPerMinute == nil, let field = fields.first(where: { $0.name == "default_reserved_tokens" }) {
            warning(
                "default_reserved_tokens.unused", field.key, Self.join(path, field.name),
                "is ignored without tokens_per_minute")
        }
        return valid ? limits : nil
    }

    /// The optional `limits` of a key or an upstream: `.some(nil)` when absent, nil after an error.
    mutating func optionalLimits(_ fields: [Entry], _ path: String) -> Configuration.Limits?? {
        guard let node = fields.first(where: { $0.name == "limits" })?.value, !node.isNull else { return .some(nil) }
        guard let limits = decodeLimits(node, Self.join(path, "limits")) else { return nil }
        return .some(limits.isEmpty ? nil : limits)
    }

    /// `rate_limits`; nil after an error.
    mutating func decodeRateLimits(_ node: YAMLNode) -> Configuration.RateLimits? {
        guard let fields = entries(node, "rate_limits") else { return nil }
        warnUnknown(fields, known: Self.rateLimitsKeys, "rate_limits")
        var result = Configuration.RateLimits()
        if let redis = fields.first(where: { $0.name == "redis" })?.value, !redis.isNull {
            guard let decoded = decodeRedis(redis) else { return nil }
            result.redis = decoded
        }
        return result
    }

    private mutating func decodeRedis(_ node: YAMLNode) -> Configuration.Redis? {
        let path = "rate_limits.redis"
        guard let fields = entries(node, path, nullIsEmpty: false) else { return nil }
        warnUnknown(fields, known: Self.redisKeys, path)
        var valid = true
        var redis: Configuration.Redis?
        if let urlNode = required("url", fields, in: node, path) {
            if let text = string(urlNode, "\(path).url"), let parsed = redisURL(text, urlNode) {
                redis = parsed
            } else {
                valid = false
            }
        } else {
            valid = false
        }
        for field in fields {
            let fieldPath = Self.join(path, field.name)
            switch field.name {
            case "timeout_ms":
                if let value = positive(field.value, fieldPath, max: Self.maxRedisTimeoutMs) {
                    redis?.timeoutMs = UInt32(value)
                } else {
                    valid = false
                }
            case "on_unavailable":
                let choices = Configuration.Redis.Unavailable.allCases.map(\.rawValue)
                if let text = string(field.value, fieldPath), let mode = Configuration.Redis.Unavailable(rawValue: text) {
                    redis?.onUnavailable = mode
                } else {
                    error(
                        "on_unavailable.invalid", field.value, fieldPath,
                        "must be one of \(choices.joined(separator: ", "))")
                    valid = false
                }
            case "key_prefix":
                if let text = string(field.value, fieldPath) {
                    redis?.keyPrefix = text
                } else {
                    valid = false
                }
            case "tls_ca_file" where !field.value.isNull:
                if let ca = decodeTrustedCA(field.value, fieldPath) {
                    redis?.tlsCA = ca
                } else {
                    valid = false
                }
            default:
                break
            }
        }
        if let redis, !redis.tls, redis.tlsCA != nil, let node = fields.first(where: { $0.name == "tls_ca_file" })?.value {
            error("tls_ca_file.without_tls", node, "\(path).tls_ca_file", "needs a rediss:// url (TLS to Redis)")
            valid = false
        }
        return valid ? redis : nil
    }

    /// `redis://[user][:password]@host[:port][/db]` or `rediss://…`. Messages name the part that
    /// is wrong, never its text (the URL may hold a password).
    private mutating func redisURL(_ text: String, _ node: YAMLNode) -> Configuration.Redis? {
        let path = "rate_limits.redis.url"
        let tls: Bool
        var rest: Substring
        if text.hasPrefix("redis://") {
            tls = false
            rest = text.dropFirst("redis://".count)
        } else if text.hasPrefix("rediss://") {
            // TLS through the worker's own OpenSSL handler on the Redis channel (hiredis 0.14
            // has none): the server's certificate is verified for the URL's host.
            tls = true
            rest = text.dropFirst("rediss://".count)
        } else {
            error("redis_url.scheme", node, path, "must start with redis:// or rediss://")
            return nil
        }
        var username: String?
        var password: Secret?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                username = userinfo[..<colon].isEmpty ? nil : String(userinfo[..<colon])
                guard let decoded = String(userinfo[userinfo.index(after: colon)...]).removingURLPercentEncoding else {
                    error("redis_url.password", node, path, "has a password that is not valid percent-encoding")
                    return nil
                }
                password = decoded.isEmpty ? nil : Secret(decoded)
            } else {
                // redis://secret@host: one word before '@' is the password (redis-cli -u reads it so).
                password = userinfo.isEmpty ? nil : Secret(String(userinfo))
            }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let digits = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !digits.isEmpty {
                guard digits.allSatisfy(\.isASCIIDigit), let number = Int(digits), number <= 1_000_000 else {
                    error("redis_url.database", node, path, "must end in /N with N a database number")
                    return nil
                }
                database = number
            }
        }
        var host = String(rest)
        var port = 6379
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            host = String(rest[..<colon])
            guard let number = Int(rest[rest.index(after: colon)...]), (1...65535).contains(number) else {
                error("redis_url.port", node, path, "has a port that is not from 1 to 65535")
                return nil
            }
            port = number
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "?" }) else {
            error("redis_url.host", node, path, "must name a host")
            return nil
        }
        return Configuration.Redis(
            tls: tls, host: host, port: port, database: database, password: password, username: username)
    }
}

extension String {
    /// `%XX` sequences decoded; nil when one is malformed or the bytes are not UTF-8.
    fileprivate var removingURLPercentEncoding: String? {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next()?.hexDigitValue, let low = iterator.next()?.hexDigitValue else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

}

extension ConfigDecoder {
    /// Limits are kept by key id: a static key and a JWT key of the same id would share one
    /// count, so that is refused when either has limits.
    mutating func checkLimitNames(_ keys: Configuration.APIKeys, _ root: YAMLNode) {
        let staticIDs = Dictionary(
            keys.staticKeys.enumerated().compactMap { item in item.element.id.map { ($0, item) } },
            uniquingKeysWith: { first, _ in first })
        for (index, jwt) in keys.jwt.enumerated() {
            guard let (staticIndex, staticKey) = staticIDs[jwt.id], jwt.limits != nil || staticKey.limits != nil else { continue }
            error(
                "limits.id_shared", root, "api_keys.jwt[\(index)].id",
                "id \"\(jwt.id)\" is also the id of api_keys.static[\(staticIndex)]; limits are kept by id, so ids with limits must differ")
        }
    }
}
