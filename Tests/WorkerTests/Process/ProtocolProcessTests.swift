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

    @Test(arguments: ["GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nHost x\r\n\r\n", "\u{1}\u{2}\u{3}\r\n\r\n",
                      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
                      "POST /openai/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
    func malformedRequestsAre400AndCloseAndTheWorkerKeepsServing(text: String) throws {
        let f = try ProxyFixture()
        let connection = try f.connect()
        try connection.send(text)
        let response = try connection.readResponse()
        #expect(response.status == 400)
        #expect(connection.isClosedByPeer())
        #expect(try f.request("GET", "/openai/x").status == 200)
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
