import NIOCore
import Testing
@testable import FluxgateWorker

/// `RequestParser` on its own: the events of a byte stream do not depend on how reads split it.
/// (What it refuses is tested through a real connection in `RequestParsingTests`.)
@Suite struct RequestParserTests {
    /// Events as text, consecutive body slices joined.
    func events(_ reads: [String], limits: WorkerLimits = WorkerLimits()) -> [String] {
        var parser = RequestParser(limits: limits.parser)
        var out: [String] = []
        for read in reads {
            parser.append(ByteBuffer(string: read))
            while let event = parser.next() {
                switch event {
                case .head(let head):
                    let fields = head.headerBytes.withUnsafeReadableBytes { bytes in
                        head.fields.map {
                            String(decoding: bytes[$0.name], as: UTF8.self) + "=" + String(decoding: bytes[$0.value], as: UTF8.self)
                        }
                    }
                    out.append("head \(head.method.rawValue) \(head.uri) \(head.version) " + fields.joined(separator: ","))
                case .body(let bytes):
                    let text = String(buffer: bytes)
                    if let last = out.last, last.hasPrefix("body ") { out[out.count - 1] = last + text } else { out.append("body " + text) }
                case .end:
                    out.append("end")
                case .malformed(let error):
                    out.append("malformed \(ProxyErrorResponse(error).status.code)")
                }
            }
        }
        return out
    }

    func split(_ text: String, every size: Int) -> [String] {
        let bytes = Array(text.utf8)
        return stride(from: 0, to: bytes.count, by: size).map {
            String(decoding: bytes[$0..<min($0 + size, bytes.count)], as: UTF8.self)
        }
    }

    static let pipelined =
        "\r\nPOST /a HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n\r\nhello"
        + "POST /b HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n"
        + "GET /c?q=1 HTTP/1.1\r\nHost: p\r\nX-Pad:  v \r\n\r\n"
        + "DELETE /d HTTP/1.0\r\nHost: p\r\nContent-Length: 0\r\n\r\n"

    @Test func pipelinedRequestsAreReadTheSameWhateverTheReadSizes() {
        let whole = events([Self.pipelined])
        #expect(
            whole == [
                "head POST /a HTTP/1.1 Host=p,Content-Length=5", "body hello", "end",
                "head POST /b HTTP/1.1 Host=p,Transfer-Encoding=chunked", "body abc0123456789abcdef", "end",
                "head GET /c?q=1 HTTP/1.1 Host=p,X-Pad=v", "end",
                "head DELETE /d HTTP/1.0 Host=p,Content-Length=0", "end",
            ])
        for size in [1, 2, 3, 5, 8, 13, 100] {
            #expect(events(split(Self.pipelined, every: size)) == whole, "reads of \(size) bytes")
        }
    }

    /// `takeFixedBody` after each head, as the model stage's read does: the same events as
    /// `.body` and `.end` whatever the reads (the body is taken whole only when it is all there).
    @Test func aFixedBodyTakenWholeGivesTheSameEventsWhateverTheReadSizes() {
        let whole = events([Self.pipelined])
        for size in [1, 2, 3, 5, 8, 13, 100, Self.pipelined.utf8.count] {
            var parser = RequestParser(limits: WorkerLimits().parser)
            var out: [String] = []
            var taken = 0
            for read in split(Self.pipelined, every: size) {
                parser.append(ByteBuffer(string: read))
                while let event = parser.next() {
                    switch event {
                    case .head(let head):
                        out.append("head \(head.method.rawValue) \(head.uri)")
                        if head.facts.framing == .contentLength, let body = parser.takeFixedBody(length: head.facts.contentLength) {
                            out += ["body " + String(buffer: body), "end"]
                            taken += 1
                        }
                    case .body(let bytes):
                        if let last = out.last, last.hasPrefix("body ") {
                            out[out.count - 1] = last + String(buffer: bytes)
                        } else {
                            out.append("body " + String(buffer: bytes))
                        }
                    case .end: out.append("end")
                    case .malformed: out.append("malformed")
                    }
                }
            }
            #expect(out == whole.map { $0.hasPrefix("head ") ? String($0.split(separator: " ").prefix(3).joined(separator: " ")) : $0 })
            // Whole in one read, the first request's body is taken at its head; byte by byte, never.
            if size == 1 { #expect(taken == 0) }
            if size == Self.pipelined.utf8.count { #expect(taken == 1) }
        }
    }

    @Test func nothingIsReadAfterMalformedBytes() {
        #expect(
            events(["GET /a HTTP/1.1\r\nHost: p\r\n\r\nGET /b HTTP/1.1\nHost: p\r\n\r\n", "GET /c HTTP/1.1\r\nHost: p\r\n\r\n"])
                == ["head GET /a HTTP/1.1 Host=p", "end", "malformed 400"])
    }

    /// Bytes that cannot start a request line are refused as soon as they arrive, however the
    /// reads split them, so garbage that never ends a line (a TLS ClientHello on the plain port)
    /// is answered at once; a prefix that can still become a request line waits (issue 18).
    @Test func bytesThatCannotStartARequestLineAreRefusedAtOnce() {
        let refused = [
            "\u{16}\u{3}\u{1}\u{0}\u{f8}", "\u{0}", "\n", " GET /", "\r\r", "get /", "GET  /", "GET\t/",
            String(repeating: "A", count: 33), "GET /a\u{0}", "GET /a\u{7f}", "GET / HTTP/2", "GET / HTTP/1.x",
            "GET / HTTP/1.12", "GET / HTTP/1.1\n", "GET / HTTP/1.1\rX", "\r\n\r\n\u{16}\u{3}",
        ]
        for text in refused {
            #expect(events([text]) == ["malformed 400"], "\(text.debugDescription)")
            #expect(events(split(text, every: 1)) == ["malformed 400"], "\(text.debugDescription) a byte at a time")
        }
        let waiting = [
            "\r", "\r\n", "\r\n\r", "G", "GET", "GET ", "GET /a", "GET /a HTTP/1.", "GET /a HTTP/1.1\r",
            String(repeating: "A", count: 32) + " /", "GET /a HTTP/1.1\r\nHost: p\r\n\u{1}",
        ]
        for text in waiting {
            #expect(events([text]) == [], "\(text.debugDescription)")
            #expect(events(split(text, every: 1)) == [], "\(text.debugDescription) a byte at a time")
        }
    }

    @Test func anIncompleteHeadIsKeptUpToTheLimitThen414Or431() {
        var limits = WorkerLimits()
        limits.maxRequestTargetBytes = 100
        limits.maxHeaderBytes = 200
        limits.maxHeaderCount = 4
        // Below the limit: waits for more.
        #expect(events(["GET /" + String(repeating: "a", count: 200)], limits: limits) == [])
        // A request line that never ends within the buffer: 414; headers that do not: 431.
        #expect(events(["GET /" + String(repeating: "a", count: 400)], limits: limits) == ["malformed 414"])
        #expect(events(["GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 400)], limits: limits) == ["malformed 431"])
        // Complete heads over the header limits: 431 from the parser.
        #expect(
            events(["GET / HTTP/1.1\r\n" + (0..<5).map { "X-\($0): v\r\n" }.joined() + "\r\n"], limits: limits)
                == ["malformed 431"])
        #expect(
            events(["GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 250) + "\r\n\r\n"], limits: limits)
                == ["malformed 431"])
    }

    @Test func largeBodiesArePassedOnAsTheyArrive() {
        let head = "POST /u HTTP/1.1\r\nHost: p\r\nContent-Length: 10\r\n\r\n"
        var parser = RequestParser(limits: WorkerLimits().parser)
        parser.append(ByteBuffer(string: head + "abc"))
        guard case .head = parser.next(), case .body(let first) = parser.next() else { Issue.record("no head and body"); return }
        #expect(String(buffer: first) == "abc")
        #expect(parser.next() == nil)
        parser.append(ByteBuffer(string: "defghij"))
        guard case .body(let rest) = parser.next(), case .end = parser.next() else { Issue.record("no rest and end"); return }
        #expect(String(buffer: rest) == "defghij")
    }
}
