import Foundation
import Testing
@testable import FluxgateWorker

/// The request parser is where request smuggling is stopped: a head or body framing that two
/// HTTP implementations could read differently is refused (400, connection closed, nothing sent
/// upstream), and the forms RFC 9112 allows are accepted and forwarded with the body intact.
/// In-process, raw bytes on a real socket.
@Suite(.serialized) struct RequestParsingTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: String
        var testDescription: String { name }
        init(_ name: String, _ bytes: String) {
            self.name = name
            self.bytes = bytes
        }
    }

    static let refused: [Case] = [
        Case("bare LF line ends", "GET /api/x HTTP/1.1\nHost: p\n\n"),
        Case("bare LF after a header", "GET /api/x HTTP/1.1\r\nHost: p\nX-A: 1\r\n\r\n"),
        Case("bare CR", "GET /api/x HTTP/1.1\r\nHost: p\rX-A: 1\r\n\r\n"),
        Case("obs-fold continuation line", "GET /api/x HTTP/1.1\r\nHost: p\r\nX-A: 1\r\n 2\r\n\r\n"),
        Case("whitespace before the first header", "GET /api/x HTTP/1.1\r\n Host: p\r\n\r\n"),
        Case("space before the colon", "GET /api/x HTTP/1.1\r\nHost : p\r\n\r\n"),
        Case("empty header name", "GET /api/x HTTP/1.1\r\nHost: p\r\n: v\r\n\r\n"),
        Case("separator in a header name", "GET /api/x HTTP/1.1\r\nHost: p\r\nX(A): 1\r\n\r\n"),
        Case("NUL in a header value", "GET /api/x HTTP/1.1\r\nHost: p\r\nX-A: a\u{0}b\r\n\r\n"),
        Case("control byte in a header value", "GET /api/x HTTP/1.1\r\nHost: p\r\nX-A: a\u{1b}b\r\n\r\n"),
        Case(
            "two different Content-Lengths",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
        Case(
            "the same Content-Length twice",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
        Case("a Content-Length list", "POST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: 3, 4\r\n\r\nabcd"),
        Case("a signed Content-Length", "POST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: +3\r\n\r\nabc"),
        Case("a negative Content-Length", "POST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: -1\r\n\r\n"),
        Case(
            "a Content-Length beyond 64 bits",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: 99999999999999999999999\r\n\r\nabc"),
        Case(
            "Content-Length with Transfer-Encoding",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        Case(
            "Transfer-Encoding with Content-Length",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"),
        Case(
            "Transfer-Encoding not ending in chunked",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: gzip\r\n\r\nabc"),
        Case(
            "chunked before another coding",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
        Case(
            "an unknown transfer coding",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
        Case(
            "a chunk size beyond 64 bits",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nabc\r\n0\r\n\r\n"),
        Case("a signed chunk size", "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n"),
        Case(
            "chunk data longer than its size",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n"),
        Case(
            "a chunk size line with a bare LF",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n"),
        Case("an empty chunk size", "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n"),
        Case("lower-case method", "get /api/x HTTP/1.1\r\nHost: p\r\n\r\n"),
        Case("two spaces in the request line", "GET  /api/x HTTP/1.1\r\nHost: p\r\n\r\n"),
        Case("no version (HTTP/0.9)", "GET /api/x\r\n\r\n"),
        Case("something after the version", "GET /api/x HTTP/1.1 x\r\nHost: p\r\n\r\n"),
        Case("a malformed version", "GET /api/x HTTP/1.x\r\nHost: p\r\n\r\n"),
        Case("a space in the target", "GET /api/x y HTTP/1.1\r\nHost: p\r\n\r\n"),
        Case("a control byte in the target", "GET /api/x\u{7f} HTTP/1.1\r\nHost: p\r\n\r\n"),
        Case("a non-ASCII byte in the target", "GET /api/caf\u{e9} HTTP/1.1\r\nHost: p\r\n\r\n"),
        Case(
            "two Transfer-Encoding fields",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        Case(
            "a trailer line without a colon",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T 1\r\n\r\n"),
        Case(
            "a bare LF in a chunk extension",
            "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n3;a\nb\r\nabc\r\n0\r\n\r\n"),
        Case("the HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        Case("a TLS ClientHello, which never ends a line", "\u{16}\u{3}\u{1}\u{0}\u{f8}\u{1}\u{0}\u{0}\u{f4}\u{3}\u{3}"),
        Case("a request line turning into binary", "POST /api/x\u{0}\u{1}"),
    ]

    /// Refused with 400 `bad_request`, the connection closed, nothing sent upstream, and the
    /// worker keeps serving.
    @Test(arguments: refused)
    func ambiguousOrMalformedRequestsAreRefused(_ request: Case) async throws {
        let proxy = try await ProxyHarness.start()
        let client = try await proxy.client()
        try await client.send(request.bytes)
        let text = await client.wait(timeoutMs: 5000) { _ in false }
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "got: \(text.prefix(40))")
        #expect(text.contains("\"code\":\"bad_request\""))
        #expect(client.isClosed)
        #expect(proxy.upstream.requests.isEmpty)
        await client.close()

        let next = try await proxy.client()
        try await next.send("GET /api/ok HTTP/1.1\r\nHost: p\r\n\r\n")
        #expect(await next.waitForResponses(1).hasPrefix("HTTP/1.1 200 OK\r\n"))
        await next.close()
        await proxy.stop()
    }

    /// A request line longer than every buffer the worker keeps for a head is answered 414 as soon
    /// as that is clear, without waiting for its end.
    @Test func aRequestLineBeyondTheHeadBufferIs414() async throws {
        let proxy = try await ProxyHarness.start()
        let client = try await proxy.client()
        try await client.send("GET /api/" + String(repeating: "a", count: 64 * 1024))
        let text = await client.wait(timeoutMs: 5000) { _ in false }
        #expect(text.hasPrefix("HTTP/1.1 414 URI Too Long\r\n"), "got: \(text.prefix(40))")
        #expect(client.isClosed)
        #expect(proxy.upstream.requests.isEmpty)
        await client.close()
        await proxy.stop()
    }

    /// The same request twice on one connection, the first one framed as in `bytes`: both are
    /// answered, so the first body ended exactly where its framing said.
    static let accepted: [(Case, String)] = [
        (Case("an empty line before the request line", "\r\nPOST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\n\r\nabc"), "abc"),
        (
            Case(
                "chunk extensions",
                "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "3;name=value\r\nabc\r\n2 ; q=\"x;y\"\r\nde\r\n0;last\r\n\r\n"), "abcde"
        ),
        (
            Case(
                "a trailer section",
                "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n"), "abc"
        ),
        (
            Case(
                "upper-case hex and leading zeros in chunk sizes",
                "POST /api/x HTTP/1.1\r\nHost: p\r\n"
                    + "Transfer-Encoding: chunked\r\n\r\n00A\r\n0123456789\r\n000\r\n\r\n"), "0123456789"
        ),
        (
            Case(
                "Transfer-Encoding in another case",
                "POST /api/x HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: Chunked\r\n\r\n"
                    + "1\r\nz\r\n0\r\n\r\n"), "z"
        ),
        (Case("Content-Length with leading zeros", "POST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: 003\r\n\r\nabc"), "abc"),
        (Case("Content-Length: 0", "POST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\n\r\n"), ""),
    ]

    @Test(arguments: accepted)
    func forgivingButUnambiguousFramingIsAccepted(_ request: Case, body: String) async throws {
        let proxy = try await ProxyHarness.start()
        let client = try await proxy.client()
        try await client.send(request.bytes + "GET /api/second HTTP/1.1\r\nHost: p\r\n\r\n")
        let text = await client.waitForResponses(2)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"), "got: \(text.prefix(40))")
        #expect(text.contains("POST /base/x body=\(body)"))
        #expect(text.hasSuffix("GET /base/second body="))
        #expect(proxy.upstream.requests.map(\.body) == [body, ""])
        #expect(!client.isClosed)
        await client.close()
        await proxy.stop()
    }

    /// Header values as RFC 9110 §5.5 has them: surrounding spaces and tabs are not part of the
    /// value; tabs inside it and bytes above 0x7F (obs-text) are.
    @Test func headerValuesAreTrimmedAndKeepInnerTabsAndObsText() async throws {
        let proxy = try await ProxyHarness.start()
        let client = try await proxy.client()
        try await client.send(
            "GET /api/x HTTP/1.1\r\nHost: p\r\nX-Pad: \t padded \t \r\nX-Tab: a\tb\r\n"
                + "X-Latin: caf\u{e9}\r\nX-Empty:\r\n\r\n")
        #expect(await client.waitForResponses(1).hasPrefix("HTTP/1.1 200 OK\r\n"))
        let seen = try #require(proxy.upstream.requests.first)
        #expect(seen.head.headers["x-pad"] == ["padded"])
        #expect(seen.head.headers["x-tab"] == ["a\tb"])
        #expect(seen.head.headers["x-latin"] == ["caf\u{e9}"])
        #expect(seen.head.headers["x-empty"] == [""])
        await client.close()
        await proxy.stop()
    }

    /// Methods are case-sensitive tokens; any registered or extension method is forwarded as sent.
    @Test func methodsAreForwardedAsSent() async throws {
        let proxy = try await ProxyHarness.start()
        let client = try await proxy.client()
        try await client.send(
            "DELETE /api/a HTTP/1.1\r\nHost: p\r\n\r\nOPTIONS /api/b HTTP/1.1\r\nHost: p\r\n\r\n"
                + "PATCH /api/c HTTP/1.1\r\nHost: p\r\nContent-Length: 1\r\n\r\nx")
        let text = await client.waitForResponses(3)
        #expect(text.contains("DELETE /base/a body="))
        #expect(text.contains("OPTIONS /base/b body="))
        #expect(text.hasSuffix("PATCH /base/c body=x"))
        await client.close()
        await proxy.stop()
    }
}
