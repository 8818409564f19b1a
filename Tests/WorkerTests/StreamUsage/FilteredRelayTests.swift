import NIOCore
import Testing
@testable import FluxgateWorker

/// `UpstreamResponseReader` with `stream_usage: inject`'s filter (docs/usage.md): a chunked or
/// close-delimited event stream reaches the client chunked by the proxy, its payload the stream
/// without usage whatever the reads; the observer still sees every upstream byte; what the
/// filter does not accept goes through as framed.
@Suite struct FilteredRelayTests {
    final class Payload: ResponseObserver {
        var bytes: [UInt8] = []
        func responseHead(_ facts: ResponseFacts) {}
        func responsePayload(_ bytes: UnsafeRawBufferPointer) { self.bytes += bytes }
        func responseEnded(complete: Bool) {}
    }

    struct Relayed {
        var body: [UInt8] = []
        var payload = 0
        var ends = 0
        var tail: ByteBuffer?
    }

    static func relay(_ reads: [[UInt8]], observer: ResponseObserver? = nil, closes: Bool = false) throws -> Relayed {
        var reader = UpstreamResponseReader(requestMethodIsHEAD: false)
        reader.bodyFilter = UsageChunkFilter()
        reader.observer = observer
        var relayed = Relayed()
        for read in reads {
            try reader.read(ByteBuffer(bytes: read), allocator: ByteBufferAllocator()) { event in
                switch event {
                case .head: break
                case .body(let bytes, let payload):
                    relayed.body += bytes.readableBytesView
                    relayed.payload += payload
                case .end: relayed.ends += 1
                }
            }
        }
        if closes, reader.closed() { relayed.tail = reader.filteredTail(allocator: ByteBufferAllocator()) }
        return relayed
    }

    /// The payload of a chunked body (which must be complete).
    static func dechunk(_ wire: [UInt8]) throws -> [UInt8] {
        var scanner = ChunkedScanner(rules: .response)
        var out: [UInt8] = []
        try wire.withUnsafeBytes { raw in
            var index = 0
            while case .data(let data) = try scanner.next(raw, at: &index) { out += raw[data] }
        }
        #expect(scanner.isFinished)
        return out
    }

    static func chunked(_ text: String, every size: Int) -> String {
        let bytes = Array(text.utf8)
        var out = ""
        for start in stride(from: 0, to: bytes.count, by: size) {
            let piece = bytes[start..<min(start + size, bytes.count)]
            out += String(piece.count, radix: 16) + "\r\n" + String(decoding: piece, as: UTF8.self) + "\r\n"
        }
        return out + "0\r\n\r\n"
    }

    static let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

    @Test func aChunkedStreamCutAtEveryByteReachesTheClientWithoutUsage() throws {
        let asked = UsageChunkFilterTests.stream(asked: true)
        let plain = UsageChunkFilterTests.stream(asked: false)
        let wire = Array((Self.head + Self.chunked(asked, every: 37)).utf8)
        for cut in 0...wire.count {
            let observer = Payload()
            let relayed = try Self.relay([Array(wire[..<cut]), Array(wire[cut...])], observer: observer)
            #expect(String(decoding: try Self.dechunk(relayed.body), as: UTF8.self) == plain, "cut at \(cut)")
            #expect(relayed.payload == plain.utf8.count)
            #expect(relayed.ends == 1)
            #expect(String(decoding: observer.bytes, as: UTF8.self) == asked, "the reader sees the upstream's payload")
        }
    }

    @Test func aStreamEndingAtTheCloseIsFilteredAndItsLastBytesComeBeforeTheEnd() throws {
        let asked = UsageChunkFilterTests.stream(asked: true) + "data: unterminated"
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
        let relayed = try Self.relay([Array(head.utf8), Array(asked.utf8)], closes: true)
        let tail = try #require(relayed.tail)
        let wire = relayed.body + tail.readableBytesView + Array(ChunkedFraming.lastChunk.description.utf8)
        #expect(
            String(decoding: try Self.dechunk(wire), as: UTF8.self) == UsageChunkFilterTests.stream(asked: false) + "data: unterminated")
    }

    @Test func aLengthFramedOrCodedStreamGoesAsFramed() throws {
        let asked = UsageChunkFilterTests.stream(asked: true)
        let length = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: \(asked.utf8.count)\r\n\r\n"
        #expect(try Self.relay([Array((length + asked).utf8)]).body == Array(asked.utf8))
        let coded = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: br\r\nTransfer-Encoding: chunked\r\n\r\n"
        let body = Self.chunked(asked, every: 50)
        #expect(try Self.relay([Array((coded + body).utf8)]).body == Array(body.utf8))
    }
}
