import Foundation
import Testing
import TestSupport

/// What users actually run: the official OpenAI Python SDK pointed at fluxgate, which forwards to
/// a mock OpenAI upstream. `.ci/install-deps` puts the SDK in `.venv-tests`.
@Suite struct OpenAISDKProcessTests {
    @Test func chatCompletionStreamedCompletionAndAuthErrorThroughTheSDK() throws {
        let python = Binaries.packageRoot + "/.venv-tests/bin/python"
        try #require(FileManager.default.isExecutableFile(atPath: python), "run .ci/install-deps first (it installs the OpenAI SDK)")
        let f = try ProxyFixture(upstreams: [.init(name: "openai", path: "/openai", target: "/v1")])
        let script = Binaries.packageRoot + "/Tests/Fixtures/openai_sdk_client.py"
        let result = try ChildProcess.run(python, [script, "http://127.0.0.1:\(f.proxy.port)/openai", ProxyFixture.clientKey], timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("COMPLETION Hello from the mock."))
        #expect(result.stdout.contains("STREAM 5 Hello from the mock."))
        #expect(result.stdout.contains("AUTHERROR 401"))
        let chats = f.mock.requests.filter { $0.uri == "/v1/chat/completions" }
        #expect(chats.count == 2)
        #expect(chats.allSatisfy { $0.headers(named: "authorization") == ["Bearer \(ProxyFixture.providerKey)"] })
    }
}
