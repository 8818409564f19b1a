import Common
import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import FluxgateWorker

/// In-process: a real worker on 127.0.0.1:0 in front of a NIO mock upstream, spoken to with raw
/// bytes so every header and framing byte is visible.
@Suite(.serialized) struct EndToEndTests {
    @Test func forwardsWithHeaderFidelityAndLogsOneLine() async throws {
        let proxy = try await ProxyHarness.start()
        let client = try await proxy.client()
        try await client.send(
            "GET /api/v1/models?x=1 HTTP/1.1\r\nHost: proxy.local\r\nAuthorization: Bearer client\r\n"
                + "X-Multi: 1\r\nConnection: X-Drop\r\nX-Drop: d\r\nX-Multi: 2\r\n\r\n")
        let text = await client.waitForResponses(1)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.contains("set-cookie: a=1\r\n") && text.contains("set-cookie: b=2\r\n"))
        #expect(text.hasSuffix("GET /base/v1/models?x=1 body="))
        let seen = try #require(proxy.upstream.requests.first)
        #expect(seen.head.headers["host"] == ["127.0.0.1:\(proxy.upstream.port)"])
        #expect(seen.head.headers["authorization"] == ["Bearer sk-provider"])
        #expect(seen.head.headers["x-multi"] == ["1", "2"])
        #expect(seen.head.headers["x-drop"].isEmpty)
        let lines = proxy.log.requestLines
        #expect(lines.count == 1)
        #expect(lines.first?["status"]?.description == "200")
        #expect(lines.first?["upstream"] == "mock")
        #expect(lines.first?["request_url"]?.description == "/api/v1/models?x=1")
        await client.close()
        await proxy.stop()
    }

    @Test func missingKeyGets401WithJSONBody() async throws {
        let proxy = try await ProxyHarness.start(staticKeys: [.init(id: "alice", key: Secret("sk-alice"))])
        let client = try await proxy.client()
        try await client.send("GET /api/x HTTP/1.1\r\nHost: p\r\n\r\n")
        let text = await client.waitForResponses(1)
        #expect(text.hasPrefix("HTTP/1.1 401 Unauthorized\r\n"))
        #expect(text.contains("content-type: application/json\r\n"))
        let body = ProxyErrorResponse.unauthorized.jsonBody
        #expect(text.contains("content-length: \(body.utf8.count)\r\n"))
        #expect(text.hasSuffix(body))
        #expect(proxy.upstream.requests.isEmpty)
        // The same connection still works with the key.
        try await client.send("GET /api/x HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer sk-alice\r\n\r\n")
        let both = await client.waitForResponses(2)
        #expect(both.contains("HTTP/1.1 200 OK"))
        #expect(proxy.log.requestLines.last?["api_key"] == "alice")
        // A key of the same length that differs in its last byte is not the cached one; nor is
        // the right key sent as X-Api-Key beside a wrong Authorization.
        try await client.send("GET /api/x HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer sk-alicf\r\n\r\n")
        let three = await client.waitForResponses(3)
        #expect(three.components(separatedBy: "HTTP/1.1 401 Unauthorized\r\n").count == 3)
        try await client.send("GET /api/x HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer sk-alicf\r\nX-Api-Key: sk-alice\r\n\r\n")
        let four = await client.waitForResponses(4)
        #expect(four.components(separatedBy: "HTTP/1.1 401 Unauthorized\r\n").count == 4)
        #expect(proxy.upstream.requests.count == 1)
        await client.close()
        await proxy.stop()
    }

    /// A keep-alive connection reuses its last authentication for identical credentials, but
    /// only under the configuration that made it: a key removed by a reload stops working on the
    /// connection that was using it, at its very next request.
    @Test func revokedKeyIsRefusedOnTheConnectionThatUsedIt() async throws {
        let proxy = try await ProxyHarness.start(staticKeys: [.init(id: "alice", key: Secret("sk-alice"))])
        let client = try await proxy.client()
        let request = "GET /api/x HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer sk-alice\r\n\r\n"
        try await client.send(request)
        try await client.send(request)
        let two = await client.waitForResponses(2)
        #expect(two.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 2)

        var revoked = proxy.configuration
        revoked.apiKeys = Configuration.APIKeys(staticKeys: [.init(id: "bob", key: Secret("sk-bob"))], jwt: [])
        _ = try proxy.server.apply(revoked)
        // The reload has reached the worker once bob's key works (on another connection).
        var applied = false
        for _ in 0..<100 where !applied {
            let probe = try await proxy.client()
            try await probe.send("GET /api/x HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer sk-bob\r\n\r\n")
            let text = await probe.waitForResponses(1)
            applied = text.hasPrefix("HTTP/1.1 200 OK")
            await probe.close()
            if !applied { try await Task.sleep(nanoseconds: 10_000_000) }
        }
        #expect(applied)

        try await client.send(request)
        let three = await client.waitForResponses(3)
        #expect(three.components(separatedBy: "HTTP/1.1 ").last?.hasPrefix("401 Unauthorized") == true)
        #expect(proxy.upstream.requests.count == 3)  // alice twice, bob once
        await client.close()
        await proxy.stop()
    }

    @Test func unknownRouteGets404AndDotSegments400() async throws {
        let proxy = try await ProxyHarness.start()
        let client = try await proxy.client()
        try await client.send("GET /apix HTTP/1.1\r\nHost: p\r\n\r\nGET /api/../x HTTP/1.1\r\nHost: p\r\n\r\n")
        let text = await client.waitForResponses(2)
        #expect(text.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(text.contains("HTTP/1.1 400 Bad Request\r\n"))
        await client.close()
        await proxy.stop()
    }

    @Test func protocolRejections() async throws {
        let proxy = try await ProxyHarness.start()
        for (request, status) in [
            ("GET /api/x HTTP/1.0\r\nHost: p\r\n\r\n", "505"),
            ("GET /api/x HTTP/1.1\r\nHost: p\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", "501"),
            ("GET /api/x HTTP/1.1\r\n\r\n", "400"),
            ("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "501"),
            ("GET /api/x HTTP/1.1\r\nHost: p\r\nConnection: upgrade\r\n\r\n", "501"),
            ("GET /api/x HTTP/1.1\r\nHost: p\r\nBad Header\r\n\r\n", "400"),
        ] {
            let client = try await proxy.client()
            try await client.send(request)
            let text = await client.waitForResponses(1)
            #expect(text.hasPrefix("HTTP/1.1 \(status) "), "\(request)")
            await client.close()
        }
        #expect(proxy.upstream.requests.isEmpty)
        await proxy.stop()
    }

    @Test func oversizedHeadsGet414And431() async throws {
        var limits = WorkerLimits()
        limits.maxRequestTargetBytes = 64
        limits.maxHeaderCount = 5
        let proxy = try await ProxyHarness.start(limits: limits)
        let client = try await proxy.client()
        try await client.send("GET /api/" + String(repeating: "a", count: 100) + " HTTP/1.1\r\nHost: p\r\n\r\n")
        #expect(await client.waitForResponses(1).hasPrefix("HTTP/1.1 414 "))
        let client2 = try await proxy.client()
        try await client2.send("GET /api/x HTTP/1.1\r\nHost: p\r\n" + (0..<8).map { "X-\($0): v\r\n" }.joined() + "\r\n")
        #expect(await client2.waitForResponses(1).hasPrefix("HTTP/1.1 431 "))
        await client.close()
        await client2.close()
        await proxy.stop()
    }

    @Test func bodiesAreForwardedWithTheirFraming() async throws {
        let proxy = try await ProxyHarness.start()
        let client = try await proxy.client()
        try await client.send("POST /api/a HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n\r\nhello")
        _ = await client.waitForResponses(1)
        try await client.send("POST /api/b HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        let text = await client.waitForResponses(2)
        #expect(text.contains("POST /base/a body=hello"))
        #expect(text.contains("POST /base/b body=abcde"))
        let seen = proxy.upstream.requests
        #expect(seen.count == 2)
        #expect(seen.first?.head.headers["content-length"] == ["5"])
        #expect(seen.last?.head.headers["transfer-encoding"] == ["chunked"])
        // Both went over one pooled upstream connection.
        #expect(proxy.upstream.connections == 1)
        await client.close()
        await proxy.stop()
    }

    @Test func headResponseKeepsContentLengthWithoutBody() async throws {
        let proxy = try await ProxyHarness.start()
        let client = try await proxy.client()
        try await client.send("HEAD /api/a HTTP/1.1\r\nHost: p\r\n\r\nGET /api/b HTTP/1.1\r\nHost: p\r\n\r\n")
        let text = await client.wait { $0.contains("GET /base/b body=") }
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.contains("content-length: 999\r\n"))
        #expect(text.components(separatedBy: "HTTP/1.1 200").count == 3)
        await client.close()
        await proxy.stop()
    }

    @Test func streamedChunksArriveAsTheyAreSent() async throws {
        let proxy = try await ProxyHarness.start(behaviour: .stream(chunks: ["data: one\n\n", "data: two\n\n"], gapMs: 300))
        let client = try await proxy.client()
        try await client.send("POST /api/chat HTTP/1.1\r\nHost: p\r\nContent-Length: 2\r\n\r\n{}")
        let text = await client.wait { $0.hasSuffix("0\r\n\r\n") }
        #expect(text.contains("transfer-encoding: chunked"))
        let one = try #require(client.arrival(of: "data: one"))
        let two = try #require(client.arrival(of: "data: two"))
        #expect(two - one >= .milliseconds(200))
        await client.close()
        await proxy.stop()
    }

    @Test func unreachableUpstreamGets502AndSilentOne504() async throws {
        let proxy = try await ProxyHarness.start(
            behaviour: .silent, requestTimeoutMs: 300,
            extraUpstreams: [
                Fixtures.upstream("down", "/down", Fixtures.url(.http, "127.0.0.1", port: 1)),
                Fixtures.upstream("tls", "/tls", Fixtures.url(.https, "127.0.0.1", port: 1)),
            ])
        let client = try await proxy.client()
        try await client.send("GET /down/x HTTP/1.1\r\nHost: p\r\n\r\n")
        #expect(await client.waitForResponses(1).hasPrefix("HTTP/1.1 502 "))
        try await client.send("GET /tls/x HTTP/1.1\r\nHost: p\r\n\r\n")
        #expect(await client.waitForResponses(2).contains("upstream_unreachable"))
        try await client.send("GET /api/x HTTP/1.1\r\nHost: p\r\n\r\n")
        let text = await client.waitForResponses(3)
        #expect(text.contains("HTTP/1.1 504 Gateway Timeout\r\n"))
        await client.close()
        await proxy.stop()
    }

    @Test func connectionClosedByUpstreamWhileIdleIsNotAClientError() async throws {
        let proxy = try await ProxyHarness.start(behaviour: .echoThenCloseAfter(ms: 50))
        let client = try await proxy.client()
        try await client.send("GET /api/1 HTTP/1.1\r\nHost: p\r\n\r\n")
        _ = await client.waitForResponses(1)
        try await Task.sleep(nanoseconds: 200_000_000)
        // A POST is not replayed on another connection: handed the closed one, it would fail.
        try await client.send("POST /api/2 HTTP/1.1\r\nHost: p\r\nContent-Length: 1\r\n\r\nx")
        let text = await client.waitForResponses(2)
        #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count == 3)
        #expect(text.hasSuffix("POST /base/2 body=x"))
        #expect(proxy.upstream.connections == 2)
        await client.close()
        await proxy.stop()
    }

    @Test func fullProxyAnswers503AtOnce() async throws {
        let proxy = try await ProxyHarness.start(behaviour: .silent, requestTimeoutMs: 1_000, maxConnections: 1)
        let first = try await proxy.client()
        try await first.send("GET /api/slow HTTP/1.1\r\nHost: p\r\n\r\n")
        try await Task.sleep(nanoseconds: 100_000_000)
        let second = try await proxy.client()
        try await second.send("GET /api/x HTTP/1.1\r\nHost: p\r\n\r\n")
        #expect(await second.waitForResponses(1, timeoutMs: 500).hasPrefix("HTTP/1.1 503 "))
        // After the first request ends (504), a permit is free again.
        #expect(await first.waitForResponses(1).hasPrefix("HTTP/1.1 504 "))
        try await second.send("GET /api/y HTTP/1.1\r\nHost: p\r\n\r\n")
        #expect(await second.waitForResponses(2).contains("504"))
        await first.close()
        await second.close()
        await proxy.stop()
    }

    @Test func clientDisconnectCancelsTheUpstreamExchange() async throws {
        let proxy = try await ProxyHarness.start(behaviour: .silent)
        let client = try await proxy.client()
        try await client.send("GET /api/slow HTTP/1.1\r\nHost: p\r\n\r\n")
        try await Task.sleep(nanoseconds: 100_000_000)
        await client.close()
        try await Task.sleep(nanoseconds: 100_000_000)
        #expect(proxy.log.requestLines.last?["status"]?.description == "499")
        await proxy.stop()
    }
}
