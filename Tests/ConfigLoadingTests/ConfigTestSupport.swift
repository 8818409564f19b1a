import Testing
@testable import ConfigLoading
import Common

// Helpers shared by the configuration tests: load YAML text and assert on one diagnostic's code,
// location path and position together, since all three are the contract with the user.

func load(_ yaml: String, file: String = "test.yaml") -> ConfigLoadResult {
    ConfigLoader.load(bytes: Array(yaml.utf8), file: file)
}

/// A valid file with one upstream; tests append or replace lines to break one rule at a time.
let minimalYAML = """
    version: 1
    upstreams:
      openai:
        target_url: https://api.openai.com
        api_key: sk-upstream
        request_path: /openai
    """

/// Expects exactly one diagnostic with `code`, at `path` and `line:column`, of the given severity.
@discardableResult
func expectDiagnostic(
    _ result: ConfigLoadResult, _ code: String, path: String, at line: Int, _ column: Int,
    severity: ConfigDiagnostic.Severity = .error,
    sourceLocation: SourceLocation = #_sourceLocation
) -> ConfigDiagnostic? {
    let matches = result.diagnostics.filter { $0.code == code }
    #expect(
        matches.count == 1, "expected one \(code) in \(result.diagnostics.map(\.description))",
        sourceLocation: sourceLocation)
    guard let found = matches.first else { return nil }
    #expect(found.path == path, "path of \(found)", sourceLocation: sourceLocation)
    #expect(found.line == line && found.column == column, "position of \(found)", sourceLocation: sourceLocation)
    #expect(found.severity == severity, sourceLocation: sourceLocation)
    if severity == .error {
        #expect(result.configuration == nil, "an error must withhold the configuration", sourceLocation: sourceLocation)
    }
    return found
}

/// Expects the file to load, with no diagnostic at all.
@discardableResult
func expectClean(_ result: ConfigLoadResult, sourceLocation: SourceLocation = #_sourceLocation) -> Configuration? {
    #expect(result.diagnostics.isEmpty, "\(result.diagnostics.map(\.description))", sourceLocation: sourceLocation)
    #expect(result.configuration != nil, sourceLocation: sourceLocation)
    return result.configuration
}
