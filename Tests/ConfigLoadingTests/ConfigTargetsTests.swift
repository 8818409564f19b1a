import Testing
@testable import ConfigLoading
import Common

// docs/configuration.md "Keys": an upstream's `targets`, `retry`, `health` and `fallback`
// (docs/routing-and-forwarding.md "Several targets"). Columns are 1-based.

private func targets(_ body: String, extra: String = "") -> ConfigLoadResult {
    load("version: 1\nupstreams:\n  openai:\n    request_path: /openai\n" + body + extra)
}

private let twoTargets = """
        targets:
          - target_url: https://a.example.com
            api_key: sk-a
            weight: 3
          - target_url: https://b.example.com/v1
            api_key: sk-b
            api_key_header: api-key

    """

@Test func targetsListWithWeightsAndOwnHeaders() throws {
    let config = try #require(expectClean(targets(twoTargets)))
    let upstream = config.upstreams.entries[0]
    #expect(upstream.targets.map(\.targetURL.host) == ["a.example.com", "b.example.com"])
    #expect(upstream.targets.map(\.weight) == [3, 1])
    #expect(upstream.targets.map(\.apiKeyHeader) == [.authorization, .apiKey])
    #expect(upstream.targetURL.host == "a.example.com", "the first target stands for Fluxgate's form")
    #expect(upstream.maxAttempts == 2, "default: the number of targets, at most 3")
    #expect(
        upstream.retry.on == Configuration.RetryConditions(connect: true, timeout: false, reset: false, statuses: [429, 502, 503, 504]))
    #expect(upstream.health == Configuration.Health(failures: 5, cooldownMs: 30_000))
}

@Test func fluxgatesFormIsAOneTargetList() throws {
    let config = try #require(expectClean(load(minimalYAML)))
    let upstream = config.upstreams.entries[0]
    #expect(upstream.targets.count == 1)
    #expect(upstream.targets[0].targetURL.host == "api.openai.com")
    #expect(upstream.targets[0].apiKey == Secret("sk-upstream"))
    #expect(upstream.maxAttempts == 1)
}

@Test func retryHealthAndFallbackAreRead() throws {
    let yaml = """
        version: 1
        upstreams:
          openai:
            request_path: /openai
            target_url: https://a.example.com
            api_key: sk-a
            retry:
              attempts: 3
              on: [connect, timeout, reset, 429, 500]
              attempt_timeout_ms: 2000
              replay_buffer_bytes: 1024
            health: {failures: 2, cooldown_ms: 500}
            fallback: [azure]
          azure:
            request_path: /azure
            target_url: https://azure.example.com
            api_key: az-key
            api_key_header: api-key
        """
    let config = try #require(expectClean(load(yaml)))
    let upstream = config.upstreams.entries[0]
    #expect(
        upstream.retry
            == Configuration.Retry(
                attempts: 3, on: .init(connect: true, timeout: true, reset: true, statuses: [429, 500]), attemptTimeoutMs: 2000,
                replayBufferBytes: 1024))
    #expect(upstream.health == Configuration.Health(failures: 2, cooldownMs: 500))
    #expect(upstream.fallback == ["azure"])
}

@Test func bothFormsTogetherAreAnError() {
    expectDiagnostic(
        targets("    target_url: https://x.example.com\n" + twoTargets), "targets.conflict",
        path: "upstreams.openai.target_url", at: 5, 5)
}

@Test func anEmptyTargetsListIsAnError() {
    expectDiagnostic(targets("    targets: []\n"), "targets.empty", path: "upstreams.openai.targets", at: 5, 14)
}

@Test func weightZeroIsAnError() {
    let body = "    targets:\n      - target_url: https://a.example.com\n        api_key: k\n        weight: 0\n"
    expectDiagnostic(targets(body), "weight.not_positive", path: "upstreams.openai.targets[0].weight", at: 8, 17)
}

@Test func aTargetNeedsItsURLAndKey() {
    let body = "    targets:\n      - target_url: https://a.example.com\n"
    expectDiagnostic(targets(body), "field.missing", path: "upstreams.openai.targets[0].api_key", at: 6, 9)
}

@Test func anUnknownRetryConditionIsAnError() {
    let body = "    target_url: https://a.example.com\n    api_key: k\n    retry:\n      on: [connect, 404]\n"
    expectDiagnostic(targets(body), "retry_on.unknown", path: "upstreams.openai.retry.on[1]", at: 8, 21)
    let word = "    target_url: https://a.example.com\n    api_key: k\n    retry:\n      on: [5xx]\n"
    expectDiagnostic(targets(word), "retry_on.unknown", path: "upstreams.openai.retry.on[0]", at: 8, 12)
}

@Test func fallbackMustNameAnUpstreamAndNotLoop() {
    let unknown = "    target_url: https://a.example.com\n    api_key: k\n    fallback: [nowhere]\n"
    expectDiagnostic(targets(unknown), "fallback.unknown", path: "upstreams.openai.fallback", at: 7, 15)
    let loop = """
        version: 1
        upstreams:
          a:
            request_path: /a
            target_url: https://a.example.com
            api_key: k
            fallback: [b]
          b:
            request_path: /b
            target_url: https://b.example.com
            api_key: k
            fallback: [a]
        """
    let result = load(loop)
    let cycles = result.diagnostics.filter { $0.code == "fallback.cycle" }
    #expect(cycles.map(\.path) == ["upstreams.a.fallback", "upstreams.b.fallback"])
    #expect(cycles.first?.line == 7)
    #expect(result.configuration == nil)
    let own = "    target_url: https://a.example.com\n    api_key: k\n    fallback: [openai]\n"
    expectDiagnostic(targets(own), "fallback.cycle", path: "upstreams.openai.fallback", at: 7, 15)
}

@Test func targetKeysAreNeverQuotedInMessages() {
    let body = "    targets:\n      - target_url: https://a.example.com\n        api_key: \"sk-secret\\nx\"\n"
    let result = targets(body)
    #expect(result.diagnostics.contains { $0.code == "api_key.invalid" })
    #expect(!result.diagnostics.contains { $0.description.contains("sk-secret") })
}
