import Testing
@testable import ConfigLoading
import Common

// docs/configuration.md "observability": the listener of /metrics, /livez and /readyz, and
// request-id propagation.

private func observability(_ lines: String, server: String = "") -> ConfigLoadResult {
    load(minimalYAML + "\n" + server + "observability:\n" + lines)
}

@Test func observabilityIsOffWhenAbsentEmptyOrNull() throws {
    #expect(expectClean(load(minimalYAML))?.observability == Configuration.Observability())
    #expect(expectClean(load(minimalYAML + "\nobservability:\n"))?.observability.listen == nil)
    #expect(expectClean(load(minimalYAML + "\nobservability: {}\n"))?.observability.propagateRequestID == false)
}

@Test func observabilityListenAndPropagateAreRead() throws {
    let config = try #require(expectClean(observability("  listen: 127.0.0.1:9464\n  propagate_request_id: true\n")))
    #expect(config.observability.listen?.description == "127.0.0.1:9464")
    #expect(config.observability.propagateRequestID)
}

@Test func observabilityListenMustBeALiteralAddress() {
    expectDiagnostic(
        observability("  listen: localhost:9464\n"), "bind_address.not_literal", path: "observability.listen", at: 8, 11)
}

@Test func observabilityListenMustNotBeTheProxyListener() {
    let server = "server:\n  bind_address: 127.0.0.1:8080\n"
    let result = observability("  listen: 127.0.0.1:8080\n", server: server)
    expectDiagnostic(result, "observability.listen_conflict", path: "observability.listen", at: 10, 11)
    // A wildcard proxy address takes the port on every address of its family.
    let wildcard = observability("  listen: 127.0.0.1:8080\n", server: "server:\n  bind_address: 0.0.0.0:8080\n")
    expectDiagnostic(wildcard, "observability.listen_conflict", path: "observability.listen", at: 10, 11)
    expectClean(observability("  listen: 127.0.0.1:9464\n", server: server))
    // Port 0 picks a free port each time: it never clashes.
    expectClean(observability("  listen: 127.0.0.1:0\n", server: "server:\n  bind_address: 127.0.0.1:0\n"))
}

@Test func propagateRequestIDMustBeABoolean() {
    expectDiagnostic(observability("  propagate_request_id: yes\n"), "type.mismatch", path: "observability.propagate_request_id", at: 8, 25)
    expectDiagnostic(
        observability("  propagate_request_id: \"true\"\n"), "type.mismatch", path: "observability.propagate_request_id", at: 8, 25)
}

@Test func unknownObservabilityKeyIsAWarningWithASuggestion() throws {
    let result = observability("  listne: 127.0.0.1:9464\n")
    let found = try #require(expectDiagnostic(result, "field.unknown", path: "observability.listne", at: 8, 3, severity: .warning))
    #expect(found.message.contains("listen"))
}
