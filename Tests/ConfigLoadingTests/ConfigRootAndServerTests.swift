import Testing
@testable import ConfigLoading
import Common

// docs/configuration.md "Keys" and "Validation": the root mapping, `version` and the `server`
// section.

@Test func minimalFileLoadsWithDefaults() throws {
    let config = try #require(expectClean(load(minimalYAML)))
    #expect(config.version == 1)
    #expect(config.server == Configuration.Server())
    #expect(config.server.bindAddress.description == "0.0.0.0:8080")
    #expect(config.server.maxConnections == 1024)
    #expect(config.server.workers == .auto)
    #expect(config.upstreams.requestTimeoutMs == 120_000)
    #expect(config.upstreams.streamIdleTimeoutMs == 300_000)
    #expect(config.upstreams.entries.map(\.name) == ["openai"])
    #expect(config.upstreams.entries[0].apiKeyHeader == .authorization)
    #expect(config.requiresAuthentication == false)
}

@Test func sectionsMayBeAbsentEmptyOrNull() {
    expectClean(load("version: 1\n"))
    expectClean(load("version: 1\nserver:\nupstreams: {}\napi_keys:\n  static: ~\n  jwt: []\n"))
    expectClean(load("version: 1\nserver: {}\nupstreams: ~\napi_keys: null\n"))
}

@Test func rootMustBeAMapping() {
    expectDiagnostic(load("- version: 1\n"), "root.not_mapping", path: "", at: 1, 1)
    expectDiagnostic(load("just a sentence\n"), "root.not_mapping", path: "", at: 1, 1)
}

@Test func versionIsRequired() {
    expectDiagnostic(load("server:\n  workers: 2\n"), "field.missing", path: "version", at: 1, 1)
}

@Test func versionMustBeOne() {
    expectDiagnostic(load("version: 2\n"), "version.unsupported", path: "version", at: 1, 10)
    expectClean(load("version: +1\n"))
}

@Test func quotedNumberIsATypeErrorForAnIntegerField() {
    let d = expectDiagnostic(load("version: \"1\"\n"), "type.mismatch", path: "version", at: 1, 10)
    #expect(d?.message == "expected an unsigned integer, found a string")
    let negative = expectDiagnostic(load("version: -1\n"), "type.mismatch", path: "version", at: 1, 10)
    #expect(negative?.message.contains("negative") == true)
}

private func server(_ lines: String) -> ConfigLoadResult {
    load("version: 1\nserver:\n" + lines)
}

@Test func bindAddressAcceptsIPLiterals() {
    #expect(expectClean(server("  bind_address: 127.0.0.1:9000\n"))?.server.bindAddress.port == 9000)
    #expect(expectClean(server("  bind_address: \"[::1]:0\"\n"))?.server.bindAddress.family == .ipv6)
}

@Test func bindAddressMustNotBeBlank() {
    expectDiagnostic(server("  bind_address: \"  \"\n"), "bind_address.blank", path: "server.bind_address", at: 3, 17)
}

@Test func bindAddressIsAtMost256Bytes() {
    let long = String(repeating: "1", count: 300)
    expectDiagnostic(server("  bind_address: \(long)\n"), "bind_address.too_long", path: "server.bind_address", at: 3, 17)
}

@Test func bindAddressRefusesHostNames() {
    let d = expectDiagnostic(
        server("  bind_address: localhost:8080\n"), "bind_address.not_literal",
        path: "server.bind_address", at: 3, 17)
    #expect(d?.message.contains("host names are not accepted; use an IP literal such as 127.0.0.1:8080 or [::1]:8080") == true)
    expectDiagnostic(server("  bind_address: 127.0.0.1\n"), "bind_address.not_literal", path: "server.bind_address", at: 3, 17)
    expectDiagnostic(server("  bind_address: ::1:80\n"), "bind_address.not_literal", path: "server.bind_address", at: 3, 17)
}

@Test func bindAddressMustBeAString() {
    expectDiagnostic(server("  bind_address: [a, b]\n"), "type.mismatch", path: "server.bind_address", at: 3, 17)
}

@Test func maxConnectionsMustBePositive() {
    #expect(expectClean(server("  max_connections: 10\n"))?.server.maxConnections == 10)
    expectDiagnostic(
        server("  max_connections: 0\n"), "max_connections.not_positive",
        path: "server.max_connections", at: 3, 20)
    expectDiagnostic(
        server("  max_connections: 4294967296\n"), "type.out_of_range",
        path: "server.max_connections", at: 3, 20)
    expectDiagnostic(server("  max_connections: '10'\n"), "type.mismatch", path: "server.max_connections", at: 3, 20)
}

@Test func workersIsAutoOrACount() {
    #expect(expectClean(server("  workers: auto\n"))?.server.workers == .auto)
    #expect(expectClean(server("  workers: 4\n"))?.server.workers == .count(4))
    expectDiagnostic(server("  workers: 0\n"), "workers.out_of_range", path: "server.workers", at: 3, 12)
    expectDiagnostic(server("  workers: 1025\n"), "workers.out_of_range", path: "server.workers", at: 3, 12)
    expectDiagnostic(server("  workers: many\n"), "workers.invalid", path: "server.workers", at: 3, 12)
    expectDiagnostic(server("  workers: \"4\"\n"), "workers.invalid", path: "server.workers", at: 3, 12)
}

@Test func serverMustBeAMapping() {
    expectDiagnostic(load("version: 1\nserver: [1]\n"), "type.mismatch", path: "server", at: 2, 9)
}

@Test func unknownKeysAreWarningsWithTheirPosition() throws {
    let result = load(
        """
        version: 1
        extra: 1
        server:
          max_connectons: 5
        upstreams:
          openai:
            target_url: https://api.openai.com
            api_key: sk-upstream
            request_path: /openai
            timeout: 5
        api_keys:
          statics: []
          static:
            - key: client-key-000000000000000000000000
              name: x
          jwt:
            - id: j
              key: jwt-secret-00000000000000000000000000
              alg: HS256
        """)
    #expect(result.errors.isEmpty, "\(result.errors)")
    #expect(result.configuration != nil)
    let found = result.warnings.map { "\($0.path)@\($0.line):\($0.column)" }
    #expect(
        found == [
            "extra@2:1", "server.max_connectons@4:3", "upstreams.openai.timeout@10:5",
            "api_keys.statics@12:3", "api_keys.static[0].name@15:7", "api_keys.jwt[0].alg@19:7",
        ])
    #expect(result.warnings.allSatisfy { $0.code == "field.unknown" })
    #expect(result.warnings[1].message == "unknown key \"max_connectons\" is ignored (did you mean \"max_connections\"?)")
}

@Test func everyProblemIsCollectedInOnePass() {
    let result = load(
        """
        version: 3
        server:
          bind_address: localhost:80
          max_connections: 0
          workers: none
        upstreams:
          request_timeout_ms: 0
          a:
            target_url: ftp://example.com
            api_key: ""
            request_path: api
          b:
            api_key: k
            request_path: /b
        api_keys:
          static:
            - key: " "
          jwt:
            - id: ""
              key: short
        """)
    #expect(result.configuration == nil)
    let codes = Set(result.errors.map(\.code))
    #expect(
        codes == [
            "version.unsupported", "bind_address.not_literal", "max_connections.not_positive",
            "workers.invalid", "request_timeout_ms.not_positive", "target_url.scheme", "api_key.blank",
            "request_path.not_absolute", "field.missing", "static_key.blank", "jwt_id.blank",
            "jwt_key.too_short",
        ])
    #expect(result.errors.count == 12)
    // Reported in file order.
    #expect(result.errors.map(\.line) == result.errors.map(\.line).sorted())
}

@Test func longKeyNamesAreCutInMessages() {
    let name = String(repeating: "k", count: 1_000)  // libyaml allows simple keys up to 1024 characters
    let result = load("version: 1\n\(name): 1\n\(name): 2\n")
    #expect(result.diagnostics.map(\.code).sorted() == ["field.unknown", "yaml.duplicate_key"])
    #expect(result.diagnostics.allSatisfy { $0.message.count < 200 })
}

@Test func mappingKeysMustBeStrings() {
    let d = expectDiagnostic(load("version: 1\n[a, b]: 1\n"), "type.mismatch", path: "", at: 2, 1)
    #expect(d?.message == "keys must be strings, found a sequence")
}

@Test func diagnosticsPrintAsFileLineColumn() {
    let d = load("version: 2\n", file: "conf/fluxgate.yaml").errors.first
    #expect(
        d?.description
            == "conf/fluxgate.yaml:1:10: error: version: must be 1 (the only version of this format), found 2 [version.unsupported]")
}
