import Foundation
import Testing
import TestSupport

/// docs/usage.md through the real binaries: the request line shows the usage the provider's
/// response reports (the conformance corpus's files, served by the mock), and the client receives
/// the mock's bytes unchanged.
@Suite struct UsageProcessTests {
    /// The request line's usage fields as docs/logging.md prints them, for a corpus case.
    static func fields(_ expect: CorpusCase.Expected) -> String {
        var parts: [String] = []
        if let model = expect.model { parts.append("model=\(model)") }
        if let v = expect.inputTokens { parts.append("input_tokens=\(v)") }
        if let v = expect.outputTokens { parts.append("output_tokens=\(v)") }
        if let v = expect.cacheReadTokens { parts.append("cache_read_tokens=\(v)") }
        if let v = expect.cacheWriteTokens { parts.append("cache_write_tokens=\(v)") }
        parts.append("usage=\(expect.status)")
        return parts.joined(separator: " ")
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        let digest = SHA256Stream()
        digest.update(bytes)
        return digest.finalHex()
    }

    /// Each case is served as its provider sends it — JSON whole with a length, a stream chunked
    /// in pieces that cut events at odd places — and the line must give the corpus's counts.
    @Test(arguments: [
        ("openai-chat.json", nil as String?),
        ("openai-chat-stream-include-usage.sse", nil),
        ("anthropic-stream-cache.sse", nil),
        ("anthropic-message.json", "gzip"),
        ("responses-stream.sse", nil),
    ])
    func theRequestLineShowsTheReportedUsage(_ file: String, _ encoding: String?) throws {
        let corpusCase = UsageCorpus[file]
        let f = try ProxyFixture()
        var body = corpusCase.bytes
        var headers = [("content-type", corpusCase.contentType ?? "application/json")]
        if encoding == "gzip" {
            body = CorpusEncoding.gzip.encode(corpusFile: body)
            headers.append(("content-encoding", "gzip"))
        }
        let pieces: [[UInt8]]
        if file.hasSuffix(".json") {
            headers.append(("content-length", String(body.count)))
            pieces = [body]
        } else {
            pieces = stride(from: 0, to: body.count, by: 97).map { Array(body[$0..<min($0 + 97, body.count)]) }
        }
        f.mock.serve("/v1/usage-case", .init(headers: headers, pieces: pieces))
        let response = try f.request("POST", "/openai/v1/usage-case", body: Array("{}".utf8))
        #expect(response.status == 200)
        #expect(Self.sha256(response.body) == Self.sha256(body), "the client gets the mock's bytes")
        let line = try #require(f.proxy.waitForLogLines(containing: "request_url=/openai/v1/usage-case", count: 1).first)
        #expect(line.hasSuffix(" " + Self.fields(corpusCase.expect)), "\(line)")
    }

    /// The same fields in the JSON log format, numbers as numbers.
    @Test func theJSONFormatCarriesTheUsageFields() throws {
        let f = try ProxyFixture(environment: ["FLUXGATE_LOG_FORMAT": "json"])
        let corpusCase = UsageCorpus["openai-chat-cached-reasoning.json"]
        let body = corpusCase.bytes
        f.mock.serve(
            "/v1/usage-case",
            .init(headers: [("content-type", "application/json"), ("content-length", String(body.count))], pieces: [body]))
        #expect(try f.request("POST", "/openai/v1/usage-case", body: Array("{}".utf8)).status == 200)
        let line = try #require(f.proxy.waitForLogLines(containing: "/openai/v1/usage-case", count: 1).first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["model"] as? String == "o3-mini-2025-01-31")
        #expect(object["input_tokens"] as? Int == 2006)
        #expect(object["output_tokens"] as? Int == 1300)
        #expect(object["cache_read_tokens"] as? Int == 1920)
        #expect(object["cache_write_tokens"] as? Int == 0)
        #expect(object["usage"] as? String == "reported")
    }

    /// A client that leaves mid-stream: `usage=truncated`, output estimated from the content
    /// deltas it was sent (never 0 or 1).
    @Test func aClientLeavingMidStreamGivesTruncatedWithTheDeltasRelayed() throws {
        let f = try ProxyFixture()
        let chunk = { (word: String) in
            Array(
                "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-mock\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\(word)\"},\"finish_reason\":null}]}\n\n"
                    .utf8)
        }
        let pieces = (0..<12).map { chunk("w\($0)") }
        f.mock.serve("/v1/cut", .init(headers: [("content-type", "text/event-stream")], pieces: pieces, holdOpen: true))
        let connection = try f.connect()
        try connection.send(
            "POST /openai/v1/cut HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\nContent-Length: 2\r\n\r\n{}")
        let head = try connection.readHead()
        #expect(head.status == 200)
        var received: [UInt8] = []
        connection.setTimeout(2)
        _ = try? connection.readResponse(afterHead: head, method: "POST") { received += $0 }
        #expect(received == pieces.flatMap { $0 }, "every event was relayed before the client left")
        connection.close(reset: true)
        let line = try #require(f.proxy.waitForLogLines(containing: "request_url=/openai/v1/cut", count: 1).first)
        #expect(line.hasSuffix(" model=gpt-mock output_tokens=12 usage=truncated"), "\(line)")
    }

    /// `usage: off`: nothing is read, the line has no usage fields.
    @Test func usageOffReadsNothing() throws {
        let f = try ProxyFixture(upstreams: [.init(name: "openai", path: "/openai", extra: "usage: off")])
        #expect(try f.request("POST", "/openai/v1/chat/completions", body: Array("{}".utf8)).status == 200)
        let line = try #require(f.proxy.waitForLogLines(containing: "/openai/v1/chat/completions", count: 1).first)
        #expect(!line.contains("usage="))
        #expect(!line.contains("input_tokens="))
    }
}
