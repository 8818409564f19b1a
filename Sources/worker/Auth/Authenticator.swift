import Common

/// Who a request is from, once authenticated.
struct AuthenticatedCaller: Sendable, Equatable {
    /// The upstreams this caller may reach (never empty).
    var permitted: UpstreamSet
    /// The `id` of the static or JWT key that matched, for the request log; nil on an open proxy
    /// or for a static key without an id. Never the secret.
    var keyID: String?
    /// The key's series key for the metrics' `key` label (`MetricsSchema`), made when the
    /// configuration arrived: `noneKey` on an open proxy.
    var keyMetric = MetricsSchema.noneKey
    /// The static key's position in `api_keys.static`, for its `models:` list (`ModelTable`).
    var staticKey: Int? = nil
    /// A JWT's `sub` (its limits count per subject: docs/rate-limits.md "JWT keys").
    var subject: String? = nil
}

enum AuthOutcome: Sendable, Equatable {
    case allowed(AuthenticatedCaller)
    /// Always the same 401, whatever failed
    /// (docs/authentication.md "Every failure is the same 401").
    case rejected
}

/// docs/authentication.md "Client credentials", built once per configuration snapshot so the hot
/// path only hashes the token and
/// compares fixed-size digests.
///
/// Static keys are compared through their SHA-256 digests: every configured key is compared (no
/// early exit) with `CRYPTO_memcmp`, so timing depends neither on the contents nor on the length
/// of any key.
struct Authenticator: Sendable {
    private struct StaticEntry: Sendable {
        var digest: [UInt8]
        var id: String?
        var permitted: UpstreamSet
        var metricKey: Int64
        var position: Int
    }

    let required: Bool
    private let staticKeys: [StaticEntry]
    private let jwt: JWTVerifier
    private let everyUpstream: UpstreamSet
    /// `jwt:<kid>`'s series key per configured kid.
    private let jwtMetricKeys: [String: Int64]

    init(configuration: Configuration) {
        let upstreams = configuration.upstreams.entries
        let indexByName = Dictionary(upstreams.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        let all = UpstreamSet.all(count: upstreams.count)
        self.required = configuration.requiresAuthentication
        self.everyUpstream = all
        self.jwt = JWTVerifier(keys: configuration.apiKeys.jwt)
        self.jwtMetricKeys = Dictionary(
            configuration.apiKeys.jwt.map { ($0.id, MetricsSchema.key(MetricsSchema.jwtKeyLabel(kid: $0.id))) },
            uniquingKeysWith: { a, _ in a })
        self.staticKeys = configuration.apiKeys.staticKeys.enumerated().map { position, key in
            var permitted = all
            if !key.upstreams.isEmpty {
                permitted = UpstreamSet(universe: upstreams.count)
                for name in key.upstreams { if let i = indexByName[name] { permitted.insert(i) } }
            }
            return StaticEntry(
                digest: Crypto.sha256(key.key.value.utf8), id: key.id, permitted: permitted,
                metricKey: MetricsSchema.key(MetricsSchema.staticKeyLabel(id: key.id)), position: position)
        }
    }

    /// The outcome depends on the two credential headers alone, not on the time: no JWT keys are
    /// configured (a JWT's `exp` and `nbf` make its outcome change while its bytes do not). A
    /// connection may then reuse the outcome for a request that carries the same headers.
    var outcomeDependsOnlyOnHeaders: Bool { jwt.isEmpty }

    /// - Parameters:
    ///   - authorizationHeader: the first `Authorization` value, if any.
    ///   - xAPIKeyHeader: the first `x-api-key` value (what the Anthropic SDK sends), used only
    ///     when there is no `Authorization` header.
    ///   - now: Unix time in whole seconds, for `exp` and `nbf`.
    func authenticate(authorizationHeader: String?, xAPIKeyHeader: String?, now: Int64) -> AuthOutcome {
        guard required else { return .allowed(AuthenticatedCaller(permitted: everyUpstream, keyID: nil)) }
        guard let token = Self.credential(authorizationHeader: authorizationHeader, xAPIKeyHeader: xAPIKeyHeader),
            !token.isEmpty
        else { return .rejected }

        if !staticKeys.isEmpty {
            let digest = Crypto.sha256(token.utf8)
            var match: StaticEntry?
            for entry in staticKeys where Crypto.constantTimeEquals(entry.digest, digest) && match == nil {
                match = entry
            }
            if let match {
                return match.permitted.isEmpty
                    ? .rejected
                    : .allowed(
                        AuthenticatedCaller(
                            permitted: match.permitted, keyID: match.id, keyMetric: match.metricKey, staticKey: match.position))
            }
        }
        guard !jwt.isEmpty, case .success(let verified) = jwt.verify(token, now: now), !everyUpstream.isEmpty else {
            return .rejected
        }
        return .allowed(
            AuthenticatedCaller(
                permitted: everyUpstream, keyID: verified.kid,
                keyMetric: jwtMetricKeys[verified.kid] ?? MetricsSchema.otherKey, subject: verified.subject))
    }

    /// `Authorization: Bearer <token>` (capital B, one space, token untrimmed); otherwise, only when
    /// there is no `Authorization` header at all, the raw `x-api-key` value.
    static func credential(authorizationHeader: String?, xAPIKeyHeader: String?) -> Substring? {
        if let authorization = authorizationHeader {
            // Byte comparison: `String.hasPrefix` would compare grapheme clusters.
            guard ASCIIBytes.hasPrefix(authorization, "Bearer ") else { return nil }
            return authorization[authorization.utf8.index(authorization.utf8.startIndex, offsetBy: 7)...]
        }
        return xAPIKeyHeader.map { Substring($0) }
    }
}
