import NIOCore
import Testing
@testable import FluxgateWorker

/// The relay's response side: the head the client gets (docs/routing-and-forwarding.md
/// "Response (upstream → client)"), and the body
/// passed on byte for byte with the response's end found by its framing.
@Suite struct UpstreamResponseReaderTests {
    struct Result {
        var head: String?
        var keepAlive: Bool?
        var body = ""
        var payload = 0
        var ends: [Bool] = []
        var error: UpstreamResponseReader.ResponseError?
        var reader: UpstreamResponseReader
    }

    /// Feeds `reads` one by one, like socket reads.
    func relay(_ reads: [String], head: Bool = false, announcesClose: Bool = false, observer: ResponseObserver? = nil) -> Result {
        var result = Result(reader: UpstreamResponseReader(requestMethodIsHEAD: head))
        result.reader.announcesClose = announcesClose
        result.reader.observer = observer
        for read in reads {
            do {
                try result.reader.read(ByteBuffer(string: read), allocator: ByteBufferAllocator()) { event in
                    switch event {
                    case .head(let h):
                        result.head = String(buffer: h.clientHead)
                        result.keepAlive = h.keepAlive
                    case .body(let bytes, let payload):
                        result.body += String(buffer: bytes)
                        result.payload += payload
                    case .end(let reusable):
                        result.ends.append(reusable)
                    }
                }
            } catch {
                result.error = error
                break
            }
        }
        return result
    }

    @Test func chunkedBodyPassesVerbatimWithTrailersAndHopByHopHeadersGo() {
        let body = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
        let r = relay([
            "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Encoding: gzip\r\nConnection: keep-alive, X-Hop\r\n"
                + "X-Hop: 1\r\nSet-Cookie: b=2\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n" + body
        ])
        #expect(
            r.head == "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Encoding: gzip\r\nSet-Cookie: b=2\r\n"
                + "transfer-encoding: chunked\r\n\r\n")
        #expect(r.body == body)
        #expect(r.payload == 11)
        #expect(r.ends == [true])
        #expect(r.keepAlive == true)
    }

    @Test func aChunkedBodySplitAnywhereEndsExactlyAtItsLastChunk() {
        let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        let r = relay(response.map { String($0) })
        #expect(r.head == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(r.body == "3\r\nabc\r\n0\r\n\r\n")
        #expect(r.ends == [true])
    }

    /// The head ends at its first CRLFCRLF however the response is cut into two reads, and a
    /// CRLFCRLF in the body (any offset, so at every position of the head scan's 16-byte steps)
    /// stays body.
    @Test func theHeadEndsAtItsFirstEmptyLineWhereverTheReadsSplit() {
        let body = "\r\n\r\nab\r\n\r\n\r\ncd\r\n\r\n\r\n\r\n"
        let head =
            "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 07:14:41 GMT\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n"
        let response = Array((head + body).utf8)
        for cut in 0...response.count {
            let reads = [response[..<cut], response[cut...]].map { String(decoding: $0, as: UTF8.self) }
            let r = relay(reads)
            #expect(r.head == head, "cut at \(cut)")
            #expect(r.body == body, "cut at \(cut)")
            #expect(r.ends == [true], "cut at \(cut)")
        }
    }

    /// A `Connection` field of one token decides reuse as a list of it would, and goes.
    @Test(arguments: [
        ("1.1", "close", false), ("1.1", "Close", false), ("1.1", "keep-alive", true), ("1.0", "keep-alive", true),
        ("1.0", "KEEP-ALIVE", true), ("1.0", "close", false), ("1.1", "close, keep-alive", false),
        ("1.0", "keep-alives", false), ("1.1", "closed", true),
    ])
    func aConnectionTokenDecidesReuse(version: String, value: String, keepAlive: Bool) {
        let r = relay(["HTTP/\(version) 200 OK\r\nConnection: \(value)\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nok"])
        #expect(r.keepAlive == keepAlive)
        #expect(r.head == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\n")
        #expect(r.body == "ok")
    }

    /// When the client connection closes after this response, its head says so, last.
    @Test func aClosingClientConnectionIsAnnouncedInTheHead() {
        let r = relay(["HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\nx"], announcesClose: true)
        #expect(r.head == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nconnection: close\r\n\r\n")
        #expect(r.keepAlive == true)
        #expect(r.ends == [true])
    }

    @Test func contentLengthIsKeptAndTheBodyEndsAtIt() {
        let r = relay(["HTTP/1.1 201 Created\r\nContent-Length: 10\r\nLocation: https://elsewhere/\r\n\r\n01234", "56789"])
        #expect(r.head == "HTTP/1.1 201 Created\r\nContent-Length: 10\r\nLocation: https://elsewhere/\r\n\r\n")
        #expect(r.body == "0123456789")
        #expect(r.ends == [true])
    }

    @Test func bytesPastTheEndMakeTheConnectionUnusable() {
        #expect(relay(["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"]).ends == [false])
        #expect(relay(["HTTP/1.1 204 No Content\r\n\r\nX"]).ends == [false])
        #expect(relay(["HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"]).keepAlive == false)
        #expect(relay(["HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"]).keepAlive == false)
        #expect(relay(["HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"]).keepAlive == true)
    }

    @Test func responsesWithoutABodyEndWithTheirHeadAndGetNoFraming() {
        for (status, isHead) in [("204 No Content", false), ("304 Not Modified", false), ("200 OK", true)] {
            let r = relay(["HTTP/1.1 \(status)\r\nTransfer-Encoding: chunked\r\nETag: \"x\"\r\n\r\n"], head: isHead)
            #expect(r.head == "HTTP/1.1 \(status)\r\nETag: \"x\"\r\n\r\n")
            #expect(r.body.isEmpty)
            #expect(r.ends == [true])
        }
        // A HEAD response keeps the length of the body it describes.
        #expect(
            relay(["HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"], head: true).head
                == "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n")
    }

    @Test func aBodyEndingAtTheCloseIsSentChunkedAndEndsWithTheClose() {
        var r = relay(["HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nab", "cde"])
        #expect(r.head == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(r.body == "2\r\nab\r\n3\r\ncde\r\n")
        #expect(r.payload == 5)
        #expect(r.keepAlive == false)
        #expect(r.ends.isEmpty)
        #expect(r.reader.endsAtClose)
        let completed = r.reader.closed()
        #expect(completed)
        // Any other body cut by the close is truncated.
        var cut = relay(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234"])
        let truncatedCompleted = cut.reader.closed()
        #expect(!truncatedCompleted)
    }

    /// Kept lines are copied in runs between the dropped ones: dropped lines first, last and next
    /// to each other; then the same with headers named in `Connection` (after or before they
    /// appear, in any case), which makes the reader go over the lines again.
    @Test func droppedLinesAnywhereLeaveTheOthersExactlyAsReceived() {
        let head =
            "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nA: 1\r\nTE: x\r\nUpgrade: y\r\nB:  2 \r\n"
            + "Connection: keep-alive\r\nC: 3\r\nContent-Length: 2\r\nTrailer: z\r\n\r\nok"
        let expected = "HTTP/1.1 200 OK\r\nA: 1\r\nB:  2 \r\nC: 3\r\nContent-Length: 2\r\n\r\n"
        let named = head.replacingOccurrences(of: "Connection: keep-alive\r\n", with: "x-gone: 1\r\nConnection: X-Gone, keep-alive\r\n")
            .replacingOccurrences(of: "C: 3\r\n", with: "C: 3\r\nX-GONE: 2\r\n")
        for response in [head, named] {
            #expect(relay([response]).head == expected)
            // The same head arriving a byte at a time.
            let r = relay(response.map { String($0) })
            #expect(r.head == expected)
            #expect(r.body == "ok")
        }
        // Transfer-Encoding after a Content-Length drops the length already passed over.
        #expect(
            relay(["HTTP/1.1 200 OK\r\nX: 1\r\nContent-Length: 5\r\nY: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"]).head
                == "HTTP/1.1 200 OK\r\nX: 1\r\nY: 2\r\ntransfer-encoding: chunked\r\n\r\n")
        // An HTTP/1.0 status line becomes HTTP/1.1; the reason phrase is kept as received.
        #expect(
            relay(["HTTP/1.0 404 Not  Found\r\nContent-Length: 0\r\n\r\n"]).head
                == "HTTP/1.1 404 Not  Found\r\nContent-Length: 0\r\n\r\n")
        #expect(relay(["HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"]).head == "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func transferEncodingOverridesAStaleContentLength() {
        let r = relay(["HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"])
        #expect(r.head == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(r.ends == [true])
    }

    @Test func interimResponsesAreSkipped() {
        let r = relay([
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
        ])
        #expect(r.head == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n")
        #expect(r.body == "x")
        #expect(relay(["HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\n\r\n"]).error != nil)
    }

    @Test(arguments: [
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: a\nX-B: b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: a\u{0}b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
    ])
    func malformedResponsesAreErrorsNotGuesses(response: String) {
        #expect(relay([response]).error != nil)
    }

    /// A head whose read holds all of it is parsed where it is, the parse finding its end; a head
    /// cut short is buffered and scanned for its end first. Both give the same head, body and
    /// error: for whole reads of every size around `maxBodyRoom` and `inPlaceHeadBytes` (the
    /// in-place window), heads longer than the window, and every malformed head above.
    @Test func aHeadParsedInPlaceIsTheHeadParsedAfterItsEndIsFound() {
        let room = UpstreamResponseReader.maxBodyRoom
        let window = UpstreamResponseReader.inPlaceHeadBytes
        var responses: [String] = []
        for headBytes in [200, window - 100, window + 100] {
            let filler = String(repeating: "f", count: headBytes - 80)
            for bodyBytes in [0, 1, room - 300, room + 100, room + 3000, room + window, 20_000] {
                responses.append(
                    "HTTP/1.1 200 OK\r\nX-Filler: \(filler)\r\nContent-Length: \(bodyBytes)\r\n\r\n"
                        + String(repeating: "b", count: bodyBytes))
            }
        }
        let malformed = [
            "HTTP/1.1 200 OK\r\nX-A: a\nX-B: b\r\n\r\nbody", "HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\rX\r\n\r\n", "HTTP/1.1 200 OK\r\nX-A: 1\r\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n",
        ]
        for response in responses + malformed {
            let bytes = Array(response.utf8)
            let whole = relay([response])
            // Cut inside the head: its first read never has its end.
            let at = min(20, bytes.count - 1)
            let cut = relay([String(decoding: bytes[..<at], as: UTF8.self), String(decoding: bytes[at...], as: UTF8.self)])
            #expect(whole.head == cut.head, "\(bytes.count) bytes")
            #expect(whole.body == cut.body, "\(bytes.count) bytes")
            #expect(whole.ends == cut.ends, "\(bytes.count) bytes")
            #expect(whole.error == cut.error, "\(bytes.count) bytes")
            #expect((whole.error == nil) == !malformed.contains(response))
        }
    }

    /// The client head has room for a small body that came in the same read, parsed in place or
    /// not (the exchange then sends both in one write).
    @Test func aSmallBodyInTheHeadsReadHasRoomInTheClientHead() throws {
        for bodyBytes in [1, 100, UpstreamResponseReader.maxBodyRoom - 500, UpstreamResponseReader.maxBodyRoom] {
            let response = "HTTP/1.1 200 OK\r\nContent-Length: \(bodyBytes)\r\n\r\n" + String(repeating: "b", count: bodyBytes)
            var reader = UpstreamResponseReader(requestMethodIsHEAD: false)
            var room = 0
            try reader.read(ByteBuffer(string: response), allocator: ByteBufferAllocator()) { event in
                if case .head(let head) = event { room = head.clientHead.writableBytes }
            }
            #expect(room >= bodyBytes, "\(bodyBytes) bytes")
        }
    }

    @Test func anEndlessHeadIsRefused() {
        let line = "X-Filler: " + String(repeating: "a", count: 1000) + "\r\n"
        let r = relay(["HTTP/1.1 200 OK\r\n"] + Array(repeating: line, count: 70))
        #expect(r.error != nil)
        #expect(r.head == nil)
    }

    // MARK: The tap

    /// Records what a `ResponseObserver` is told, in order (consecutive payload calls as one entry).
    final class Tap: ResponseObserver {
        var calls: [String] = []
        var payload = ""
        var facts: (status: UInt, contentType: String?, contentEncoding: String?, requestID: String?)?

        func responseHead(_ facts: ResponseFacts) {
            self.facts = (facts.status, facts.contentType, facts.contentEncoding, facts.requestID)
            calls.append("head \(facts.status)")
        }

        func responsePayload(_ bytes: UnsafeRawBufferPointer) {
            payload += String(decoding: bytes, as: UTF8.self)
            if calls.last != "payload" { calls.append("payload") }
        }

        func responseEnded(complete: Bool) { calls.append("end \(complete)") }
    }

    /// Every way of cutting `text` into two reads, and one read per byte.
    func splits(_ text: String) -> [[String]] {
        let bytes = Array(text.utf8)
        return (0...bytes.count).map { [String(decoding: bytes[..<$0], as: UTF8.self), String(decoding: bytes[$0...], as: UTF8.self)] }
            + [bytes.map { String(decoding: [$0], as: UTF8.self) }]
    }

    static let observed: [(response: String, payload: String)] = [
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
            "hello world"
        ),
        ("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", "hello world"),
        ("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\n\n", "data: 1\n\ndata: 2\n\n"),
    ]

    /// The observer gets the payload exactly, without framing, however the reads split the
    /// response, then one complete end (for a body that ends at the close: at the close).
    @Test(arguments: observed)
    func theObserverGetsThePayloadWithoutFramingWhereverTheReadsSplit(response: String, payload: String) {
        for reads in splits(response) {
            let tap = Tap()
            var r = relay(reads, observer: tap)
            if r.reader.endsAtClose {
                #expect(tap.calls == ["head 200", "payload"])
                let completed = r.reader.closed()
                #expect(completed)
            }
            #expect(tap.payload == payload, "reads \(reads.map(\.utf8.count))")
            #expect(tap.calls == ["head 200", "payload", "end true"], "reads \(reads.map(\.utf8.count))")
        }
    }

    /// Only the final head makes facts; names in any case, values without the spaces around them,
    /// the first of each name, `x-request-id` before Anthropic's `request-id`.
    @Test func theFactsAreTheFinalHeadsTrimmedValues() {
        let response =
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nCONTENT-TYPE:  text/event-stream; charset=utf-8 \r\n"
            + "content-Encoding:\tgzip\t\r\nRequest-Id: req_anthropic\r\nX-Request-ID: req_openai \r\nContent-Type: second\r\n"
            + "Content-Length: 0\r\n\r\n"
        for reads in splits(response) {
            let tap = Tap()
            _ = relay(reads, observer: tap)
            #expect(tap.calls == ["head 201", "end true"])
            #expect(tap.facts?.contentType == "text/event-stream; charset=utf-8")
            #expect(tap.facts?.contentEncoding == "gzip")
            #expect(tap.facts?.requestID == "req_openai")
        }
        let anthropic = Tap()
        _ = relay(["HTTP/1.1 200 OK\r\nrequest-id:req_011\r\nContent-Length: 0\r\n\r\n"], observer: anthropic)
        #expect(anthropic.facts?.requestID == "req_011")
        let bare = Tap()
        _ = relay(["HTTP/1.1 204 No Content\r\n\r\n"], observer: bare)
        #expect(bare.facts?.status == 204 && bare.facts?.contentType == nil && bare.facts?.requestID == nil)
        #expect(bare.calls == ["head 204", "end true"])
    }

    /// The reader reports only a complete end: a cut is the exchange's to report, so an observer
    /// never hears of a response's end twice.
    @Test func onlyACompleteEndIsReportedAndOnce() {
        let cut = Tap()
        var truncated = relay(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234"], observer: cut)
        let completed = truncated.reader.closed()
        #expect(!completed)
        #expect(cut.calls == ["head 200", "payload"])
        let refused = Tap()
        #expect(relay(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\nzz\r\n"], observer: refused).error != nil)
        #expect(refused.calls == ["head 200", "payload"] && refused.payload == "ab")
        let extra = Tap()
        let r = relay(["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "EXTRA"], observer: extra)
        #expect(r.ends == [true, false])
        #expect(extra.calls == ["head 200", "payload", "end true"])
    }

    /// With an observer attached the client gets exactly the same bytes, events and ends.
    @Test func anObserverChangesNothingTheClientGets() {
        let responses =
            Self.observed.map(\.response) + [
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n\r\nok",
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
            ]
        for response in responses {
            for reads in splits(response) {
                let plain = relay(reads)
                let observed = relay(reads, observer: Tap())
                #expect(observed.head == plain.head && observed.body == plain.body && observed.payload == plain.payload)
                #expect(observed.ends == plain.ends && observed.keepAlive == plain.keepAlive && observed.error == plain.error)
                #expect(plain.head != nil && plain.error == nil)
            }
        }
    }
}
