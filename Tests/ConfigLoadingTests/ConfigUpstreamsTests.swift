import Testing
@testable import ConfigLoading
import Common

// docs/configuration.md "Keys" and "Validation": `upstreams`, its reserved timeout keys and each
// upstream's fields. In `upstream(...)`, target_url's value is at 4:17, api_key's at 5:14,
// request_path's at 6:19.

private func upstream(
    target: String = "https://api.openai.com", apiKey: String = "sk-upstream",
    path: String = "/openai", more: String = ""
) -> ConfigLoadResult {
    load(
        """
        version: 1
        upstreams:
          openai:
            target_url: \(target)
            api_key: \(apiKey)
            request_path: \(path)

        """ + more)
}

private let withStaticKey = "api_keys:\n  static:\n    - key: client-key-000000000000000000000000\n"

@Test func timeoutsArePositive() throws {
    let config = try #require(expectClean(load("version: 1\nupstreams:\n  request_timeout_ms: 5000\n  stream_idle_timeout_ms: 60000\n")))
    #expect(config.upstreams.requestTimeoutMs == 5000)
    #expect(config.upstreams.streamIdleTimeoutMs == 60000)
    #expect(config.upstreams.entries.isEmpty, "reserved keys are not upstreams")
    expectDiagnostic(
        load("version: 1\nupstreams:\n  request_timeout_ms: 0\n"), "request_timeout_ms.not_positive",
        path: "upstreams.request_timeout_ms", at: 3, 23)
    expectDiagnostic(
        load("version: 1\nupstreams:\n  stream_idle_timeout_ms: 0\n"), "stream_idle_timeout_ms.not_positive",
        path: "upstreams.stream_idle_timeout_ms", at: 3, 27)
    expectDiagnostic(
        load("version: 1\nupstreams:\n  request_timeout_ms: 99999999999999999\n"), "type.out_of_range",
        path: "upstreams.request_timeout_ms", at: 3, 23)
}

@Test func targetURLIsSplitOnce() throws {
    let config = try #require(expectClean(upstream(target: "HTTPS://API.Example.com:8443/v1/?a=b")))
    let url = config.upstreams.entries[0].targetURL
    #expect(url == TargetURL(scheme: .https, host: "api.example.com", explicitPort: 8443, basePath: "/v1", query: "a=b"))
    let v6 = try #require(expectClean(upstream(target: "http://[::1]:11434")))
    #expect(v6.upstreams.entries[0].targetURL.hostHeader == "[::1]:11434")
    let plain = try #require(expectClean(upstream(target: "http://10.0.0.1")))
    #expect(plain.upstreams.entries[0].targetURL.port == 80)
}

@Test func targetURLRules() {
    let p = "upstreams.openai.target_url"
    expectDiagnostic(upstream(target: "\" \""), "target_url.blank", path: p, at: 4, 17)
    expectDiagnostic(upstream(target: "api.openai.com"), "target_url.invalid", path: p, at: 4, 17)
    expectDiagnostic(upstream(target: "http://999.1.1.1"), "target_url.invalid", path: p, at: 4, 17)
    expectDiagnostic(upstream(target: "ftp://example.com"), "target_url.scheme", path: p, at: 4, 17)
    expectDiagnostic(upstream(target: "https:///v1"), "target_url.missing_host", path: p, at: 4, 17)
    expectDiagnostic(upstream(target: "https://example.com:0"), "target_url.port", path: p, at: 4, 17)
    expectDiagnostic(upstream(target: "https://example.com:70000"), "target_url.port", path: p, at: 4, 17)
    expectDiagnostic(upstream(target: "\"https://example.com/v1#top\""), "target_url.fragment", path: p, at: 4, 17)
    let d = expectDiagnostic(upstream(target: "https://alice:hunter2@example.com"), "target_url.userinfo", path: p, at: 4, 17)
    #expect(d.map { !$0.description.contains("hunter2") && !$0.description.contains("alice") } == true)
}

@Test func requiredFieldsAreReportedAtTheUpstream() {
    let result = load("version: 1\nupstreams:\n  openai:\n    api_key: k\n")
    let missing = result.errors.filter { $0.code == "field.missing" }
    #expect(missing.map(\.path) == ["upstreams.openai.target_url", "upstreams.openai.request_path"])
    #expect(missing.allSatisfy { $0.line == 4 && $0.column == 5 })
    expectDiagnostic(load("version: 1\nupstreams:\n  openai: https://x\n"), "type.mismatch", path: "upstreams.openai", at: 3, 11)
    expectDiagnostic(load("version: 1\nupstreams: [a]\n"), "type.mismatch", path: "upstreams", at: 2, 12)
}

@Test func upstreamNameMustNotBeBlank() {
    let result = load("version: 1\nupstreams:\n  \"\":\n    target_url: http://h\n    api_key: k\n    request_path: /\n")
    expectDiagnostic(result, "upstream.name_blank", path: "upstreams.\"\"", at: 3, 3)
}

@Test func apiKeyMayBeEmptyOnlyWithoutStaticKeys() {
    expectClean(upstream(apiKey: "\"\""))
    expectDiagnostic(upstream(apiKey: "\"  \"", more: withStaticKey), "api_key.blank", path: "upstreams.openai.api_key", at: 5, 14)
    let null = expectDiagnostic(upstream(apiKey: "~"), "type.mismatch", path: "upstreams.openai.api_key", at: 5, 14)
    #expect(null?.message.contains("write \"\"") == true)
}

/// The key is written into a request header as it is: a line break in it would let the config
/// add headers of its own (and the worker no longer re-validates outbound headers).
@Test func apiKeyWithLineBreakOrControlCharacterIsRejectedWithoutQuotingIt() {
    for value in ["\"SECRET-sk-1\\nX-Injected: 1\"", "\"SECRET-sk-2\\r\"", "\"SECRET-sk-3\\x7f\""] {
        let result = upstream(apiKey: value)
        expectDiagnostic(result, "api_key.invalid", path: "upstreams.openai.api_key", at: 5, 14)
        #expect(!result.errors.contains { $0.message.contains("SECRET") })
    }
    expectClean(upstream(apiKey: "\"sk-with\\ttab\""))
}

@Test func requestPathRules() throws {
    let p = "upstreams.openai.request_path"
    expectDiagnostic(upstream(path: "\"  \""), "request_path.blank", path: p, at: 6, 19)
    expectDiagnostic(upstream(path: "openai"), "request_path.not_absolute", path: p, at: 6, 19)
    expectDiagnostic(upstream(path: "/http://example.com"), "request_path.contains_scheme", path: p, at: 6, 19)
    expectDiagnostic(upstream(path: "/v1?x=1"), "request_path.contains_query", path: p, at: 6, 19)
    expectDiagnostic(upstream(path: "/host:8080/v1"), "request_path.contains_port", path: p, at: 6, 19)
    #expect(expectClean(upstream(path: "/v1:chat"))?.upstreams.entries[0].requestPath == "/v1:chat")
    #expect(expectClean(upstream(path: "\" /openai/ \""))?.upstreams.entries[0].requestPath == "/openai/")
}

@Test func requestPathIsUniqueIgnoringTrailingSlash() {
    let result = upstream(
        path: "/api/",
        more: """
              second:
                target_url: http://localhost:9000
                api_key: k
                request_path: /api
            """)
    let d = expectDiagnostic(result, "request_path.duplicate", path: "upstreams.second.request_path", at: 10, 19)
    #expect(d?.message.contains("upstream \"openai\" (line 6)") == true)
}

@Test func apiKeyHeaderIsOneOfThree() throws {
    let config = try #require(expectClean(upstream(more: "    api_key_header: x-api-key\n")))
    #expect(config.upstreams.entries[0].apiKeyHeader == .xAPIKey)
    #expect(expectClean(upstream(more: "    api_key_header: api-key\n"))?.upstreams.entries[0].apiKeyHeader == .apiKey)
    expectDiagnostic(
        upstream(more: "    api_key_header: bearer\n"), "api_key_header.invalid",
        path: "upstreams.openai.api_key_header", at: 7, 21)
}

@Test func upstreamsKeepFileOrder() throws {
    let config = try #require(
        expectClean(
            upstream(
                more: """
                      zeta:
                        target_url: http://z
                        api_key: k
                        request_path: /z
                    """)))
    #expect(config.upstreams.entries.map(\.name) == ["openai", "zeta"])
}

/// docs/usage.md: `usage` is `auto` unless the upstream says `off`; anything else is an error
/// at the value.
@Test func usageIsAutoOrOff() throws {
    #expect(expectClean(upstream())?.upstreams.entries[0].usage == .auto)
    #expect(expectClean(upstream(more: "    usage: off\n"))?.upstreams.entries[0].usage == .off)
    #expect(expectClean(upstream(more: "    usage: AUTO\n"))?.upstreams.entries[0].usage == .auto)
    #expect(expectClean(upstream(more: "    usage:\n"))?.upstreams.entries[0].usage == .auto)
    expectDiagnostic(upstream(more: "    usage: sometimes\n"), "usage.invalid", path: "upstreams.openai.usage", at: 7, 12)
}

@Test func streamUsageIsPassthroughOrInjectAndInjectNeedsUsage() throws {
    #expect(expectClean(upstream())?.upstreams.entries[0].streamUsage == .passthrough)
    #expect(expectClean(upstream(more: "    stream_usage: inject\n"))?.upstreams.entries[0].streamUsage == .inject)
    #expect(expectClean(upstream(more: "    stream_usage: Inject\n"))?.upstreams.entries[0].streamUsage == .inject)
    #expect(expectClean(upstream(more: "    stream_usage:\n"))?.upstreams.entries[0].streamUsage == .passthrough)
    expectDiagnostic(
        upstream(more: "    stream_usage: always\n"), "stream_usage.invalid", path: "upstreams.openai.stream_usage", at: 7, 19)
    expectDiagnostic(
        upstream(more: "    usage: off\n    stream_usage: inject\n"), "stream_usage.needs_usage",
        path: "upstreams.openai.stream_usage", at: 8, 19)
}
