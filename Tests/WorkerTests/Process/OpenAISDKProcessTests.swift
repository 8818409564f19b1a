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
        // docs/usage.md: the counts the mock reported, for the completion and the stream's usage chunk.
        let lines = f.proxy.waitForLogLines(containing: "request_url=/openai/chat/completions", count: 2)
        #expect(lines.count == 2)
        #expect(
            lines.first?.hasSuffix(" model=gpt-mock input_tokens=5 output_tokens=5 cache_read_tokens=0 cache_write_tokens=0 usage=reported")
                == true, "\(lines)")
        #expect(
            lines.last?.hasSuffix(" model=gpt-mock input_tokens=5 output_tokens=4 cache_read_tokens=0 cache_write_tokens=0 usage=reported")
                == true, "\(lines)")
    }

    /// The official Anthropic SDK (`x-api-key`), a message and a stream: the counts logged are the
    /// mock's, normalised (input 12 + 3 cache read + 2 cache write).
    @Test func messageAndStreamThroughTheAnthropicSDKLogTheMocksUsage() throws {
        let python = Binaries.packageRoot + "/.venv-tests/bin/python"
        try #require(FileManager.default.isExecutableFile(atPath: python), "run .ci/install-deps first (it installs the SDKs)")
        let f = try ProxyFixture(upstreams: [.init(name: "anthropic", path: "/anthropic", target: "/v1")])
        let script = Binaries.packageRoot + "/Tests/Fixtures/anthropic_sdk_client.py"
        let result = try ChildProcess.run(
            python, [script, "http://127.0.0.1:\(f.proxy.port)/anthropic", ProxyFixture.clientKey], timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("MESSAGE Hello from the mock. 12 6"))
        #expect(result.stdout.contains("STREAM Hello from the mock. 6"))
        let lines = f.proxy.waitForLogLines(containing: "/v1/messages", count: 2)
        #expect(lines.count == 2)
        for line in lines {
            #expect(
                line.hasSuffix(
                    " model=claude-mock input_tokens=17 output_tokens=6 cache_read_tokens=3 cache_write_tokens=2 usage=reported"), "\(line)"
            )
        }
    }
}
