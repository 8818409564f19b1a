import Foundation
import Testing
import TestSupport

/// docs/routing-and-forwarding.md "Model routing" with raw requests: what the upstream receives
/// byte for byte (checksums), bodies of every size and framing, and the answers of the proxy.
@Suite(.serialized) struct ModelRoutingRawProcessTests {
    static let keyB = "client-key-team-b-0123456789abcdef"

    static let tail = """
        models:
          gpt-4o:
            upstream: openai
          claude-sonnet:
            upstream: openai
            model: claude-sonnet-4-5
          "ft:*":
            upstream: openai
        api_keys:
          static:
            - id: team-a
              key: "\(ProxyFixture.clientKey)"
            - id: team-b
              key: "\(keyB)"
              models: [gpt-4o]

        """

    static func fixture(
        _ upstreams: [ProxyFixture.Upstream] = [.init(name: "openai", path: "/openai")], observability: Int? = nil
    ) throws -> ProxyFixture {
        let listener = observability.map { "observability:\n  listen: \"127.0.0.1:\($0)\"\n" } ?? ""
        return try ProxyFixture(upstreams: upstreams, auth: listener + tail)
    }

    /// `fluxgate_rejected_requests_total{reason="…"}` from the observability listener, once it
    /// reaches `expected` (the workers' counters are folded by the master), or its last value.
    static func rejected(_ reason: String, port: Int, expected: Double) throws -> Double? {
        var value: Double?
        for _ in 0..<200 {
            let text = try RawConnection(port: port, timeout: 10).request("GET", "/metrics").bodyText
            value = text.split(separator: "\n").first { $0.hasPrefix("fluxgate_rejected_requests_total{reason=\"\(reason)\"}") }
                .flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
            if value == expected { return value }
            usleep(50_000)
        }
        return value
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        let digest = SHA256Stream()
        digest.update(bytes)
        return digest.finalHex()
    }

    /// `{"messages":[{"role":"user","content":"xxx…"}],"stream":false,"model":<literal>}` with
    /// `padding` bytes of content.
    static func body(padding: Int, modelLiteral: String) -> [UInt8] {
        Array(#"{"messages":[{"role":"user","content":""#.utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: padding)
            + Array(#""}],"stream":false,"model":\#(modelLiteral)}"#.utf8)
    }

    static func replacing(_ old: String, with new: String, in bytes: [UInt8]) -> [UInt8] {
        let text = String(decoding: bytes, as: UTF8.self)
        let range = text.range(of: old, options: .backwards)!
        return Array(text.replacingCharacters(in: range, with: new).utf8)
    }

    @Test func aModelLastInA900KiBBodyIsRoutedAndRenamedWithEveryOtherByteUnchanged() throws {
        let f = try Self.fixture()
        let body = Self.body(padding: 900 * 1024, modelLiteral: #""claude-sonnet""#)
        let response = try f.request("POST", "/v1/chat/completions", headers: [f.bearer, ("Content-Type", "application/json")], body: body)
        #expect(response.status == 200)
        let expected = Self.replacing(#""claude-sonnet""#, with: #""claude-sonnet-4-5""#, in: body)
        let seen = try #require(f.mock.requests.last)
        #expect(seen.uri == "/v1/chat/completions")
        #expect(seen.bodyLength == expected.count && seen.bodySHA256 == Self.sha256(expected))
        #expect(seen.header("content-length") == String(expected.count))
        #expect(seen.header("authorization") == "Bearer \(ProxyFixture.providerKey)")
    }

    @Test func escapedNamesAreMatchedDecodedAndTheLiteralIsWhatIsReplaced() throws {
        let f = try Self.fixture()
        // `gpt-\u0034o` is gpt-4o, not renamed: the body goes as it came.
        let plain = Self.body(padding: 10, modelLiteral: #""gpt-\u0034o""#)
        #expect(try f.request("POST", "/v1/chat/completions", body: plain).status == 200)
        #expect(f.mock.requests.last?.bodySHA256 == Self.sha256(plain))
        // `claude\u002dsonnet` is renamed: its whole literal, escape included, is replaced.
        let renamed = Self.body(padding: 10, modelLiteral: #""claude\u002dsonnet""#)
        #expect(try f.request("POST", "/v1/embeddings", body: renamed).status == 200)
        let expected = Self.replacing(#""claude\u002dsonnet""#, with: #""claude-sonnet-4-5""#, in: renamed)
        #expect(f.mock.requests.last?.bodySHA256 == Self.sha256(expected))
        #expect(f.mock.requests.last?.uri == "/v1/embeddings")
        // A quote and a backslash in a name a pattern matches.
        let odd = Self.body(padding: 10, modelLiteral: #""ft:a\"b\\c""#)
        #expect(try f.request("POST", "/v1/responses", body: odd).status == 200)
        #expect(f.mock.requests.last?.bodySHA256 == Self.sha256(odd))
        #expect(f.mock.requests.count == 3)
    }

    @Test func aModelOnlyInANestedObjectOrNoObjectAtAllIs400() throws {
        let f = try Self.fixture()
        for body in [#"{"metadata":{"model":"gpt-4o"},"messages":[]}"#, #"["gpt-4o"]"#, #"{"model":4}"#, "", #"{"model":"gpt"#] {
            let response = try f.request("POST", "/v1/chat/completions", body: Array(body.utf8))
            #expect(response.status == 400, "\(body)")
            #expect(response.openAIError?["code"] as? String == "invalid_model")
            #expect(response.openAIError?["type"] as? String == "invalid_request_error")
        }
        #expect(f.mock.requests.isEmpty)
    }

    @Test func aModelTheKeyMayNotUseGetsTheSameAnswerAsAnUnknownOne() throws {
        let metricsPort = try TestPorts.closedPort()
        let f = try Self.fixture(observability: metricsPort)
        let notAllowed = try f.request(
            "POST", "/v1/chat/completions", headers: [("Authorization", "Bearer \(Self.keyB)")],
            body: Self.body(padding: 1, modelLiteral: #""claude-sonnet""#))
        let unknown = try f.request("POST", "/v1/chat/completions", body: Self.body(padding: 1, modelLiteral: #""nope""#))
        #expect(notAllowed.status == 404 && notAllowed.openAIError?["code"] as? String == "model_not_found")
        #expect(notAllowed.status == unknown.status && notAllowed.body == unknown.body)
        #expect(notAllowed.headers.map(\.0) == unknown.headers.map(\.0) && notAllowed.headers.map(\.1) == unknown.headers.map(\.1))
        // What the key may use goes through.
        let allowed = try f.request(
            "POST", "/v1/chat/completions", headers: [("Authorization", "Bearer \(Self.keyB)")],
            body: Self.body(padding: 1, modelLiteral: #""gpt-4o""#))
        #expect(allowed.status == 200)
        #expect(f.mock.requests.count == 1)
        // Both 404s count as unknown_model, not as no_route.
        #expect(try Self.rejected("unknown_model", port: metricsPort, expected: 2) == 2)
        #expect(try Self.rejected("no_route", port: metricsPort, expected: 0) == 0)
    }

    /// The body arrives as two chunks cut at every byte around the `model` member, which lies
    /// where the proxy's first look at the body (16 KiB) ends: it asks again and splices right.
    @Test func aChunkedBodyCutAtEveryByteAroundTheModelIsRoutedTheSame() throws {
        let f = try Self.fixture()
        let body = Self.body(padding: 16 * 1024 - 60, modelLiteral: #""claude-sonnet""#)
        let text = String(decoding: body, as: UTF8.self)
        let member = text.utf8.distance(from: text.startIndex, to: text.range(of: #""model""#)!.lowerBound)
        let expectedSHA = Self.sha256(Self.replacing(#""claude-sonnet""#, with: #""claude-sonnet-4-5""#, in: body))
        let connection = try f.connect()
        let cuts = Array((member - 4)...(body.count - 1))
        for cut in cuts {
            var wire = Array("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n".utf8)
            wire += Array("Transfer-Encoding: chunked\r\n\r\n".utf8)
            for piece in [body[..<cut], body[cut...]] {
                wire += Array((String(piece.count, radix: 16) + "\r\n").utf8) + piece + Array("\r\n".utf8)
            }
            wire += Array("0\r\n\r\n".utf8)
            // The head and first chunk, then the rest, as two writes.
            let split = wire.count - (body.count - cut) - 12
            try connection.send(Array(wire[..<split]))
            try connection.send(Array(wire[split...]))
            let response = try connection.readResponse(method: "POST")
            #expect(response.status == 200, "cut at \(cut)")
        }
        let seen = f.mock.requests
        #expect(seen.count == cuts.count)
        #expect(seen.allSatisfy { $0.bodySHA256 == expectedSHA && $0.header("transfer-encoding") == "chunked" })
    }

    /// A `Content-Length` body that came whole with its head is read where it lies (no wait for
    /// its parts); cut anywhere, or behind another request in the same write, it is read as
    /// parts: the upstream gets the same renamed bytes and length every way.
    @Test func aBodyWholeWithItsHeadOrCutAtEveryByteGoesUpTheSame() throws {
        let f = try Self.fixture()
        let body = Self.body(padding: 40, modelLiteral: #""claude-sonnet""#)
        let renamed = Self.replacing(#""claude-sonnet""#, with: #""claude-sonnet-4-5""#, in: body)
        let head = Array(
            ("POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n"
                + "Content-Length: \(body.count)\r\n\r\n").utf8)
        let connection = try f.connect()
        try connection.send(head + body)
        #expect(try connection.readResponse(method: "POST").status == 200)
        for cut in 0..<body.count {
            try connection.send(head + body[..<cut])
            try connection.send(Array(body[cut...]))
            #expect(try connection.readResponse(method: "POST").status == 200, "cut at \(cut)")
        }
        try connection.send(head + body + head + body)
        #expect(try connection.readResponse(method: "POST").status == 200)
        #expect(try connection.readResponse(method: "POST").status == 200)
        let seen = f.mock.requests
        #expect(seen.count == body.count + 3)
        #expect(
            seen.allSatisfy {
                $0.bodySHA256 == Self.sha256(renamed) && $0.header("content-length") == String(renamed.count)
            })
    }

    @Test func aModelBeyondTheFirstMiBIs413AndExpectContinueIsAnsweredFirst() throws {
        let f = try Self.fixture()
        let far = Self.body(padding: 1024 * 1024 + 10, modelLiteral: #""gpt-4o""#)
        let response = try f.request("POST", "/v1/chat/completions", body: far)
        #expect(response.status == 413 && response.openAIError?["code"] as? String == "model_beyond_limit")
        #expect(f.mock.requests.isEmpty)
        // `Expect: 100-continue`: the proxy says so before it reads the body it needs.
        let connection = try f.connect()
        let body = Self.body(padding: 100, modelLiteral: #""gpt-4o""#)
        try connection.send(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n"
                + "Expect: 100-continue\r\nContent-Length: \(body.count)\r\n\r\n")
        let interim = try connection.readHead()
        #expect(interim.status == 100)
        try connection.send(body)
        #expect(try connection.readResponse(method: "POST").status == 200)
        #expect(f.mock.requests.last?.bodySHA256 == Self.sha256(body))
        #expect(f.mock.requests.last?.header("expect") == nil)
    }

    @Test func theModelListIsPerKeyInOpenAIsOrAnthropicsFormat() throws {
        let f = try Self.fixture()
        let openAI = try f.request("GET", "/v1/models")
        #expect(openAI.status == 200 && openAI.header("content-type") == "application/json")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(openAI.body)) as? [String: Any])
        #expect(list["object"] as? String == "list")
        let data = try #require(list["data"] as? [[String: Any]])
        #expect(data.map { $0["id"] as? String } == ["gpt-4o", "claude-sonnet"])
        #expect(data.allSatisfy { $0["owned_by"] as? String == "openai" && $0["object"] as? String == "model" })
        let teamB = try f.request(
            "GET", "/v1/models", headers: [("Authorization", "Bearer \(Self.keyB)"), ("anthropic-version", "2023-06-01")])
        let anthropic = try #require(try JSONSerialization.jsonObject(with: Data(teamB.body)) as? [String: Any])
        #expect((anthropic["data"] as? [[String: Any]])?.map { $0["id"] as? String } == ["gpt-4o"])
        #expect(anthropic["has_more"] as? Bool == false)
        #expect(try f.request("GET", "/v1/models", headers: [("Authorization", "Bearer wrong")]).status == 401)
        #expect(f.mock.requests.isEmpty)
    }

    @Test func aPrefixRouteThatCoversV1Wins() throws {
        let f = try Self.fixture([.init(name: "openai", path: "/openai"), .init(name: "root", path: "/v1", target: "/rootbase")])
        let response = try f.request("POST", "/v1/chat/completions", body: Self.body(padding: 1, modelLiteral: #""claude-sonnet""#))
        #expect(response.status == 200)
        #expect(try f.request("GET", "/v1/models").status == 200)
        // Both went by prefix, untouched: no rename, and the upstream's own model list.
        #expect(f.mock.requests.map(\.uri) == ["/rootbase/chat/completions", "/rootbase/models"])
        #expect(f.mock.requests.first?.bodySHA256 == Self.sha256(Self.body(padding: 1, modelLiteral: #""claude-sonnet""#)))
        let line = f.proxy.waitForLogLines(containing: "upstream=root", count: 1).first ?? ""
        // Not routed by model: the line's model is the response's (the mock's), not the client's.
        #expect(line.contains("model=gpt-mock") && !line.contains("model=claude-sonnet"))
    }
}
