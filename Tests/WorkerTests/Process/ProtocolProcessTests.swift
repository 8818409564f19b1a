import Foundation
import Testing
import TestSupport

/// Steps 0–4 of docs/routing-and-forwarding.md "Order of checks" and the worker's own limits: bad
/// HTTP gets a clear answer, never a crash.
@Suite struct ProtocolProcessTests {
    func raw(_ f: ProxyFixture, _ text: String) throws -> RawConnection.Response {
        let connection = try f.connect()
        try connection.send(text)
        return try connection.readResponse()
    }

    @Test func http10Is505() throws {
        let f = try ProxyFixture()
        #expect(try raw(f, "GET /openai/x HTTP/1.0\r\nHost: x\r\n\r\n").status == 505)
        #expect(f.mock.requests.isEmpty)
    }

    @Test func connectAndUpgradeAre501() throws {
        let f = try ProxyFixture()
        #expect(try raw(f, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").status == 501)
        #expect(try raw(f, "GET /openai/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").status == 501)
        #expect(try raw(f, "GET /openai/ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n").status == 501)
        #expect(f.mock.requests.isEmpty)
    }

    @Test func missingOrBlankHostIs400() throws {
        let f = try ProxyFixture()
        #expect(try raw(f, "GET /openai/x HTTP/1.1\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n\r\n").status == 400)
        #expect(try raw(f, "GET /openai/x HTTP/1.1\r\nHost:  \r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n\r\n").status == 400)
        #expect(f.mock.requests.isEmpty)
    }

    @Test(arguments: [
        "GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nHost x\r\n\r\n", "\u{1}\u{2}\u{3}\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        "POST /openai/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ])
    func malformedRequestsAre400AndCloseAndTheWorkerKeepsServing(text: String) throws {
        let f = try ProxyFixture()
        let connection = try f.connect()
        try connection.send(text)
        let response = try connection.readResponse()
        #expect(response.status == 400)
        #expect(connection.isClosedByPeer())
        #expect(try f.request("GET", "/openai/x").status == 200)
    }

    /// Bytes without a line end that cannot be the start of a request line: a TLS ClientHello
    /// sent to the plain port, binary, a valid start turning into binary, the HTTP/2 preface's
    /// first line. Each is answered 400 within a second (at the first byte that cannot start a
    /// request, as nginx does), not closed silently after the header timeout (issue 18).
    static let neverARequest: [[UInt8]] = [
        [0x16, 0x03, 0x01, 0x00, 0xf8, 0x01, 0x00, 0x00, 0xf4, 0x03, 0x03] + (0..<32).map { UInt8($0 &* 37 & 0xff) },
        [0x00, 0xff, 0x7f, 0x80, 0x1b, 0x5b, 0x41],
        Array("POST /openai/x".utf8) + [0x00, 0x01, 0x02],
        Array("PRI * HTTP/2.0\r\n".utf8),
    ]

    @Test(arguments: neverARequest)
    func bytesThatCannotStartARequestAre400AtOnce(bytes: [UInt8]) throws {
        let f = try ProxyFixture()
        let connection = try f.proxy.connect(timeout: 1)
        try connection.send(bytes)
        let response = try connection.readResponse()
        #expect(response.status == 400)
        #expect(response.openAIError?["code"] as? String == "bad_request")
        #expect(connection.isClosedByPeer(timeout: 1))
        #expect(f.mock.requests.isEmpty)
    }

    @Test func oversizedHeadersAre431() throws {
        let f = try ProxyFixture()
        let big = String(repeating: "a", count: 80 * 1024)
        #expect(try raw(f, "GET /openai/x HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n").status == 431)
        let many = (0..<300).map { "X-H\($0): v\r\n" }.joined()
        #expect(try raw(f, "GET /openai/x HTTP/1.1\r\nHost: x\r\n\(many)\r\n").status == 431)
        #expect(try f.request("GET", "/openai/x").status == 200)
    }

    @Test func overlongRequestLineIs414() throws {
        let f = try ProxyFixture()
        let path = "/openai/" + String(repeating: "p", count: 20 * 1024)
        #expect(try raw(f, "GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n").status == 414)
        #expect(try f.request("GET", "/openai/x").status == 200)
    }

    @Test func silentConnectionIsClosedAfterTheHeaderTimeout() throws {
        // A slowloris client sends part of a head and stops; the worker must not hold it forever.
        let f = try ProxyFixture()
        let connection = try f.proxy.connect(timeout: 60)
        try connection.send("GET /openai/x HTTP/1.1\r\nHost: x\r\n")
        #expect(connection.isClosedByPeer(timeout: 60))
    }
}
