import Testing
@testable import ConfigLoading
import Common

// docs/configuration.md "Keys" and "Validation": `models:` and `api_keys.static[].models`. The
// `models:` section starts on line 7 of `models(...)`, its first entry's name at 8:3.

private func models(_ section: String, upstreams extra: String = "") -> ConfigLoadResult {
    load(minimalYAML + "\n" + extra + "models:\n" + section)
}

private let anthropic = """
    upstreams:
      anthropic:
        target_url: https://api.anthropic.com
        api_key: sk-ant
        request_path: /anthropic

    """

@Test func modelsLoadInFileOrderWithTheirUpstreamNames() throws {
    let config = try #require(
        expectClean(
            models(
                """
                  gpt-4o:
                    upstream: openai
                  claude-sonnet:
                    upstream: openai
                    model: claude-sonnet-4-5
                  "ft:gpt-4o-mini:*":
                    upstream: openai

                """)))
    #expect(
        config.models == [
            Configuration.ModelRoute(name: "gpt-4o", upstream: "openai"),
            Configuration.ModelRoute(name: "claude-sonnet", upstream: "openai", upstreamModel: "claude-sonnet-4-5"),
            Configuration.ModelRoute(name: "ft:gpt-4o-mini:*", upstream: "openai"),
        ])
    #expect(config.models[2].isPattern && !config.models[0].isPattern)
}

@Test func aFileWithoutModelsHasNone() throws {
    let config = try #require(expectClean(load(minimalYAML)))
    #expect(config.models.isEmpty)
    let empty = try #require(expectClean(load(minimalYAML + "\nmodels:\n")))
    #expect(empty.models.isEmpty)
}

@Test func aModelsUpstreamMustBeConfigured() {
    let d = expectDiagnostic(
        models("  gpt-4o:\n    upstream: azure\n"), "model.upstream_unknown", path: "models.\"gpt-4o\".upstream", at: 9, 15)
    #expect(d?.message == "upstream \"azure\" is not configured in upstreams")
}

@Test func aModelsUpstreamIsRequired() {
    expectDiagnostic(models("  gpt-4o:\n    model: x\n"), "field.missing", path: "models.\"gpt-4o\".upstream", at: 9, 5)
}

@Test func anEmptyOrBlankPatternIsRefused() {
    expectDiagnostic(models("  \"\":\n    upstream: openai\n"), "model.name_blank", path: "models.\"\"", at: 8, 3)
    expectDiagnostic(models("  \" \":\n    upstream: openai\n"), "model.name_blank", path: "models.\" \"", at: 8, 3)
}

@Test func twoPatternsThatMatchTheSameNamesAreADuplicate() {
    let d = expectDiagnostic(
        models("  gpt-*:\n    upstream: openai\n  gpt-**:\n    upstream: openai\n"), "model.duplicate",
        path: "models.\"gpt-**\"", at: 10, 3)
    #expect(d?.message == "model \"gpt-**\" matches the same names as the entry on line 8")
}

@Test func aRepeatedNameIsReportedByTheYAMLReader() {
    let result = models("  gpt-4o:\n    upstream: openai\n  gpt-4o:\n    upstream: openai\n")
    #expect(result.diagnostics.contains { $0.code == "yaml.duplicate_key" && $0.line == 10 })
    #expect(result.configuration == nil)
}

@Test func aBlankUpstreamModelIsRefusedAndUnknownKeysWarn() {
    expectDiagnostic(
        models("  gpt-4o:\n    upstream: openai\n    model: \"\"\n"), "model.target_blank", path: "models.\"gpt-4o\".model", at: 10, 12)
    expectDiagnostic(
        models("  gpt-4o:\n    upstream: openai\n    upstrem: x\n"), "field.unknown", path: "models.\"gpt-4o\".upstrem", at: 10, 5,
        severity: .warning)
}

@Test func aModelNameLongerThanAClientMaySendIsRefused() {
    let long = String(repeating: "m", count: Configuration.maxModelNameBytes + 1)
    let result = models("  \(long):\n    upstream: openai\n")
    #expect(result.diagnostics.map(\.code) == ["model.name_too_long"])
}

@Test func modelsMayNameEveryConfiguredUpstream() throws {
    let yaml = minimalYAML.replacingOccurrences(of: "upstreams:\n", with: anthropic.dropLast() + "\n")
    let config = try #require(expectClean(load(yaml + "\nmodels:\n  claude-*:\n    upstream: anthropic\n")))
    #expect(config.models.first?.upstream == "anthropic")
}

@Test func staticKeysCarryTheirModelLists() throws {
    let key = "client-key-1111111111111111111111111"
    let config = try #require(
        expectClean(
            load(
                minimalYAML + """

                    models:
                      gpt-4o: { upstream: openai }
                    api_keys:
                      static:
                        - id: a
                          key: \(key)
                          models: [gpt-4o, "claude-*"]
                        - id: b
                          key: \(key)-b

                    """)))
    #expect(config.apiKeys.staticKeys.map(\.models) == [["gpt-4o", "claude-*"], nil])
}

@Test func aKeysModelListHoldsNonBlankStrings() {
    let key = "client-key-1111111111111111111111111"
    let base = minimalYAML + "\napi_keys:\n  static:\n    - key: \(key)\n"
    expectDiagnostic(load(base + "      models: [gpt-4o, \"\"]\n"), "model.name_blank", path: "api_keys.static[0].models[1]", at: 10, 24)
    expectDiagnostic(load(base + "      models: gpt-4o\n"), "type.mismatch", path: "api_keys.static[0].models", at: 10, 15)
}
