import NIOCore
import Testing
@testable import FluxgateWorker

/// The one chunked codec: what it reads as payload and where it ends a body do not depend on how
/// reads split the bytes, on either side; each side keeps its own strictness.
@Suite struct ChunkedCodecTests {
    struct Scan: Equatable {
        var payload = ""
        /// Bytes of the input the scanner took as the body (the rest belongs to what follows).
        var bodyBytes = 0
        var finished = false
        var error: ChunkedError?
    }

    /// Scans `reads` in order, as a connection would deliver them.
    func scan(_ reads: [[UInt8]], rules: ChunkedScanner.Rules) -> Scan {
        var scanner = ChunkedScanner(rules: rules)
        var result = Scan()
        for read in reads where !result.finished {
            read.withUnsafeBytes { bytes in
                var index = 0
                do throws(ChunkedError) {
                    loop: while true {
                        switch try scanner.next(bytes, at: &index) {
                        case .data(let data): result.payload += String(decoding: bytes[data], as: UTF8.self)
                        case .needsMore: break loop
                        case .finished:
                            result.finished = true
                            break loop
                        }
                    }
                } catch {
                    result.error = error
                }
                result.bodyBytes += index
            }
            if result.error != nil { break }
        }
        return result
    }

    func scan(_ text: String, rules: ChunkedScanner.Rules) -> Scan { scan([Array(text.utf8)], rules: rules) }

    /// Every way of cutting `text` into two reads, and one read per byte.
    func splits(_ text: String) -> [[[UInt8]]] {
        let bytes = Array(text.utf8)
        return (0...bytes.count).map { [Array(bytes[..<$0]), Array(bytes[$0...])] } + [bytes.map { [$0] }]
    }

    static let request = ChunkedScanner.Rules.request(maxTrailerBytes: 64)
    static let bothSides: [ChunkedScanner.Rules] = [request, .response]

    @Test(arguments: bothSides)
    func payloadAndEndAreTheSameWhereverTheReadsSplit(rules: ChunkedScanner.Rules) {
        let body = "5;ext=1\r\nhello\r\n06 ; q=\"x;y\"\r\n world\r\n00A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
        let next = "GET / HTTP/1.1\r\n"
        for reads in splits(body + next) {
            #expect(scan(reads, rules: rules) == Scan(payload: "hello world0123456789", bodyBytes: body.utf8.count, finished: true))
        }
    }

    @Test(arguments: bothSides)
    func framingErrorsAreRefusedOnBothSides(rules: ChunkedScanner.Rules) {
        let refused: [(String, ChunkedError)] = [
            ("3\nabc\r\n0\r\n\r\n", .malformedSize),
            ("3\r\rabc\r\n0\r\n\r\n", .malformedLine),
            ("3;a\nb\r\nabc\r\n0\r\n\r\n", .malformedLine),
            ("3\r\nabcd\r\n0\r\n\r\n", .dataNotFollowedByCRLF),
            ("3\r\nabc\n0\r\n\r\n", .dataNotFollowedByCRLF),
            ("\r\nabc\r\n0\r\n\r\n", .malformedSize),
            ("+3\r\nabc\r\n0\r\n\r\n", .malformedSize),
            ("zz\r\n", .malformedSize),
            ("1000000000000000\r\n", .sizeTooLarge),
            ("0\r\nX-T: a\u{0}b\r\n\r\n", .malformedTrailer),
            ("0\r\n\r\r", .malformedEnd),
        ]
        for (body, error) in refused {
            #expect(scan(body, rules: rules).error == error, "\(body.debugDescription)")
        }
        // Leading zeros are not significant digits: the size still fits, however many there are.
        #expect(scan(String(repeating: "0", count: 40) + "1\r\nx\r\n0\r\n\r\n", rules: rules).payload == "x")
    }

    /// The request side holds the RFC 9112 grammar, since the proxy re-frames what it accepts;
    /// the response side relays the upstream's framing as it is and only follows it.
    @Test func onlyTheRequestSideChecksExtensionsAndTrailerFields() {
        for body in ["3 x\r\nabc\r\n0\r\n\r\n", "3 \r\nabc\r\n0\r\n\r\n", "0\r\nX-T 1\r\n\r\n", "0\r\n: v\r\n\r\n"] {
            #expect(scan(body, rules: Self.request).error != nil, "\(body.debugDescription)")
            #expect(scan(body, rules: .response).finished, "\(body.debugDescription)")
        }
    }

    /// A chunk line or trailer section that never ends is refused once over its limit, even when it
    /// arrives a byte at a time (the scanner keeps no bytes, so nothing else would stop it).
    @Test func theRequestSideBoundsItsLinesAndTrailers() {
        let longLine = "1;" + String(repeating: "e", count: 4094)
        #expect(scan(longLine + "\r\nx\r\n0\r\n\r\n", rules: Self.request).payload == "x")
        #expect(scan(Array((longLine + "e").utf8).map { [$0] }, rules: Self.request).error == .lineTooLong)
        let trailers = "0\r\n" + String(repeating: "X-T: 123456789\r\n", count: 4)  // 64 bytes of lines
        #expect(scan(trailers + "\r\n", rules: Self.request).finished)
        #expect(scan(trailers + "X", rules: Self.request).error == .trailersTooLarge)
        // The response side bounds neither: nothing of them is kept, and they go to the client as sent.
        let unbounded = longLine + "ee\r\nx\r\n" + trailers + "X-More: 1\r\n\r\n"
        #expect(scan(unbounded, rules: .response) == Scan(payload: "x", bodyBytes: unbounded.utf8.count, finished: true))
    }

    @Test func sizeLinesAreLowerCaseHexAndScanBackToTheSamePayload() {
        var out = ByteBuffer()
        for size in [1, 9, 10, 255, 4096, Int(Int32.max)] {
            out.clear()
            ChunkedFraming.writeSizeLine(size, into: &out)
            #expect(String(buffer: out) == String(size, radix: 16) + "\r\n")
        }
        var body = ByteBuffer()
        for piece in ["a", String(repeating: "b", count: 300)] {
            ChunkedFraming.writeSizeLine(piece.utf8.count, into: &body)
            body.writeString(piece)
            body.writeImmutableBuffer(ChunkedFraming.crlf)
        }
        body.writeStaticString(ChunkedFraming.lastChunk)
        let scanned = scan([Array(body.readableBytesView)], rules: Self.request)
        #expect(scanned == Scan(payload: "a" + String(repeating: "b", count: 300), bodyBytes: body.readableBytes, finished: true))
    }
}
