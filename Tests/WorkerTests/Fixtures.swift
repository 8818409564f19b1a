import Common
@testable import FluxgateWorker

/// Configuration values built directly (the YAML loader is not under test here).
enum Fixtures {
    static func url(
        _ scheme: TargetURL.Scheme = .http, _ host: String, port: UInt16? = nil, path: String = "",
        query: String? = nil
    ) -> TargetURL {
        TargetURL(scheme: scheme, host: host, explicitPort: port, basePath: path, query: query)
    }

    static func upstream(
        _ name: String, _ requestPath: String, _ target: TargetURL = url(.http, "mock"),
        key: String = "sk-upstream", header: Configuration.UpstreamAuthHeader = .authorization
    )
        -> Configuration.Upstream
    {
        Configuration.Upstream(
            name: name, targetURL: target, apiKey: Secret(key), requestPath: requestPath,
            apiKeyHeader: header)
    }

    static func configuration(
        upstreams: [Configuration.Upstream] = [], staticKeys: [Configuration.StaticKey] = [],
        jwt: [Configuration.JWTKey] = []
    ) -> Configuration {
        Configuration(
            upstreams: Configuration.Upstreams(entries: upstreams),
            apiKeys: Configuration.APIKeys(staticKeys: staticKeys, jwt: jwt))
    }

    static let jwtSecret = "0123456789abcdef0123456789abcdef-secret"

    /// A compact JWS signed with HS256 by the same libcrypto HMAC the worker uses.
    static func jwt(
        header: String = #"{"alg":"HS256","typ":"JWT","kid":"team"}"#, payload: String = "{}",
        key: String = jwtSecret
    ) -> String {
        let signingInput = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        return signingInput + "." + Base64URL.encode(Crypto.hmacSHA256(key: Array(key.utf8), message: Array(signingInput.utf8)))
    }
}
