import Foundation
import Testing
import TestSupport

/// docs/routing-and-forwarding.md "Model routing", through the real binaries: the official SDKs
/// against one endpoint, and raw requests for the edges (body sizes, framing, escapes, who may
/// use what, prefix precedence).
@Suite(.serialized) struct ModelRoutingProcessTests {
    static let keyA = "client-key-team-a-0123456789abcdef"
    static let keyB = "client-key-team-b-0123456789abcdef"
    static let alphaKey = "sk-alpha-provider-0123456789"
    static let betaKey = "sk-beta-provider-0123456789"

    /// `alpha` (OpenAI style) and `beta` (Anthropic's `x-api-key`) behind one endpoint; `team-b`
    /// may use `gpt-4o` only.
    static func yaml(alpha: String, beta: String, extraUpstreams: String = "") -> String {
        """
        version: 1
        server:
          bind_address: "127.0.0.1:0"
          workers: 1
        upstreams:
          alpha:
            request_path: /alpha
            target_url: "\(alpha)"
            api_key: "\(alphaKey)"
          beta:
            request_path: /beta
            target_url: "\(beta)"
            api_key: "\(betaKey)"
            api_key_header: x-api-key
        \(extraUpstreams)
        models:
          gpt-4o:
            upstream: alpha
          claude-sonnet:
            upstream: beta
            model: claude-sonnet-4-5
          "ft:gpt-4o-mini:*":
            upstream: alpha
            model: "gpt-4o-mini-\\"tuned\\""
        api_keys:
          static:
            - id: team-a
              key: "\(keyA)"
            - id: team-b
              key: "\(keyB)"
              models: [gpt-4o]

        """
    }

    static var python: String { Binaries.packageRoot + "/.venv-tests/bin/python" }

    @Test func theOpenAISDKListsModelsAndReachesTwoUpstreamsByName() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python), "run .ci/install-deps first (it installs the SDKs)")
        let alpha = try ModelMockUpstream(name: "alpha", providerKey: Self.alphaKey)
        let beta = try ModelMockUpstream(name: "beta", providerKey: Self.betaKey)
        let proxy = try FluxgateInstance(yaml: Self.yaml(alpha: alpha.baseURL, beta: beta.baseURL))
        let script = Binaries.packageRoot + "/Tests/Fixtures/model_sdk_clients.py"
        let result = try ChildProcess.run(Self.python, [script, "openai", "http://127.0.0.1:\(proxy.port)", Self.keyA], timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        // Patterns are not listed.
        #expect(result.stdout.contains("MODELS claude-sonnet gpt-4o\n"))
        // The responses are the upstreams' own: the renamed one names the upstream's model.
        #expect(result.stdout.contains("COMPLETION gpt-4o gpt-4o Hello from alpha."))
        #expect(result.stdout.contains("STREAM gpt-4o 4 Hello from alpha."))
        #expect(result.stdout.contains("COMPLETION claude-sonnet claude-sonnet-4-5 Hello from beta."))
        #expect(result.stdout.contains("STREAM claude-sonnet 4 Hello from beta."))
        #expect(result.stdout.contains("NOTFOUND 404 model_not_found"))
        let alphaSeen = alpha.waitForRequests(2)
        let betaSeen = beta.waitForRequests(2)
        #expect(alphaSeen.map(\.model) == ["gpt-4o", "gpt-4o"])
        #expect(betaSeen.map(\.model) == ["claude-sonnet-4-5", "claude-sonnet-4-5"])
        #expect((alphaSeen + betaSeen).allSatisfy { $0.keyOK && $0.path == "/v1/chat/completions" })
        // The log shows the decision: the upstream, and the name the client sent.
        let lines = proxy.waitForLogLines(containing: "upstream=beta", count: 2)
        #expect(lines.count == 2 && lines.allSatisfy { $0.contains("model=claude-sonnet") && $0.contains("status=200") })
        #expect(proxy.logLines(containing: "model=not-configured").first?.contains("status=404") == true)
    }

    @Test func theAnthropicSDKSendsMessagesRoutedByModel() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python), "run .ci/install-deps first (it installs the SDKs)")
        let alpha = try ModelMockUpstream(name: "alpha", providerKey: Self.alphaKey)
        let beta = try ModelMockUpstream(name: "beta", providerKey: Self.betaKey)
        let proxy = try FluxgateInstance(yaml: Self.yaml(alpha: alpha.baseURL, beta: beta.baseURL))
        let script = Binaries.packageRoot + "/Tests/Fixtures/model_sdk_clients.py"
        let result = try ChildProcess.run(
            Self.python, [script, "anthropic", "http://127.0.0.1:\(proxy.port)", Self.keyA], timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("MODELS claude-sonnet gpt-4o\n"))
        #expect(result.stdout.contains("MESSAGE claude-sonnet-4-5 Hello from beta."))
        #expect(result.stdout.contains("STREAM claude-sonnet-4-5 Hello from beta."))
        let seen = beta.waitForRequests(2)
        #expect(seen.map(\.path) == ["/v1/messages", "/v1/messages"])
        #expect(seen.allSatisfy { $0.keyOK && $0.model == "claude-sonnet-4-5" })
        #expect(alpha.requests.isEmpty)
    }
}
