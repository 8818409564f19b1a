import Common
import NIOCore
import NIOHTTP1
import Testing
@testable import FluxgateWorker

@Suite struct ForwardingHeaderTests {
    let upstream = Fixtures.upstream("openai", "/openai", Fixtures.url(.https, "api.openai.com"), key: "sk-provider")

    func pairs(_ headers: HTTPHeaders) -> [String] { headers.map { "\($0.name): \($0.value)" } }

    @Test func credentialsHostAndHopByHopAreRemovedOrderAndRepeatsKept() {
        let client: HTTPHeaders = [
            "Host": "proxy.local", "Authorization": "Bearer client", "x-api-key": "client2", "Accept": "a",
            "X-Multi": "1", "Connection": "keep-alive, X-Drop", "Keep-Alive": "timeout=5", "X-Drop": "secret",
            "TE": "trailers", "Trailer": "x", "Proxy-Authorization": "p", "X-Multi": "2", "Content-Length": "3",
        ]
        let out = ForwardingHeaders.upstreamRequestHeaders(from: client, upstream: upstream)
        #expect(pairs(out) == ["host: api.openai.com", "Accept: a", "X-Multi: 1", "X-Multi: 2", "Content-Length: 3",
                               "authorization: Bearer sk-provider"])
    }

    @Test func headerClassifiersMatchTheirSets() {
        let names = Array(ForwardingHeaders.hopByHop) + Array(ForwardingHeaders.clientOnly)
            + ["content-length", "content-type", "accept", "x-api", "t", "tes", "hostx", ""]
        for name in names {
            #expect(ForwardingHeaders.isHopByHop(name) == ForwardingHeaders.hopByHop.contains(name), "\(name)")
            #expect(ForwardingHeaders.isClientOnly(name) == ForwardingHeaders.clientOnly.contains(name), "\(name)")
        }
    }

    @Test func connectionTokensAreLowerCasedAndTrimmed() {
        let headers: HTTPHeaders = ["Connection": " Keep-Alive ,X-Drop,, te", "connection": "X-Other\t"]
        #expect(ForwardingHeaders.connectionTokens(headers) == ["keep-alive", "x-drop", "te", "x-other"])
        #expect(ForwardingHeaders.connectionTokens(headers, skippingHopByHop: true) == ["x-drop", "x-other"])
        #expect(ForwardingHeaders.connectionTokens(["Connection": "keep-alive"], skippingHopByHop: true).isEmpty)
    }

    @Test func providerKeyStyles() {
        var anthropic = upstream
        anthropic.apiKeyHeader = .xAPIKey
        #expect(ForwardingHeaders.upstreamRequestHeaders(from: [:], upstream: anthropic)["x-api-key"] == ["sk-provider"])
        var azure = upstream
        azure.apiKeyHeader = .apiKey
        #expect(ForwardingHeaders.upstreamRequestHeaders(from: [:], upstream: azure)["api-key"] == ["sk-provider"])
        var open = upstream
        open.apiKey = Secret("")
        let none = ForwardingHeaders.upstreamRequestHeaders(from: ["Authorization": "Bearer c"], upstream: open)
        #expect(pairs(none) == ["host: api.openai.com"])
    }

    @Test func clientXAPIKeyIsReplacedNotDuplicated() {
        var anthropic = upstream
        anthropic.apiKeyHeader = .xAPIKey
        let out = ForwardingHeaders.upstreamRequestHeaders(from: ["x-api-key": "client"], upstream: anthropic)
        #expect(out["x-api-key"] == ["sk-provider"])
    }

    @Test func clientAPIKeyIsReplacedForAzureStyleUpstreams() {
        var azure = upstream
        azure.apiKeyHeader = .apiKey
        let out = ForwardingHeaders.upstreamRequestHeaders(from: ["api-key": "client-secret"], upstream: azure)
        #expect(out["api-key"] == ["sk-provider"])
    }

    @Test func chunkedRequestStaysChunkedAndDropsLength() {
        let client: HTTPHeaders = ["Transfer-Encoding": "chunked", "Content-Length": "10"]
        #expect(ForwardingHeaders.requestFraming(client) == .chunked)
        let out = ForwardingHeaders.upstreamRequestHeaders(from: client, upstream: upstream)
        #expect(out["content-length"].isEmpty)
        #expect(out["transfer-encoding"] == ["chunked"])
        #expect(ForwardingHeaders.requestFraming([:]) == .none)
        #expect(ForwardingHeaders.requestFraming(["content-length": "0"]) == .contentLength)
    }

    /// The relay writes the head as bytes; it carries exactly `upstreamRequestHeaders`, in order.
    @Test func theWireHeadIsTheRequestLineAndTheForwardedHeaders() {
        let client: HTTPHeaders = [
            "Host": "proxy.local", "Authorization": "Bearer client", "Accept": "a", "Connection": "X-Drop",
            "X-Drop": "1", "X-Multi": "1", "X-Multi": "2", "Transfer-Encoding": "chunked", "Content-Length": "3",
        ]
        var bytes = ByteBuffer()
        ForwardingHeaders.writeUpstreamRequestHead(
            method: .POST, target: "/v1/chat?x=1", client: client, upstream: upstream, hostHeader: "api.openai.com",
            framing: ForwardingHeaders.requestFraming(client), into: &bytes)
        let expected = "POST /v1/chat?x=1 HTTP/1.1\r\n"
            + pairs(ForwardingHeaders.upstreamRequestHeaders(from: client, upstream: upstream)).map { $0 + "\r\n" }.joined()
            + "\r\n"
        #expect(String(buffer: bytes) == expected)
        #expect(expected.contains("transfer-encoding: chunked\r\n") && !expected.contains("Content-Length"))
    }
}
