import Testing
@testable import ConfigLoading
import Common

// docs/configuration.md "Rate limits": `limits:` on keys and upstreams, `rate_limits.redis`.

private let clientKey = "client-key-1111111111111111111111111"

@Test func limitsLoadOnKeysAndUpstreams() throws {
    let config = try #require(
        expectClean(
            load(
                minimalYAML + """

                        limits: { requests_per_minute: 1000, max_in_flight: 8 }
                    api_keys:
                      static:
                        - id: team-a
                          key: \(clientKey)
                          limits:
                            requests_per_minute: 600
                            tokens_per_minute: 200000
                            default_reserved_tokens: 500
                    """)))
    #expect(config.upstreams.entries[0].limits == Configuration.Limits(requestsPerMinute: 1000, maxInFlight: 8))
    #expect(
        config.apiKeys.staticKeys[0].limits
            == Configuration.Limits(requestsPerMinute: 600, tokensPerMinute: 200_000, defaultReservedTokens: 500))
}

@Test func limitsNeedAKeyID() {
    expectDiagnostic(
        load(minimalYAML + "\napi_keys:\n  static:\n    - key: \(clientKey)\n      limits: { max_in_flight: 2 }\n"),
        "limits.needs_id", path: "api_keys.static[0].limits", at: 9, 7)
}

@Test func aLimitMustBePositive() {
    expectDiagnostic(
        load(minimalYAML + "\n    limits: { requests_per_minute: 0 }\n"),
        "requests_per_minute.not_positive", path: "upstreams.openai.limits.requests_per_minute", at: 7, 36)
}

@Test func redisURLsAreParsedAndTheirPasswordNeverQuoted() throws {
    let config = try #require(
        expectClean(
            load(
                minimalYAML + """

                    rate_limits:
                      redis:
                        url: redis://:s3cr%40t@10.0.0.5:6380/2
                        timeout_ms: 20
                        on_unavailable: reject
                        key_prefix: "fg:"
                    """)))
    let redis = try #require(config.rateLimits?.redis)
    #expect(redis.host == "10.0.0.5" && redis.port == 6380 && redis.database == 2 && !redis.tls)
    #expect(redis.password?.value == "s3cr@t")
    #expect(redis.timeoutMs == 20 && redis.onUnavailable == .reject && redis.keyPrefix == "fg:")
    #expect(!"\(redis)".contains("s3cr"))

    let bad = load(minimalYAML + "\nrate_limits:\n  redis:\n    url: redis://:hunter2@host:99999\n")
    let diagnostic = expectDiagnostic(bad, "redis_url.port", path: "rate_limits.redis.url", at: 9, 10)
    #expect(diagnostic.map { !$0.description.contains("hunter2") } == true)
}

@Test func onUnavailableIsOneOfThree() {
    expectDiagnostic(
        load(minimalYAML + "\nrate_limits:\n  redis:\n    url: redis://127.0.0.1\n    on_unavailable: fail_open\n"),
        "on_unavailable.invalid", path: "rate_limits.redis.on_unavailable", at: 10, 21)
}
