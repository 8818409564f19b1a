import Common

/// One place an upstream's requests go: its URL, the provider key and the header that carries it,
/// the trust for https. An upstream has one or more (`targets`, docs/routing-and-forwarding.md
/// "Several targets"); an exchange's attempts each name the target they use, and the pool keeps connections per target
/// (`PoolKey`), so an attempt on another target gets that target's connections and key.
/// Built once per configuration snapshot; a class, so an exchange holds it with one retain.
final class UpstreamTarget: Sendable {
    let url: TargetURL
    /// `scheme://host[:port]`, built once: the request log and the pool need it per request.
    let origin: String
    /// The `Host` header sent upstream, built once for the same reason.
    let hostHeader: String
    /// The URL's base path's bytes, copied into every upstream request-target.
    let basePathBytes: [UInt8]
    /// The upstream request's constant lines, made once: `host: …\r\n`, and the provider key's
    /// line in the upstream's style (empty without a key). One copy each per request instead of
    /// three writes, two of them through a `String`'s UTF-8.
    let hostLine: [UInt8]
    let apiKeyLine: [UInt8]
    let apiKey: Secret
    let apiKeyHeader: Configuration.UpstreamAuthHeader
    let tlsCA: Configuration.TrustedCA?
    let poolKey: PoolKey
    /// The series keys of `fluxgate_upstream_attempts_total{upstream, target}` (docs/observability.md):
    /// the upstream's name and this target's origin.
    let metricUpstream: Int64
    let metricTarget: Int64

    /// What makes two targets' connections interchangeable: the same origin, the same trust for
    /// https, and the same credential sent on them. Held in memory only, never printed.
    struct PoolKey: Hashable, Sendable {
        var origin: String
        var trustPEM: String?
        var apiKeyHeader: Configuration.UpstreamAuthHeader
        var apiKey: Secret
    }

    init(
        url: TargetURL, apiKey: Secret, apiKeyHeader: Configuration.UpstreamAuthHeader, tlsCA: Configuration.TrustedCA?,
        upstreamName: String = ""
    ) {
        self.url = url
        self.metricUpstream = MetricsSchema.key(upstreamName)
        self.metricTarget = MetricsSchema.key(url.origin)
        self.origin = url.origin
        self.hostHeader = url.hostHeader
        self.basePathBytes = Array(url.basePath.utf8)
        self.hostLine = Array("host: \(url.hostHeader)\r\n".utf8)
        self.apiKeyLine = Self.apiKeyLine(apiKey.value, in: apiKeyHeader)
        self.apiKey = apiKey
        self.apiKeyHeader = apiKeyHeader
        self.tlsCA = tlsCA
        self.poolKey = PoolKey(
            origin: origin, trustPEM: url.scheme == .https ? (tlsCA?.pem ?? "") : nil,
            apiKeyHeader: apiKeyHeader, apiKey: apiKey)
    }

    private static func apiKeyLine(_ key: String, in header: Configuration.UpstreamAuthHeader) -> [UInt8] {
        guard !key.isEmpty else { return [] }
        switch header {
        case .authorization: return Array("authorization: Bearer \(key)\r\n".utf8)
        case .xAPIKey: return Array("x-api-key: \(key)\r\n".utf8)
        case .apiKey: return Array("api-key: \(key)\r\n".utf8)
        }
    }

    /// One of an upstream's `targets` (Fluxgate's `target_url` + `api_key` is the only one).
    convenience init(_ target: Configuration.Target, upstreamName: String) {
        self.init(
            url: target.targetURL, apiKey: target.apiKey, apiKeyHeader: target.apiKeyHeader, tlsCA: target.tlsCA,
            upstreamName: upstreamName)
    }
}
