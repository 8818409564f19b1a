import Common
import NIOCore
import NIOHTTP1
import Testing
@testable import FluxgateWorker

@Suite struct ForwardingHeaderTests {
    let upstream = Fixtures.upstream("openai", "/openai", Fixtures.url(.https, "api.openai.com"), key: "sk-provider")

    func pairs(_ headers: HTTPHeaders) -> [String] { headers.map { "\($0.name): \($0.value)" } }

    /// The head the request parser reads from a request with these headers.
    static func parsed(_ headers: HTTPHeaders, target: String = "/") -> RequestHead {
        var parser = RequestParser(limits: WorkerLimits().parser)
        parser.append(ByteBuffer(string: "POST \(target) HTTP/1.1\r\n" + headers.map { "\($0.name): \($0.value)\r\n" }.joined() + "\r\n"))
        guard case .head(let head) = parser.next() else { fatalError("not a request head: \(headers)") }
        return head
    }

    /// `head` routed by a router that has `upstream` alone.
    static func match(_ head: RequestHead, _ upstream: Configuration.Upstream) -> Router.Match {
        guard case .matched(let match) = Router(upstreams: [upstream]).route(head, permitted: .all(count: 1)) else {
            fatalError("\(head.uri) does not route to \(upstream.name)")
        }
        return match
    }

    /// The headers of the upstream request head the relay writes (`writeUpstreamRequestHead`),
    /// read back from its bytes.
    func upstreamRequestHeaders(from client: HTTPHeaders, upstream: Configuration.Upstream) -> HTTPHeaders {
        var bytes = ByteBuffer()
        let head = Self.parsed(client, target: upstream.requestPath)
        let match = Self.match(head, upstream)
        ForwardingHeaders.writeUpstreamRequestHead(
            method: .POST, match: match, target: match.route.target, client: head, framing: head.facts.framing, into: &bytes)
        let lines = String(buffer: bytes).components(separatedBy: "\r\n").dropFirst().filter { !$0.isEmpty }
        return HTTPHeaders(
            lines.map { line in
                let colon = line.firstIndex(of: ":")!
                return (String(line[..<colon]), String(line[line.index(colon, offsetBy: 2)...]))
            })
    }

    @Test func credentialsHostAndHopByHopAreRemovedOrderAndRepeatsKept() {
        let client: HTTPHeaders = [
            "Host": "proxy.local", "Authorization": "Bearer client", "x-api-key": "client2", "Accept": "a",
            "X-Multi": "1", "Connection": "keep-alive, X-Drop", "Keep-Alive": "timeout=5", "X-Drop": "secret",
            "TE": "trailers", "Trailer": "x", "Proxy-Authorization": "p", "X-Multi": "2", "Content-Length": "3",
        ]
        let out = upstreamRequestHeaders(from: client, upstream: upstream)
        #expect(
            pairs(out) == [
                "host: api.openai.com", "Accept: a", "X-Multi: 1", "X-Multi: 2", "Content-Length: 3",
                "authorization: Bearer sk-provider",
            ])
    }

    /// The upstream head for a client head given as raw bytes (its fields as they were sent).
    func upstreamHead(fromRaw fields: String) -> String {
        var parser = RequestParser(limits: WorkerLimits().parser)
        parser.append(ByteBuffer(string: "POST /openai/x HTTP/1.1\r\nHost: proxy.local\r\n" + fields + "\r\n"))
        guard case .head(let head) = parser.next() else { fatalError("not a request head: \(fields)") }
        let match = Self.match(head, upstream)
        var bytes = ByteBuffer()
        ForwardingHeaders.writeUpstreamRequestHead(
            method: .POST, match: match, target: match.route.target, client: head, framing: head.facts.framing, into: &bytes)
        return String(buffer: bytes)
    }

    /// Every forwarded field goes up as `name: value` CRLF, whatever whitespace it arrived with.
    @Test func forwardedFieldsAreWrittenNameColonSpaceValue() {
        let head = upstreamHead(fromRaw: "A:1\r\nB:  2 \t\r\nC: 3\r\nD: 4\r\nE:\t5\r\n")
        #expect(
            head == "POST /x HTTP/1.1\r\nhost: api.openai.com\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n"
                + "authorization: Bearer sk-provider\r\n\r\n")
    }

    /// As many fields as the parser accepts, each sent without the space after its colon (one byte
    /// longer upstream): the head is written whole, never past its buffer's bound.
    @Test func theMostFieldsWithoutSpacesFitTheHeadsBound() {
        let count = WorkerLimits().parser.maxHeaderCount - 1
        let head = upstreamHead(fromRaw: (0..<count).map { "x\($0):y\r\n" }.joined())
        #expect(head.components(separatedBy: ": y\r\n").count == count + 1)
        #expect(head.hasSuffix("x\(count - 1): y\r\nauthorization: Bearer sk-provider\r\n\r\n"))
    }

    @Test func headerClassifiersMatchTheirSets() {
        let names =
            Array(ForwardingHeaders.hopByHop) + Array(ForwardingHeaders.clientOnly)
            + ["content-length", "content-type", "accept", "x-api", "t", "tes", "hostx", ""]
        for name in names {
            #expect(ForwardingHeaders.isHopByHop(name) == ForwardingHeaders.hopByHop.contains(name), "\(name)")
            #expect(ForwardingHeaders.isClientOnly(name) == ForwardingHeaders.clientOnly.contains(name), "\(name)")
        }
    }

    @Test func headersNamedInConnectionAreDroppedInAnyCase() {
        let client: HTTPHeaders = [
            "Connection": " Keep-Alive ,X-Drop,, te", "connection": "X-Other\t", "x-drop": "1",
            "X-OTHER": "2", "X-Kept": "3", "TE": "trailers",
        ]
        #expect(
            pairs(upstreamRequestHeaders(from: client, upstream: upstream))
                == ["host: api.openai.com", "X-Kept: 3", "authorization: Bearer sk-provider"])
    }

    @Test func providerKeyStyles() {
        var anthropic = upstream
        anthropic.apiKeyHeader = .xAPIKey
        #expect(upstreamRequestHeaders(from: [:], upstream: anthropic)["x-api-key"] == ["sk-provider"])
        var azure = upstream
        azure.apiKeyHeader = .apiKey
        #expect(upstreamRequestHeaders(from: [:], upstream: azure)["api-key"] == ["sk-provider"])
        var open = upstream
        open.apiKey = Secret("")
        let none = upstreamRequestHeaders(from: ["Authorization": "Bearer c"], upstream: open)
        #expect(pairs(none) == ["host: api.openai.com"])
    }

    @Test func clientXAPIKeyIsReplacedNotDuplicated() {
        var anthropic = upstream
        anthropic.apiKeyHeader = .xAPIKey
        let out = upstreamRequestHeaders(from: ["x-api-key": "client"], upstream: anthropic)
        #expect(out["x-api-key"] == ["sk-provider"])
    }

    @Test func clientAPIKeyIsReplacedForAzureStyleUpstreams() {
        var azure = upstream
        azure.apiKeyHeader = .apiKey
        let out = upstreamRequestHeaders(from: ["api-key": "client-secret"], upstream: azure)
        #expect(out["api-key"] == ["sk-provider"])
    }

    @Test func chunkedRequestStaysChunked() {
        let client: HTTPHeaders = ["Transfer-Encoding": "Chunked"]
        let out = upstreamRequestHeaders(from: client, upstream: upstream)
        #expect(out["transfer-encoding"] == ["chunked"])
    }

    /// The relay writes the request line, then the forwarded headers, then the empty line.
    @Test func theWireHeadIsTheRequestLineAndTheForwardedHeaders() {
        let client: HTTPHeaders = [
            "Host": "proxy.local", "Authorization": "Bearer client", "Accept": "a", "Connection": "X-Drop",
            "X-Drop": "1", "X-Multi": "1", "X-Multi": "2", "Transfer-Encoding": "chunked",
        ]
        var bytes = ByteBuffer()
        let head = Self.parsed(client, target: "/openai/v1/chat?x=1")
        let match = Self.match(head, upstream)
        ForwardingHeaders.writeUpstreamRequestHead(
            method: .POST, match: match, target: match.route.target, client: head, framing: .chunked, into: &bytes)
        #expect(
            String(buffer: bytes) == "POST /v1/chat?x=1 HTTP/1.1\r\nhost: api.openai.com\r\nAccept: a\r\n"
                + "X-Multi: 1\r\nX-Multi: 2\r\nauthorization: Bearer sk-provider\r\ntransfer-encoding: chunked\r\n\r\n")
    }
}
