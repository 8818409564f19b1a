import Foundation
import Testing
import TestSupport

/// docs/usage.md "stream_usage: inject" through the real binaries: the mock (which answers as
/// OpenAI does, `"usage":null` on every chunk and a usage-only chunk when `include_usage` is
/// set) sees the member added; the client gets, byte for byte, the stream the mock sends a
/// request that did not ask; the request line has the mock's counts.
@Suite struct StreamUsageProcessTests {
    static let fields = " model=gpt-mock input_tokens=5 output_tokens=4 cache_read_tokens=0 cache_write_tokens=0 usage=reported"

    /// `inject` on `/openai`, and the same mock as it is on `/plain`.
    static func fixture() throws -> ProxyFixture {
        try ProxyFixture(upstreams: [
            .init(name: "openai", path: "/openai", extra: "stream_usage: inject"),
            .init(name: "plain", path: "/plain"),
        ])
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        let digest = SHA256Stream()
        digest.update(bytes)
        return digest.finalHex()
    }

    static let body = #"{"model":"gpt-mock","messages":[{"role":"user","content":"hi"}],"stream":true,"temperature":0}"#
    static let injected =
        #"{"model":"gpt-mock","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"temperature":0}"#

    @Test func theUpstreamIsAskedAndTheClientGetsTheStreamWithoutUsage() throws {
        let f = try Self.fixture()
        let plain = try f.request("POST", "/plain/v1/chat/completions", body: Array(Self.body.utf8))
        #expect(plain.status == 200)
        #expect(!String(decoding: plain.body, as: UTF8.self).contains("usage"), "the mock's stream for a request that did not ask")
        let response = try f.request("POST", "/openai/v1/chat/completions", body: Array(Self.body.utf8))
        #expect(response.status == 200)
        #expect(Self.sha256(response.body) == Self.sha256(plain.body), "\(String(decoding: response.body, as: UTF8.self))")
        let upstream = try #require(f.mock.requests.last)
        #expect(upstream.bodyText == Self.injected)
        #expect(upstream.header("content-length") == String(Self.injected.utf8.count))
        let line = try #require(f.proxy.waitForLogLines(containing: "request_url=/openai/v1/chat/completions", count: 1).first)
        #expect(line.hasSuffix(Self.fields), "\(line)")
    }

    /// A chunked request body is edited the same way and goes up chunked.
    @Test func aChunkedRequestIsInjectedToo() throws {
        let f = try Self.fixture()
        let bytes = Array(Self.body.utf8)
        let connection = try f.connect()
        var text = "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
        text += "Authorization: Bearer \(ProxyFixture.clientKey)\r\nTransfer-Encoding: chunked\r\n\r\n"
        var wire = Array(text.utf8)
        for start in stride(from: 0, to: bytes.count, by: 7) {
            let piece = bytes[start..<min(start + 7, bytes.count)]
            wire += Array("\(String(piece.count, radix: 16))\r\n".utf8) + piece + Array("\r\n".utf8)
        }
        wire += Array("0\r\n\r\n".utf8)
        try connection.send(wire)
        let response = try connection.readResponse(method: "POST")
        #expect(response.status == 200)
        let text2 = String(decoding: response.body, as: UTF8.self)
        #expect(!text2.contains("usage") && text2.hasSuffix("data: [DONE]\n\n"), "\(text2)")
        let upstream = try #require(f.mock.requests.last)
        #expect(upstream.bodyText == Self.injected)
        #expect(upstream.header("transfer-encoding") == "chunked")
        let line = try #require(f.proxy.waitForLogLines(containing: "request_url=/openai/v1/chat/completions", count: 1).first)
        #expect(line.hasSuffix(Self.fields), "\(line)")
    }

    /// A client that asked gets its usage chunk; a request that is not streamed is not touched.
    @Test func aClientThatAskedOrDidNotStreamIsLeftAlone() throws {
        let f = try Self.fixture()
        let asked = Array(#"{"model":"gpt-mock","stream":true,"stream_options":{"include_usage":true}}"#.utf8)
        let plain = try f.request("POST", "/plain/v1/chat/completions", body: asked)
        let response = try f.request("POST", "/openai/v1/chat/completions", body: asked)
        #expect(Self.sha256(response.body) == Self.sha256(plain.body))
        #expect(String(decoding: response.body, as: UTF8.self).contains(#""choices":[],"usage":{"#))
        #expect(f.mock.requests.last?.bodySHA256 == Self.sha256(asked))
        let whole = Array(#"{"model":"gpt-mock","messages":[]}"#.utf8)
        #expect(try f.request("POST", "/openai/v1/chat/completions", body: whole).status == 200)
        #expect(f.mock.requests.last?.bodySHA256 == Self.sha256(whole))
    }

    /// docs/usage.md: a body over 1 MiB is not read; it goes up unchanged, and so does its stream.
    @Test func aBodyTooLargeToReadIsForwardedUnchanged() throws {
        let f = try Self.fixture()
        let filler = String(repeating: "x", count: 1024 * 1024)
        // `stream` first: the mock reads only the body's first 64 KiB.
        let large = Array(#"{"stream":true,"model":"gpt-mock","messages":[{"role":"user","content":"\#(filler)"}]}"#.utf8)
        let response = try f.request("POST", "/openai/v1/chat/completions", body: large)
        #expect(response.status == 200)
        #expect(f.mock.requests.last?.bodySHA256 == Self.sha256(large))
        #expect(!String(decoding: response.body, as: UTF8.self).contains("usage"))
        let line = try #require(f.proxy.waitForLogLines(containing: "request_url=/openai/v1/chat/completions", count: 1).first)
        #expect(line.hasSuffix(" usage=missing"), "\(line)")
    }

    /// The official OpenAI SDK streams without asking for usage; the proxy asks, and the SDK sees
    /// no usage chunk (its loop reads `choices[0]` of every chunk) while the log has the counts.
    @Test func theOpenAISDKStreamsThroughInject() throws {
        let python = Binaries.packageRoot + "/.venv-tests/bin/python"
        try #require(FileManager.default.isExecutableFile(atPath: python), "run .ci/install-deps first (it installs the OpenAI SDK)")
        let f = try ProxyFixture(upstreams: [.init(name: "openai", path: "/openai", target: "/v1", extra: "stream_usage: inject")])
        let script = Binaries.packageRoot + "/Tests/Fixtures/openai_sdk_inject.py"
        let result = try ChildProcess.run(python, [script, "http://127.0.0.1:\(f.proxy.port)/openai", ProxyFixture.clientKey], timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("STREAM 5 Hello from the mock. usage=None"), "\(result.stdout)")
        #expect(f.mock.requests.last?.bodyText.contains(#""stream_options":{"include_usage":true}"#) == true)
        let line = try #require(f.proxy.waitForLogLines(containing: "request_url=/openai/chat/completions", count: 1).first)
        #expect(line.hasSuffix(Self.fields), "\(line)")
    }
}
