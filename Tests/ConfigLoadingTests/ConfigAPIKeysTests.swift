import Testing
@testable import ConfigLoading
import Common

// docs/configuration.md "Keys" and "Validation": `api_keys.static` and `api_keys.jwt`. In
// `keys(...)`, the first list entry starts at 9:7 (after "- ") and a `key:` value on line 10 is at
// 10:12.

private func keys(_ section: String) -> ConfigLoadResult {
    load(minimalYAML + "\napi_keys:\n" + section)
}

private let k1 = "client-key-1111111111111111111111111"
private let k2 = "client-key-2222222222222222222222222"

@Test func staticKeysLoadWithTheirUpstreams() throws {
    let config = try #require(
        expectClean(
            keys(
                """
                  static:
                    - id: pr
                      key: \(k1)
                      upstreams: [openai]
                    - key: \(k2)

                """)))
    #expect(
        config.apiKeys.staticKeys == [
            Configuration.StaticKey(id: "pr", key: Secret(k1), upstreams: ["openai"]),
            Configuration.StaticKey(id: nil, key: Secret(k2), upstreams: []),
        ])
    #expect(config.requiresAuthentication)
}

@Test func staticKeyMustNotBeBlank() {
    expectDiagnostic(keys("  static:\n    - id: pr\n      key: \"\"\n"), "static_key.blank", path: "api_keys.static[0].key", at: 10, 12)
}

@Test func staticKeyIsRequired() {
    expectDiagnostic(keys("  static:\n    - id: pr\n"), "field.missing", path: "api_keys.static[0].key", at: 9, 7)
}

@Test func staticKeyIsUnique() {
    let d = expectDiagnostic(
        keys("  static:\n    - id: pr\n      key: \(k1)\n    - key: \(k1)\n"),
        "static_key.duplicate", path: "api_keys.static[1].key", at: 11, 12)
    #expect(d?.message == "duplicates the key of api_keys.static[0] (id \"pr\")")
}

@Test func staticIDIsNotBlankAndUnique() {
    expectDiagnostic(keys("  static:\n    - id: \" \"\n      key: \(k1)\n"), "static_id.blank", path: "api_keys.static[0].id", at: 9, 11)
    expectDiagnostic(
        keys("  static:\n    - id: pr\n      key: \(k1)\n    - id: pr\n      key: \(k2)\n"),
        "static_id.duplicate", path: "api_keys.static[1].id", at: 11, 11)
}

@Test func staticUpstreamsMustBeConfigured() {
    let d = expectDiagnostic(
        keys("  static:\n    - key: \(k1)\n      upstreams: [openai, anthropic]\n"),
        "static_upstreams.unknown", path: "api_keys.static[0].upstreams[1]", at: 10, 27)
    #expect(d?.message.contains("\"anthropic\"") == true)
    // A reserved key of `upstreams` is not an upstream.
    expectDiagnostic(
        keys("  static:\n    - key: \(k1)\n      upstreams: [request_timeout_ms]\n"),
        "static_upstreams.unknown", path: "api_keys.static[0].upstreams[0]", at: 10, 19)
}

@Test func staticEntriesMustBeMappings() {
    expectDiagnostic(keys("  static:\n    - \(k1)\n"), "type.mismatch", path: "api_keys.static[0]", at: 9, 7)
    expectDiagnostic(keys("  static: \(k1)\n"), "type.mismatch", path: "api_keys.static", at: 8, 11)
}

@Test func jwtKeysLoad() throws {
    let secret = String(repeating: "é", count: 16)  // 32 bytes in UTF-8, 16 characters
    let config = try #require(expectClean(keys("  jwt:\n    - id: team\n      key: \(secret)\n")))
    #expect(config.apiKeys.jwt == [Configuration.JWTKey(id: "team", key: Secret(secret))])
    #expect(config.requiresAuthentication)
}

@Test func jwtIDIsRequiredNotBlankAndUnique() {
    expectDiagnostic(keys("  jwt:\n    - key: \(k1)\n"), "field.missing", path: "api_keys.jwt[0].id", at: 9, 7)
    expectDiagnostic(keys("  jwt:\n    - id: ''\n      key: \(k1)\n"), "jwt_id.blank", path: "api_keys.jwt[0].id", at: 9, 11)
    expectDiagnostic(
        keys("  jwt:\n    - id: a\n      key: \(k1)\n    - id: a\n      key: \(k2)\n"),
        "jwt_id.duplicate", path: "api_keys.jwt[1].id", at: 11, 11)
}

@Test func jwtKeyIsNotBlankAndAtLeast32Bytes() {
    expectDiagnostic(keys("  jwt:\n    - id: a\n      key: \"   \"\n"), "jwt_key.blank", path: "api_keys.jwt[0].key", at: 10, 12)
    let d = expectDiagnostic(
        keys("  jwt:\n    - id: a\n      key: \(String(repeating: "x", count: 31))\n"),
        "jwt_key.too_short", path: "api_keys.jwt[0].key", at: 10, 12)
    #expect(d?.message.contains("at least 32 bytes") == true)
    expectClean(keys("  jwt:\n    - id: a\n      key: \(String(repeating: "x", count: 32))\n"))
}
