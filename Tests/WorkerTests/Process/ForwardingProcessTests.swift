import Foundation
import Testing
import TestSupport

/// docs/routing-and-forwarding.md "Headers" and "Bodies": what the upstream receives and what the
/// client gets back, byte for byte.
@Suite struct ForwardingProcessTests {
    @Test func requestHeadersAreCopiedInOrderWithoutHopByHopOnesOrClientCredentials() throws {
        let f = try ProxyFixture()
        let connection = try f.connect()
        let request = """
            POST /openai/v1/chat/completions?a=1 HTTP/1.1\r
            Host: proxy.example:8080\r
            X-First: 1\r
            Authorization: Bearer \(ProxyFixture.clientKey)\r
            Connection: keep-alive, X-Drop-Me\r
            X-Drop-Me: secret-hop\r
            Keep-Alive: timeout=5\r
            TE: trailers\r
            Trailer: X-T\r
            Proxy-Authorization: Basic abc\r
            X-API-Key: \(ProxyFixture.clientKey)\r
            X-Multi: one\r
            Content-Type: application/json\r
            X-Multi: two\r
            Content-Length: 2\r
            \r
            {}
            """
        try connection.send(request)
        let response = try connection.readResponse()
        #expect(response.status == 200)
        let received = try #require(f.mock.requests.last)
        #expect(received.method == "POST")
        #expect(received.uri == "/v1/chat/completions?a=1")
        let names = received.headers.map { $0.0.lowercased() }
        #expect(!names.contains("connection") || received.header("connection") == "keep-alive")
        for hop in ["x-drop-me", "keep-alive", "te", "trailer", "proxy-authorization", "x-api-key", "transfer-encoding"] {
            #expect(!names.contains(hop), "\(hop) was forwarded")
        }
        #expect(received.headers(named: "host") == ["127.0.0.1:\(f.mock.port)"])
        #expect(received.headers(named: "authorization") == ["Bearer \(ProxyFixture.providerKey)"])
        #expect(received.headers(named: "x-multi") == ["one", "two"])
        let endToEnd = received.headers.filter { ["x-first", "x-multi", "content-type", "content-length"].contains($0.0.lowercased()) }
        #expect(endToEnd.map { $0.0.lowercased() } == ["x-first", "x-multi", "content-type", "x-multi", "content-length"])
        #expect(received.bodyLength == 2)
    }

    @Test func responseStatusHeadersAndRepeatedSetCookieAreRelayed() throws {
        let f = try ProxyFixture()
        let response = try f.request("GET", "/openai/anything")
        #expect(response.status == 200)
        #expect(response.headers(named: "set-cookie") == ["a=1; Path=/", "b=2; Path=/"])
        #expect(response.header("x-upstream") == "mock")
        #expect(response.bodyText == "{\"ok\":true}")
    }

    @Test func compressedBodiesAndRedirectsPassThroughUntouched() throws {
        let f = try ProxyFixture()
        let gzip = try f.request("GET", "/openai/gzip", headers: [f.bearer, ("Accept-Encoding", "gzip")])
        #expect(gzip.status == 200)
        #expect(gzip.header("content-encoding") == "gzip")
        #expect(gzip.body == TestSupport.MockUpstream.gzipBody)
        let redirect = try f.request("GET", "/openai/redirect")
        #expect(redirect.status == 302)
        #expect(redirect.header("location") == "/elsewhere")
    }

    @Test func upstreamErrorStatusesAreRelayedAsTheyAre() throws {
        let f = try ProxyFixture()
        for code in [400, 429, 500, 503] {
            let response = try f.request("GET", "/openai/status/\(code)")
            #expect(response.status == code)
            #expect(response.bodyText == "{\"status\":\(code)}")
        }
    }

    @Test func keepAliveAndPipelinedRequestsAreAnsweredInOrderOnOneConnection() throws {
        let f = try ProxyFixture()
        let connection = try f.connect()
        var batch = ""
        for code in [201, 202, 203] {
            batch += "GET /openai/status/\(code) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n\r\n"
        }
        try connection.send(batch)
        #expect(try [connection.readResponse(), connection.readResponse(), connection.readResponse()].map(\.status) == [201, 202, 203])
        #expect(try connection.request("GET", "/openai/status/204", headers: [f.bearer]).status == 204)
    }

    @Test func expect100ContinueIsAnsweredByTheProxyAndNotForwarded() throws {
        let f = try ProxyFixture()
        let connection = try f.connect()
        let body = Array(repeating: UInt8(ascii: "x"), count: 4096)
        try connection.send(
            "POST /openai/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n"
                + "Expect: 100-continue\r\nContent-Length: \(body.count)\r\n\r\n")
        connection.setTimeout(2)  // curl would give up waiting after 1 s and send anyway
        let interim = try connection.readHead()
        #expect(interim.status == 100)
        try connection.send(body)
        let response = try connection.readResponse()
        #expect(response.status == 200)
        #expect(response.bodyText.contains("\"length\":4096"))
        #expect(f.mock.requests.last?.header("expect") == nil)
    }

    @Test func upstreamConnectionsAreReusedAcrossRequests() throws {
        let f = try ProxyFixture()
        for _ in 0..<5 { #expect(try f.request("GET", "/openai/x").status == 200) }
        #expect(f.mock.connectionsOpened == 1)
    }

    @Test func aPooledConnectionTheUpstreamClosedIsNeverAClientError() throws {
        let f = try ProxyFixture()
        for _ in 0..<5 {
            #expect(try f.request("GET", "/openai/close-after?ms=5").status == 200)
            // The mock closes its side 5 ms after answering; wait until it has, so the proxy's
            // pooled connection is stale when the next request picks it up.
            #expect(f.mock.wait { $0.connectionsClosed == $0.connectionsOpened })
        }
        #expect(f.mock.requests.count == 5)
    }

    @Test func unreachableUpstreamIs502WithAMessage() throws {
        let f = try ProxyFixture(upstreams: [.init(name: "gone", path: "/gone", target: "http://127.0.0.1:1")])
        let response = try f.request("GET", "/gone/x")
        #expect(response.status == 502)
        #expect(response.openAIError != nil)
    }

    @Test func unreachableHTTPSUpstreamIs502Unreachable() throws {
        // TLS itself is tested in TLSUpstreamProcessTests; a refused connect is not a TLS error.
        let f = try ProxyFixture(upstreams: [.init(name: "tls", path: "/tls", target: "https://127.0.0.1:1")])
        let response = try f.request("GET", "/tls/x")
        #expect(response.status == 502)
        #expect(response.openAIError?["code"] as? String == "upstream_unreachable")
    }

    @Test func openProxyWithoutUpstreamsIs503() throws {
        let f = try ProxyFixture(upstreams: [], auth: "")
        let response = try f.request("GET", "/anything")
        #expect(response.status == 503)
        #expect(response.openAIError != nil)
    }
}
