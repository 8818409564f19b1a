import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Reads an upstream's HTTP/1.1 response from the raw bytes of its connection and turns it into
/// what the client is sent: a rewritten head, then the body **byte for byte as the upstream framed
/// it**. Nothing is decoded and re-encoded: a `Content-Length` body and a chunked body go through
/// as received (slices of the read buffers, no copy); the reader only follows the framing to know
/// where the response ends. A body delimited by the connection's close is sent chunked.
///
/// This replaces NIO's response decoder and response encoder on the relay path, which built a
/// `String` for every header name and value, a new `HTTPHeaders` for the client, and re-framed
/// every body part (behaviour §5's rules are the same; see `ForwardingHeaders`).
///
/// The head is parsed strictly: anything unusual is a `ResponseError` (502 when nothing was sent
/// yet), never a guess. Bytes after the end of a response are a protocol violation: the
/// connection is then not reused.
struct UpstreamResponseReader {
    struct ResponseError: Error, Equatable {
        var reason: String
    }

    /// Body bytes up to this many go out in the client head's buffer (copied: larger ones are
    /// cheaper as a write of their own).
    static let maxBodyRoom = 8 * 1024

    /// The client head says `connection: close` (set by the exchange before each read, from
    /// whether the client connection closes after this response).
    var announcesClose = false

    /// A final response head, ready for the client.
    struct Head {
        var status: UInt
        /// The head to send: status line, the upstream's end-to-end headers as received, framing,
        /// `connection: close` when `announcesClose`, the empty line.
        var clientHead: ByteBuffer
        /// The head says `connection: close` (the reader's `announcesClose` when it was made).
        var announcesClose: Bool
        /// The upstream connection may carry another request after this response.
        var keepAlive: Bool
    }

    enum Event {
        case head(Head)
        /// Bytes for the client, in order (body, with framing when chunked), and how many of them
        /// are payload (for the log: chunk framing is not counted).
        case body(ByteBuffer, payload: Int)
        /// The response is complete. `reusable` is false when the upstream sent bytes past it
        /// (whether the upstream keeps the connection open is `Head.keepAlive`).
        case end(reusable: Bool)
    }

    /// Longest response head accepted (status line and header fields).
    static let maxHeadBytes = 64 * 1024

    private enum Framing {
        case length(remaining: Int)
        case chunked(ChunkedScanner)
        case untilClose
    }

    private enum State {
        case head
        case body(Framing)
        case done
    }

    private let requestIsHead: Bool
    private var state = State.head
    private var headBytes: ByteBuffer?
    private(set) var status: UInt?

    init(requestMethodIsHEAD: Bool) {
        self.requestIsHead = requestMethodIsHEAD
    }

    var isComplete: Bool { if case .done = state { return true } else { return false } }
    /// The body runs until the upstream closes: its close completes the response.
    var endsAtClose: Bool { if case .body(.untilClose) = state { return true } else { return false } }

    /// Feeds one read; `emit` gets the events it completes, in order.
    mutating func read(_ buffer: ByteBuffer, allocator: ByteBufferAllocator, emit: (Event) -> Void) throws(ResponseError) {
        var buffer = buffer
        while buffer.readableBytes > 0 {
            switch state {
            case .done:
                // Unsolicited bytes after the response: the stream is desynchronised.
                return emit(.end(reusable: false))
            case .head:
                switch try readHead(from: &buffer, allocator: allocator) {
                case .incomplete: return
                case .interim: continue
                case .final(let head): emit(.head(head))
                }
                if case .done = state {
                    // A response without a body (HEAD, 204, 304, Content-Length: 0) ends with its head.
                    emit(.end(reusable: buffer.readableBytes == 0))
                    return
                }
            case .body(let framing):
                try readBody(framing, from: &buffer, allocator: allocator, emit: emit)
            }
        }
    }

    /// The connection closed: completes a body delimited by the close (the terminating chunk is
    /// the caller's to send: `Event.end` after `.untilClose`); anything else is truncated.
    mutating func closed() -> Bool {
        guard case .body(.untilClose) = state else { return isComplete }
        state = .done
        return true
    }

    /// The chunk that ends a body this side chunked itself (`endsAtClose`).
    static let lastChunk: StaticString = "0\r\n\r\n"

    // MARK: Head

    /// What one read did to the head. (Not `Head??`: copies of a double optional went through
    /// generic value witnesses.)
    private enum HeadProgress {
        case incomplete
        /// An interim (1xx) head was read and skipped.
        case interim
        case final(Head)
    }

    private mutating func readHead(from buffer: inout ByteBuffer, allocator: ByteBufferAllocator)
        throws(ResponseError) -> HeadProgress {
        // Fast path: the whole head is in this read (the usual case) and nothing is buffered.
        if headBytes == nil, let end = Self.headEnd(in: buffer) {
            let head = buffer.readSlice(length: end)!
            return try parsedHead(head, allocator: allocator, bodyRoom: buffer.readableBytes)
        }
        var pending = headBytes ?? allocator.buffer(capacity: buffer.readableBytes)
        let previous = pending.readableBytes
        pending.writeImmutableBuffer(buffer)
        guard let end = Self.headEnd(in: pending, from: max(0, previous - 3)) else {
            guard pending.readableBytes <= Self.maxHeadBytes else { throw ResponseError(reason: "response head too large") }
            headBytes = pending
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return .incomplete
        }
        headBytes = nil
        buffer.moveReaderIndex(forwardBy: end - previous)
        return try parsedHead(pending.getSlice(at: pending.readerIndex, length: end)!, allocator: allocator,
                              bodyRoom: buffer.readableBytes)
    }

    /// Offset just past the first CRLFCRLF, if any: `memchr` (vectorised) from LF to LF.
    private static func headEnd(in buffer: ByteBuffer, from start: Int = 0) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard let base = bytes.baseAddress else { return nil }
            let n = bytes.count
            var i = start + 1
            while i + 2 < n, let lf = memchr(base + i, 0x0A, n - 2 - i) {
                let at = base.distance(to: UnsafeRawPointer(lf))
                if bytes[at - 1] == 0x0D && bytes[at + 1] == 0x0D && bytes[at + 2] == 0x0A { return at + 3 }
                i = at + 1
            }
            return nil
        }
    }

    /// `bodyRoom`: body bytes that came in the same read; the client head gets room for them when
    /// they are at most `maxBodyRoom`, so the exchange can send a small response in one write.
    private mutating func parsedHead(_ head: ByteBuffer, allocator: ByteBufferAllocator,
                                     bodyRoom: Int) throws(ResponseError) -> HeadProgress {
        guard head.readableBytes <= Self.maxHeadBytes else { throw ResponseError(reason: "response head too large") }
        // The client head is written while the upstream's is parsed: the kept lines are copied in
        // runs as they are found valid. They are parts of `head`, and "HTTP/1.1 " replaces the
        // status line's version, so the head's size plus the framing, `connection: close` and the
        // empty line bound it.
        let close = announcesClose
        let bound = head.readableBytes + 64
        var out = allocator.buffer(capacity: bound + (bodyRoom <= Self.maxBodyRoom ? bodyRoom : 0))
        var parsed = ResponseHeadParser()
        var failure: ResponseError?
        out.writeHead(maxBytes: bound) { out in
            head.withUnsafeReadableBytes { bytes in
                do throws(ResponseError) {
                    parsed = try ResponseHeadParser.parse(bytes, into: &out)
                } catch {
                    failure = error
                }
            }
        }
        if let failure { throw failure }
        if parsed.status < 200 {
            // 100 Continue and 103 Early Hints are interim: the final response follows (NIO's
            // client codec dropped them too). 101 would switch protocols, which was not asked for.
            guard parsed.status != 101 else { throw ResponseError(reason: "unexpected 101 Switching Protocols") }
            return .interim
        }
        status = parsed.status
        let bodyless = requestIsHead || parsed.status == 204 || parsed.status == 304
        var keepAlive = parsed.keepAlive
        let addsChunked: Bool
        if bodyless {
            state = .done
            addsChunked = false
        } else if parsed.chunked {
            addsChunked = true
            state = .body(.chunked(ChunkedScanner()))
        } else if parsed.transferEncoded {
            // A coding other than chunked last: the body ends at the close (RFC 9112 §6.3).
            addsChunked = true
            keepAlive = false
            state = .body(.untilClose)
        } else if let length = parsed.contentLength {
            addsChunked = false
            state = length == 0 ? .done : .body(.length(remaining: length))
        } else {
            addsChunked = true
            keepAlive = false
            state = .body(.untilClose)
        }
        out.writeHead(maxBytes: 64) { out in
            if addsChunked { out.write("transfer-encoding: chunked\r\n") }
            // Say so, or a keep-alive client sends its next request into the close (a drain
            // during load lost requests this way).
            if close { out.write("connection: close\r\n") }
            out.write("\r\n")
        }
        return .final(Head(status: parsed.status, clientHead: out, announcesClose: close, keepAlive: keepAlive))
    }

    // MARK: Body

    private mutating func readBody(_ framing: Framing, from buffer: inout ByteBuffer, allocator: ByteBufferAllocator,
                                   emit: (Event) -> Void) throws(ResponseError) {
        switch framing {
        case .length(let remaining):
            let count = min(remaining, buffer.readableBytes)
            emit(.body(buffer.readSlice(length: count)!, payload: count))
            if count == remaining {
                state = .done
                emit(.end(reusable: buffer.readableBytes == 0))
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            } else {
                state = .body(.length(remaining: remaining - count))
            }
        case .chunked(var scanner):
            let (consumed, payload) = try buffer.withUnsafeReadableBytes { bytes throws(ResponseError) in
                try scanner.scan(bytes)
            }
            emit(.body(buffer.readSlice(length: consumed)!, payload: payload))
            if scanner.isFinished {
                state = .done
                emit(.end(reusable: buffer.readableBytes == 0))
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            } else {
                state = .body(.chunked(scanner))
            }
        case .untilClose:
            let count = buffer.readableBytes
            var framed = allocator.buffer(capacity: 12)
            framed.writeString(String(count, radix: 16))
            framed.writeStaticString("\r\n")
            emit(.body(framed, payload: 0))
            emit(.body(buffer.readSlice(length: count)!, payload: count))
            emit(.body(Self.crlf, payload: 0))
        }
    }

    private static let crlf = ByteBuffer(staticString: "\r\n")
}

/// Parses a response head and writes the client's: the status line with "HTTP/1.1", then the
/// upstream's end-to-end header lines as received (hop-by-hop ones and those named in
/// `Connection` dropped; a `Content-Length` beside `Transfer-Encoding` dropped). One pass over
/// the bytes: kept lines are copied in runs (most heads: two copies), the values of the few
/// headers that matter are read on the way.
struct ResponseHeadParser {
    var status: UInt = 0
    var contentLength: Int?
    var chunked = false
    var transferEncoded = false
    var keepAlive = true

    typealias ResponseError = UpstreamResponseReader.ResponseError

    /// Parses `bytes`, a head ending with CRLFCRLF, writing the kept part to `out` (the final
    /// framing lines and the empty line are the caller's).
    static func parse(_ bytes: UnsafeRawBufferPointer, into out: inout HeadWriter) throws(ResponseError) -> ResponseHeadParser {
        var p = ResponseHeadParser()
        let n = bytes.count - 2  // the final CRLF
        guard n >= 0, bytes[n] == 0x0D, bytes[n + 1] == 0x0A else {
            throw ResponseError(reason: "response head not terminated")
        }
        // Status line: HTTP/1.x SP 3DIGIT [SP reason], the reason any field-value bytes.
        let statusEnd = ASCIIBytes.fieldValueEnd(bytes, from: 0, to: n)
        guard statusEnd < n, bytes[statusEnd] == 0x0D, bytes[statusEnd + 1] == 0x0A, statusEnd >= 12,
              bytes[0] == UInt8(ascii: "H"), bytes[1] == UInt8(ascii: "T"), bytes[2] == UInt8(ascii: "T"),
              bytes[3] == UInt8(ascii: "P"), bytes[4] == UInt8(ascii: "/"), bytes[5] == UInt8(ascii: "1"),
              bytes[6] == UInt8(ascii: "."), bytes[8] == UInt8(ascii: " ") else {
            throw ResponseError(reason: "malformed status line")
        }
        let minor = bytes[7]
        guard minor == UInt8(ascii: "1") || minor == UInt8(ascii: "0") else { throw ResponseError(reason: "unsupported HTTP version") }
        var status: UInt = 0
        for i in 9..<12 {
            let d = bytes[i] &- UInt8(ascii: "0")
            guard d <= 9 else { throw ResponseError(reason: "malformed status code") }
            status = status &* 10 &+ UInt(d)
        }
        guard status >= 100, statusEnd == 12 || bytes[12] == UInt8(ascii: " ") else {
            throw ResponseError(reason: "malformed status line")
        }
        p.status = status
        var http10 = minor == UInt8(ascii: "0")
        var closeToken = false
        var keepAliveToken = false
        var connectionNamed: [Range<Int>] = []
        var contentLengthKept = false

        out.write("HTTP/1.1 ")
        let fieldsStart = statusEnd &+ 2
        // The kept bytes not yet copied: from `run` to the current line.
        var run = 9
        var start = fieldsStart
        while start < n {
            let colon = ASCIIBytes.tokenEnd(bytes, from: start, to: n)
            guard colon < n, bytes[colon] == UInt8(ascii: ":") else {
                let b = colon < n ? bytes[colon] : 0
                throw ResponseError(reason: b == 0x0D || b == 0x0A ? "malformed header line" : "malformed header name")
            }
            guard colon > start else { throw ResponseError(reason: "malformed header line") }
            let end = ASCIIBytes.fieldValueEnd(bytes, from: colon &+ 1, to: n)
            guard end < n, bytes[end] == 0x0D, bytes[end &+ 1] == 0x0A else {
                let b = end < n ? bytes[end] : 0
                throw ResponseError(reason: b == 0x0D || b == 0x0A ? "malformed header line" : "malformed header value")
            }
            let next = end &+ 2
            switch ForwardingHeaders.classify(bytes, start..<colon) {
            case .host, .expect, .authorization, .xAPIKey, .other:
                // The request's client-only names are ordinary in a response.
                break
            case .contentLength:
                guard let length = ASCIIBytes.decimal(bytes, trimmed(bytes, colon &+ 1, end)) else {
                    throw ResponseError(reason: "invalid Content-Length")
                }
                if let previous = p.contentLength, previous != length { throw ResponseError(reason: "conflicting Content-Length") }
                p.contentLength = length
                contentLengthKept = true
            case .transferEncoding:
                p.transferEncoded = true
                // The final coding decides: chunked framing only when it is last.
                p.chunked = lastToken(bytes, trimmed(bytes, colon &+ 1, end)).map {
                    ASCIIBytes.equals(bytes, $0, lowercase: "chunked")
                } ?? false
                out.write(UnsafeRawBufferPointer(rebasing: bytes[run..<start]))
                run = next
            case .connection:
                ASCIIBytes.forEachListElement(bytes, trimmed(bytes, colon &+ 1, end)) { token in
                    if ASCIIBytes.equals(bytes, token, lowercase: "close") { closeToken = true }
                    else if ASCIIBytes.equals(bytes, token, lowercase: "keep-alive") { keepAliveToken = true }
                    else { connectionNamed.append(token) }
                }
                out.write(UnsafeRawBufferPointer(rebasing: bytes[run..<start]))
                run = next
            case .upgrade, .otherHopByHop:
                out.write(UnsafeRawBufferPointer(rebasing: bytes[run..<start]))
                run = next
            }
            start = next
        }
        out.write(UnsafeRawBufferPointer(rebasing: bytes[run..<start]))
        if p.transferEncoded {
            // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3): the stale length goes.
            p.contentLength = nil
        }
        if (p.transferEncoded && contentLengthKept) || !connectionNamed.isEmpty {
            // Lines already copied must go after all (rare): copy the header lines again, filtered.
            // "HTTP/1.1 " took the place of the status line's first nine bytes: its end is at the
            // same offset in both heads.
            out.rewind(to: fieldsStart)
            writeFiltered(bytes, from: fieldsStart, to: n, dropsContentLength: p.transferEncoded,
                          named: connectionNamed, into: &out)
        }
        if http10 && keepAliveToken { http10 = false }
        p.keepAlive = !closeToken && !http10
        return p
    }

    /// The header lines of `bytes[from..<to]` (already validated) that are forwarded.
    private static func writeFiltered(_ bytes: UnsafeRawBufferPointer, from: Int, to n: Int, dropsContentLength: Bool,
                                      named: [Range<Int>], into out: inout HeadWriter) {
        var start = from
        while start < n {
            var colon = start
            while bytes[colon] != UInt8(ascii: ":") { colon &+= 1 }
            var end = colon
            while bytes[end] != 0x0D { end &+= 1 }
            let name = start..<colon
            let kept: Bool
            switch ForwardingHeaders.classify(bytes, name) {
            case .host, .expect, .authorization, .xAPIKey, .other: kept = true
            case .contentLength: kept = !dropsContentLength
            case .transferEncoding, .connection, .upgrade, .otherHopByHop: kept = false
            }
            if kept && !named.contains(where: { ASCIIBytes.equalsIgnoringCase(bytes, $0, name) }) {
                out.write(UnsafeRawBufferPointer(rebasing: bytes[start..<end &+ 2]))
            }
            start = end &+ 2
        }
    }

    /// A value without its leading and trailing spaces and tabs.
    private static func trimmed(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> Range<Int> {
        var s = from, e = to
        while s < e, bytes[s] == 0x20 || bytes[s] == 0x09 { s &+= 1 }
        while e > s, bytes[e &- 1] == 0x20 || bytes[e &- 1] == 0x09 { e &-= 1 }
        return s..<e
    }

    private static func lastToken(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) -> Range<Int>? {
        var last: Range<Int>?
        ASCIIBytes.forEachListElement(bytes, value) { last = $0 }
        return last
    }
}

/// Follows a chunked body (RFC 9112 §7.1) to find its end and count its payload, without
/// changing a byte: chunk sizes, extensions and trailer fields go to the client as received.
struct ChunkedScanner {
    private enum State {
        case size(digits: Int, value: Int)
        /// After the size: extensions or whitespace until CR.
        case sizeTail
        case sizeLF
        case data(remaining: Int)
        case dataCR
        case dataLF
        /// At the start of a trailer line (or of the final empty line).
        case trailerLineStart
        case trailerLine
        case trailerLF
        case finalLF
        case finished
    }

    private var state = State.size(digits: 0, value: 0)
    private var lastChunk = false

    var isFinished: Bool { if case .finished = state { return true } else { return false } }

    /// Scans bytes until the body ends or they run out: (bytes that belong to the body, payload bytes among them).
    mutating func scan(_ bytes: UnsafeRawBufferPointer) throws(UpstreamResponseReader.ResponseError) -> (Int, Int) {
        typealias Failure = UpstreamResponseReader.ResponseError
        var i = 0
        var payload = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            switch state {
            case .size(let digits, let value):
                if let d = Self.hexValue(b) {
                    guard digits < 15 else { throw Failure(reason: "chunk size too large") }
                    state = .size(digits: digits + 1, value: value << 4 | d)
                } else {
                    guard digits > 0, b == UInt8(ascii: ";") || b == UInt8(ascii: " ") || b == UInt8(ascii: "\t")
                        || b == UInt8(ascii: "\r") else { throw Failure(reason: "malformed chunk size") }
                    lastChunk = value == 0
                    state = .sizeTail
                    pendingSize = value
                    continue  // re-read this byte as part of the tail
                }
            case .sizeTail:
                if b == UInt8(ascii: "\r") { state = .sizeLF }
                else if b == UInt8(ascii: "\n") || !ASCIIBytes.isFieldValueByte(b) {
                    throw Failure(reason: "malformed chunk line")
                }
            case .sizeLF:
                guard b == UInt8(ascii: "\n") else { throw Failure(reason: "malformed chunk line") }
                state = lastChunk ? .trailerLineStart : .data(remaining: pendingSize)
            case .data(let remaining):
                let take = min(remaining, n - i)
                payload += take
                i += take
                state = take == remaining ? .dataCR : .data(remaining: remaining - take)
                continue
            case .dataCR:
                guard b == UInt8(ascii: "\r") else { throw Failure(reason: "chunk data not followed by CRLF") }
                state = .dataLF
            case .dataLF:
                guard b == UInt8(ascii: "\n") else { throw Failure(reason: "chunk data not followed by CRLF") }
                state = .size(digits: 0, value: 0)
            case .trailerLineStart:
                if b == UInt8(ascii: "\r") { state = .finalLF }
                else if ASCIIBytes.isFieldValueByte(b) { state = .trailerLine }
                else { throw Failure(reason: "malformed trailer") }
            case .trailerLine:
                if b == UInt8(ascii: "\r") { state = .trailerLF }
                else if !ASCIIBytes.isFieldValueByte(b) { throw Failure(reason: "malformed trailer") }
            case .trailerLF:
                guard b == UInt8(ascii: "\n") else { throw Failure(reason: "malformed trailer") }
                state = .trailerLineStart
            case .finalLF:
                guard b == UInt8(ascii: "\n") else { throw Failure(reason: "malformed chunked body end") }
                state = .finished
                return (i + 1, payload)
            case .finished:
                return (i, payload)
            }
            i += 1
        }
        return (i, payload)
    }

    private var pendingSize = 0

    private static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(b - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}
