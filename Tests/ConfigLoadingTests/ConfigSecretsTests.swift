import Foundation
import Testing
@testable import ConfigLoading
import Common

// docs/configuration.md "Differences from Fluxgate": no secret ever appears in a message. Every
// rule that touches a secret is broken below with a distinctive value, then all output is searched
// for those values.

private let secrets = [
    "SECRET-UPSTREAM-7a1c", "SECRET-UPSTREAM-LIST-9f1b", "SECRET-STATIC-DUP-0e4d0000000000000000",
    "SECRET-STATIC-SEQ-51aa", "SECRET-JWT-SHORT-c0de", "SECRET-JWT-MAP-77b2", "SECRET-URL-PASS-4e4e",
    "SECRET-STATIC-MAP-d00d", "SECRET-DUPKEY-A-1111", "SECRET-DUPKEY-B-2222",
]

private func expectNoSecret(in result: ConfigLoadResult, codes: Set<String>, sourceLocation: SourceLocation = #_sourceLocation) {
    let output = result.diagnostics.map { "\($0.description) \(String(reflecting: $0))" }.joined(separator: "\n")
    for secret in secrets {
        #expect(!output.contains(secret), "\(secret) leaked into:\n\(output)", sourceLocation: sourceLocation)
    }
    let found = Set(result.diagnostics.map(\.code))
    #expect(codes.isSubset(of: found), "rules that must have fired: \(codes.subtracting(found))", sourceLocation: sourceLocation)
}

@Test func diagnosticsNeverQuoteSecrets() {
    let result = load(
        """
        version: 1
        upstreams:
          openai:
            target_url: https://admin:SECRET-URL-PASS-4e4e@api.openai.com
            api_key: [SECRET-UPSTREAM-LIST-9f1b]
            request_path: /openai
          blank:
            target_url: http://h
            api_key: "  "
            request_path: /blank
        api_keys:
          static:
            - id: pr
              key: SECRET-STATIC-DUP-0e4d0000000000000000
            - key: SECRET-STATIC-DUP-0e4d0000000000000000
            - key: [SECRET-STATIC-SEQ-51aa]
            - key: {SECRET-STATIC-MAP-d00d: 1}
            - key: SECRET-DUPKEY-A-1111
              key: SECRET-DUPKEY-B-2222
          jwt:
            - id: short
              key: SECRET-JWT-SHORT-c0de
            - id: map
              key: {a: SECRET-JWT-MAP-77b2}
        """)
    expectNoSecret(
        in: result,
        codes: [
            "target_url.userinfo", "type.mismatch", "api_key.blank",
            "static_key.duplicate", "yaml.duplicate_key", "jwt_key.too_short",
        ])
    #expect(result.errors.filter { $0.code == "type.mismatch" }.count == 4)
}

@Test func syntaxErrorsNeverQuoteSecrets() {
    let unterminated = load("version: 1\nupstreams:\n  a:\n    api_key: \"SECRET-UPSTREAM-7a1c\n")
    expectNoSecret(in: unterminated, codes: ["yaml.syntax"])
    let badToken = load("version: 1\napi_keys:\n  static:\n    - key: SECRET-UPSTREAM-7a1c\n\t- key: SECRET-UPSTREAM-7a1c\n")
    expectNoSecret(in: badToken, codes: ["yaml.syntax"])
}

@Test func loadedConfigurationRedactsSecretsWhenPrinted() throws {
    let config = try #require(expectClean(load(minimalYAML.replacingOccurrences("sk-upstream", with: "SECRET-UPSTREAM-7a1c"))))
    #expect(!String(describing: config).contains("SECRET-UPSTREAM"))
    #expect(!String(reflecting: config).contains("SECRET-UPSTREAM"))
    #expect(config.upstreams.entries[0].apiKey.value == "SECRET-UPSTREAM-7a1c")
}

@Test func exampleConfigurationValidatesCleanlyAndSurvivesJSON() throws {
    let example = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples/fluxgate.yaml").path
    let config = try #require(expectClean(ConfigLoader.load(path: example)))
    #expect(config.server.bindAddress.description == "127.0.0.1:8080")
    #expect(config.upstreams.entries.map(\.name).contains("openai"))
    #expect(config.upstreams.entries.contains { $0.apiKeyHeader == .xAPIKey })
    #expect(!config.apiKeys.jwt.isEmpty && !config.apiKeys.staticKeys.isEmpty)

    // The master sends this value to the workers as JSON: it must come back identical.
    let json = try JSONEncoder().encode(config)
    #expect(try JSONDecoder().decode(Configuration.self, from: json) == config)
}
