import Foundation
import Testing
import TestSupport

/// The README's first minute: examples/mock-provider.py, fluxgate on examples/fluxgate-local.yaml
/// (only its two addresses moved to free ports), a completion, a stream and an Anthropic message
/// through the proxy, all 200.
@Suite(.serialized) struct FirstRequestProcessTests {
    static let clientKey = "local-client-key-team-a"

    final class Setup {
        let mock: ChildProcess
        let mockPort: Int
        let proxy: FluxgateInstance

        init() throws {
            let root = Binaries.packageRoot
            mock = try ChildProcess(
                Tools.find("python3") ?? "/usr/bin/python3",
                [root + "/examples/mock-provider.py", "--port", "0"])
            let line = try #require(mock.waitForLine(containing: "mock provider listening on", timeout: 20), "\(mock.stderr)")
            mockPort = try #require(line.firstMatch(of: /127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) })
            let example = try String(contentsOfFile: root + "/examples/fluxgate-local.yaml", encoding: .utf8)
            #expect(example.contains("bind_address: 127.0.0.1:8080") && example.contains("http://127.0.0.1:8081"))
            let yaml = example.replacingOccurrences(of: "bind_address: 127.0.0.1:8080", with: "bind_address: 127.0.0.1:0")
                .replacingOccurrences(of: "http://127.0.0.1:8081", with: "http://127.0.0.1:\(mockPort)")
            proxy = try FluxgateInstance(yaml: yaml)
        }

        func post(_ path: String, _ json: String, port: Int? = nil) throws -> RawConnection.Response {
            try RawConnection(port: port ?? proxy.port, timeout: 15).request(
                "POST", path,
                headers: [
                    ("Authorization", "Bearer \(FirstRequestProcessTests.clientKey)"),
                    ("Content-Type", "application/json"),
                ], body: Array(json.utf8))
        }
    }

    static func object(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    static let reply = "Hello from the mock provider. You said: Hello"

    @Test func aCompletionAndAStreamThroughTheProxyAnswer200() throws {
        let setup = try Setup()
        let completion = try setup.post(
            "/openai/v1/chat/completions",
            #"{"model": "mock-gpt", "messages": [{"role": "user", "content": "Hello"}]}"#)
        #expect(completion.status == 200, "\(completion.bodyText)")
        let choices = try #require(try Self.object(completion.bodyText)["choices"] as? [[String: Any]])
        #expect((choices.first?["message"] as? [String: Any])?["content"] as? String == Self.reply)

        let stream = try setup.post(
            "/openai/v1/chat/completions",
            #"{"model": "mock-gpt", "stream": true, "messages": [{"role": "user", "content": "Hello"}]}"#)
        #expect(stream.status == 200)
        #expect(stream.header("content-type") == "text/event-stream")
        let events = stream.bodyText.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.last == "data: [DONE]", "\(stream.bodyText)")
        let deltas = try events.dropLast().map { event -> String in
            let chunk = try Self.object(String(event.dropFirst("data: ".count)))
            let delta = (chunk["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any]
            return delta?["content"] as? String ?? ""
        }
        #expect(deltas.joined() == Self.reply)
        #expect(setup.proxy.waitForLogLines(containing: "status=200", count: 2).count == 2)
    }

    @Test func anAnthropicMessageThroughTheProxyAnswers200() throws {
        let setup = try Setup()
        let message = try setup.post(
            "/anthropic/v1/messages",
            #"{"model": "mock-claude", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]}"#)
        #expect(message.status == 200, "\(message.bodyText)")
        let content = try #require(try Self.object(message.bodyText)["content"] as? [[String: Any]])
        #expect(content.first?["text"] as? String == Self.reply)
    }

    /// The mock wants the provider key of the example, which only the proxy has: the client's key
    /// sent to it directly is refused. What the 200s above show is the proxy's credential swap.
    @Test func theMockRefusesTheClientsOwnKey() throws {
        let setup = try Setup()
        let direct = try setup.post("/v1/chat/completions", #"{"messages": []}"#, port: setup.mockPort)
        #expect(direct.status == 401)
    }
}
