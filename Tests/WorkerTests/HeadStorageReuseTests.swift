import NIOCore
import Testing
@testable import FluxgateWorker

/// The parser writes a head into the previous head's storage, and the exchange writes heads into
/// the previous ones' buffers, once nothing holds them any more: a head still held (a pipelined
/// request, a response still being written) keeps its bytes whatever comes after it.
@Suite struct HeadStorageReuseTests {
    static func fields(_ head: RequestHead) -> [String] {
        head.headerBytes.withUnsafeReadableBytes { bytes in
            head.fields.map { String(decoding: bytes[$0.name], as: UTF8.self) + "=" + String(decoding: bytes[$0.value], as: UTF8.self) }
        }
    }

    static func head(_ parser: inout RequestParser, _ text: String) -> RequestHead? {
        parser.append(ByteBuffer(string: text))
        guard case .head(let head) = parser.next() else { return nil }
        #expect(parser.next().map { if case .end = $0 { true } else { false } } == true)
        return head
    }

    @Test func aHeadStillHeldKeepsItsBytesWhenTheNextIsParsed() throws {
        var parser = RequestParser(limits: WorkerLimits().parser)
        let first = try #require(Self.head(&parser, "GET /first HTTP/1.1\r\nHost: a\r\nX-One: 1\r\n\r\n"))
        let second = try #require(Self.head(&parser, "GET /second-longer HTTP/1.1\r\nHost: bb\r\nX-Two: 22\r\nX-Three: 333\r\n\r\n"))
        #expect(first.uri == "/first")
        #expect(Self.fields(first) == ["Host=a", "X-One=1"])
        #expect(second.uri == "/second-longer")
        #expect(Self.fields(second) == ["Host=bb", "X-Two=22", "X-Three=333"])
    }

    @Test func headsParsedOneAfterAnotherAreEachTheirOwn() throws {
        var parser = RequestParser(limits: WorkerLimits().parser)
        for n in 0..<5 {
            // Each head is let go before the next (the storage is then reused), and grows.
            let extra = (0..<n).map { "X-\($0): \(String(repeating: "v", count: 100 * $0))\r\n" }.joined()
            let head = try #require(Self.head(&parser, "POST /r\(n) HTTP/1.1\r\nHost: h\r\n\(extra)Content-Length: 0\r\n\r\n"))
            #expect(head.uri == "/r\(n)")
            #expect(Self.fields(head).count == n + 2)
            #expect(Self.fields(head).last == "Content-Length=0")
            #expect(head.facts.framing == .contentLength)
        }
    }

    /// The client head of the response read with `spare`.
    static func clientHead(_ response: String, reusing spare: inout ByteBuffer?) throws -> ByteBuffer? {
        var reader = UpstreamResponseReader(requestMethodIsHEAD: false)
        var head: ByteBuffer?
        try reader.read(ByteBuffer(string: response), allocator: ByteBufferAllocator(), reusing: &spare) { event in
            if case .head(let h) = event { head = h.clientHead }
        }
        return head
    }

    @Test func aClientHeadStillHeldKeepsItsBytesWhenItsBufferIsGivenAgain() throws {
        var spare: ByteBuffer?
        let first = try #require(try Self.clientHead("HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 0\r\n\r\n", reusing: &spare))
        // The first head's buffer is offered for the second while the first is still held.
        spare = first
        let second = try #require(
            try Self.clientHead("HTTP/1.1 404 Not Found\r\nB: 2\r\nContent-Length: 0\r\n\r\n", reusing: &spare))
        #expect(spare == nil)
        #expect(String(buffer: first) == "HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 0\r\n\r\n")
        #expect(String(buffer: second) == "HTTP/1.1 404 Not Found\r\nB: 2\r\nContent-Length: 0\r\n\r\n")
        // Let go of, the buffer is written again: the same head as from a new one.
        spare = second
        let third = try #require(try Self.clientHead("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", reusing: &spare))
        #expect(String(buffer: third) == "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    }
}
