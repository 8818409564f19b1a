import CByteClasses
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
/// every body part (docs/routing-and-forwarding.md "Response (upstream → client)": the rules are the same; see `ResponseHeadParser`).
///
/// The head is parsed strictly: anything unusual is a `ResponseError` (502 when nothing was sent
/// yet), never a guess. Bytes after the end of a response are a protocol violation: the
/// connection is then not reused.
///
/// A tap: an `observer` (`ResponseObserver`) gets the final head's facts, the payload without
/// chunk framing (ranges of the same read buffers) and the complete end, as they are read. What
/// the client gets is the same with or without one.
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

    /// `propagate_request_id`: the id the client head carries as `x-request-id` (the upstream's
    /// own `x-request-id` lines are dropped from it). nil: the head is the upstream's.
    var requestIDForClient: String?
    /// Keep the upstream's own request id (`Head.upstreamRequestID`) for the request line.
    var capturesUpstreamRequestID = false

    /// Gets the response's facts, payload and complete end as they are read (see the protocol for
    /// the order and for who reports a cut). Without one, the reader makes no facts and looks at
    /// no payload: the only cost is the nil check.
    var observer: ResponseObserver?

    /// Changes the body the client gets, when it accepts the response (`ResponseBodyFilter`);
    /// nil: the body is relayed as framed.
    var bodyFilter: ResponseBodyFilter?
    /// `bodyFilter` accepted this response: its body is filtered and chunked by this side.
    private var filtering = false

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
        /// The upstream's `x-request-id` (or `request-id`), when `capturesUpstreamRequestID`.
        var upstreamRequestID: String? = nil
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
        /// Followed by `chunks`.
        case chunked
        case untilClose
    }

    private enum State {
        case head
        case body(Framing)
        case done
    }

    private let requestIsHead: Bool
    private var state = State.head
    /// A chunked body's scanner. Beside `state`, not in it, so that the state stays a word and a
    /// tag: it is copied at every read, and the scanner is three words.
    private var chunks: ChunkedScanner?
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
        var spare: ByteBuffer?
        try read(buffer, allocator: allocator, reusing: &spare, emit: emit)
    }

    /// Feeds one read; the client head, if this read completes one, is written into `spare`
    /// (taken: nil after) when there is one, else into a buffer from `allocator`. `buffer`
    /// consumed: read in place, not copied (a retain and a release per read).
    mutating func read(
        _ buffer: consuming ByteBuffer, allocator: ByteBufferAllocator, reusing spare: inout ByteBuffer?, emit: (Event) -> Void
    ) throws(ResponseError) {
        var buffer = buffer
        // The final head `parsedHead` makes, moved into its event (see `HeadProgress.final`).
        var made: Head?
        while buffer.readableBytes > 0 {
            switch state {
            case .done:
                // Unsolicited bytes after the response: the stream is desynchronised.
                return emit(.end(reusable: false))
            case .head:
                switch try readHead(from: &buffer, allocator: allocator, reusing: &spare, made: &made) {
                case .incomplete: return
                case .interim: continue
                case .final: emit(.head(made.take()!))
                }
                if case .done = state {
                    // A response without a body (HEAD, 204, 304, Content-Length: 0) ends with its head.
                    return complete(reusable: buffer.readableBytes == 0, emit: emit)
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
        if observer != nil { observeEnd() }
        return true
    }

    /// The response is complete: the observer hears it, then the exchange.
    @inline(__always)
    private mutating func complete(reusable: Bool, emit: (Event) -> Void) {
        if observer != nil { observeEnd() }
        emit(.end(reusable: reusable))
    }

    @inline(never)
    private mutating func observeEnd() { observer?.responseEnded(complete: true) }

    /// The chunk that ends a body this side chunked itself (`endsAtClose`).
    static let lastChunk = ChunkedFraming.lastChunk

    // MARK: Head

    /// What one read did to the head. (Not `Head??`: copies of a double optional went through
    /// generic value witnesses.)
    private enum HeadProgress {
        case incomplete
        /// An interim (1xx) head was read and skipped.
        case interim
        /// The final head was read: it is in the caller's `made`, to be moved into its event. (As
        /// a payload here it was copied into the event and destroyed twice, ~100 instructions a
        /// response; as a field of the reader it made every exchange larger, and its allocation
        /// left malloc's fast path: +300, docs/performance.md.)
        case final
    }

    private mutating func readHead(
        from buffer: inout ByteBuffer, allocator: ByteBufferAllocator, reusing spare: inout ByteBuffer?,
        made: inout Head?
    )
        throws(ResponseError) -> HeadProgress
    {
        // Fast path: nothing is buffered. The parse finds the head's end itself (no scan for
        // CR LF CR LF first, ~250 instructions), in the read's first `inPlaceHeadBytes` at most. A
        // head that does not end there, or does not parse, goes the way below, which waits for
        // the rest or reports the error as it always has.
        if headBytes == nil {
            var length = 0
            if let progress = try parsedHead(
                buffer, endFound: false, allocator: allocator, reusing: &spare, bodyRoom: 0, length: &length, made: &made)
            {
                buffer.moveReaderIndex(forwardBy: length)
                return progress
            }
            if let end = Self.headEnd(in: buffer) {
                let head = buffer.readSlice(length: end)!
                return try parsedHead(
                    head, endFound: true, allocator: allocator, reusing: &spare, bodyRoom: buffer.readableBytes, length: &length,
                    made: &made)!
            }
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
        var length = 0
        return try parsedHead(
            pending.getSlice(at: pending.readerIndex, length: end)!, endFound: true, allocator: allocator, reusing: &spare,
            bodyRoom: buffer.readableBytes, length: &length, made: &made)!
    }

    /// A read larger than `maxBodyRoom` is parsed in place in its first this many bytes: the
    /// client head's buffer is made this large (and kept as the connection's spare, as a small
    /// response's head and body are).
    static let inPlaceHeadBytes = 4 * 1024

    /// Offset just past the first CRLFCRLF at or after `start`, if any: sixteen positions a step
    /// (CByteClasses' `fluxgate_crlfcrlf16`; thirty-two while 35 bytes are left) while nineteen are, then `memchr` from LF
    /// to LF. (`memchr` alone was called once per line, ~50 instructions a line with the loop.)
    private static func headEnd(in buffer: ByteBuffer, from start: Int = 0) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard let base = bytes.baseAddress else { return nil }
            let n = bytes.count
            var from = start
            // Two blocks a step while 35 bytes are left (most of a head has no CR LF CR LF).
            while from &+ 35 <= n {
                let starts = fluxgate_crlfcrlf16(base + from) | fluxgate_crlfcrlf16(base + (from &+ 16)) << 16
                if starts != 0 { return from &+ starts.trailingZeroBitCount &+ 4 }
                from &+= 32
            }
            while from &+ 19 <= n {
                let starts = fluxgate_crlfcrlf16(base + from)
                if starts != 0 { return from &+ starts.trailingZeroBitCount &+ 4 }
                from &+= 16
            }
            var i = from + 1
            while i + 2 < n, let lf = memchr(base + i, 0x0A, n - 2 - i) {
                let at = base.distance(to: UnsafeRawPointer(lf))
                if bytes[at - 1] == 0x0D && bytes[at + 1] == 0x0D && bytes[at + 2] == 0x0A { return at + 3 }
                i = at + 1
            }
            return nil
        }
    }

    /// Parses the head at the start of `bytes`. `endFound`: `bytes` is the head, up to its empty
    /// line (`headEnd` found it), and `bodyRoom` the body bytes that came in the same read.
    /// Otherwise `bytes` is a whole read, of which the first `maxBodyRoom` (or, when it is
    /// larger, `inPlaceHeadBytes`) are parsed: nil when no head parses from them, with `spare` as
    /// it was and nothing else changed. `length`: the head's bytes. The client head gets room for
    /// the body bytes of the same read when they are at most `maxBodyRoom`, so the exchange can
    /// send a small response in one write.
    private mutating func parsedHead(
        _ bytes: ByteBuffer, endFound: Bool, allocator: ByteBufferAllocator, reusing spare: inout ByteBuffer?,
        bodyRoom: Int, length: inout Int, made: inout Head?
    ) throws(ResponseError) -> HeadProgress? {
        let readable = bytes.readableBytes
        let parsedBytes = endFound || readable <= Self.maxBodyRoom ? readable : Self.inPlaceHeadBytes
        guard parsedBytes <= Self.maxHeadBytes else { throw ResponseError(reason: "response head too large") }
        // The client head is written while the upstream's is parsed: the kept lines are copied in
        // runs as they are found valid. They are parts of the head, and "HTTP/1.1 " replaces the
        // status line's version, so the head's size plus the framing, `connection: close` and the
        // empty line bound it. (Parsed in place, the bytes parsed bound the head, and with a small
        // read the head and the body's room are the read.)
        let close = announcesClose
        let requestID = requestIDForClient
        let bound = parsedBytes + 64 + (requestID?.utf8.count ?? 0)
        let capacity = endFound && bodyRoom <= Self.maxBodyRoom ? bound + bodyRoom : bound
        let tookSpare = spare != nil
        var out: ByteBuffer
        if var reused = spare {
            spare = nil
            // No allocation when nothing else holds it and it is large enough.
            reused.clear(minimumCapacity: capacity)
            out = reused
        } else {
            out = allocator.buffer(capacity: capacity)
        }
        var parsed = ResponseHeadParser()
        var failure: ResponseError?
        var facts: ResponseFacts.Fields? = observer == nil && bodyFilter == nil ? nil : ResponseFacts.Fields()
        let captures = capturesUpstreamRequestID
        var upstreamRequestID: String?
        let headRequest = requestIsHead
        out.writeHead(maxBytes: bound) { out in
            bytes.withUnsafeReadableBytes { bytes in
                do throws(ResponseError) {
                    parsed = try ResponseHeadParser.parse(
                        UnsafeRawBufferPointer(rebasing: bytes[..<parsedBytes]), into: &out, facts: &facts,
                        dropsRequestID: requestID != nil)
                    if captures, let range = parsed.upstreamRequestID, !range.isEmpty {
                        upstreamRequestID = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range.prefix(128)]), as: UTF8.self)
                    }
                    // The lines this side adds, in the same write: a second `writeHead` cost ~80
                    // instructions per response (docs/performance.md "Session 16, heads"). An
                    // interim head's are written too and dropped with it.
                    if let requestID {
                        out.write("x-request-id: ")
                        out.write(string: requestID)
                        out.write("\r\n")
                    }
                    if Self.addsChunked(parsed, requestIsHead: headRequest) { out.write("transfer-encoding: chunked\r\n") }
                    // Say so, or a keep-alive client sends its next request into the close (a drain
                    // during load lost requests this way).
                    if close { out.write("connection: close\r\n") }
                    out.write("\r\n")
                } catch {
                    failure = error
                }
            }
        }
        if let failure {
            guard endFound else {
                if tookSpare { spare = out }
                return nil
            }
            throw failure
        }
        length = parsed.headLength
        if !endFound, readable > Self.maxBodyRoom, readable &- length <= Self.maxBodyRoom {
            // The body's room after all (a read a little larger than `maxBodyRoom`).
            out.reserveCapacity(readable &+ 64)
        }
        if parsed.status < 200 {
            // 100 Continue and 103 Early Hints are interim: the final response follows (NIO's
            // client codec dropped them too). 101 would switch protocols, which was not asked for.
            guard parsed.status != 101 else { throw ResponseError(reason: "unexpected 101 Switching Protocols") }
            return .interim
        }
        status = parsed.status
        if let facts, observer != nil {
            observeHead(bytes, length: length, status: parsed.status, fields: facts)
        }
        let bodyless = requestIsHead || parsed.status == 204 || parsed.status == 304
        var keepAlive = parsed.keepAlive
        let addsChunked: Bool
        if bodyless {
            state = .done
            addsChunked = false
        } else if parsed.chunked {
            addsChunked = true
            state = .body(.chunked)
            chunks = ChunkedScanner(rules: .response)
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
        if let bodyFilter, let facts {
            // Only bodies this side chunks again: chunked, or ending at the close with no coding.
            let rechunkable = parsed.chunked || (!parsed.transferEncoded && addsChunked)
            filtering =
                bodyFilter.accepts(status: parsed.status, head: Self.prefix(bytes, length), fields: facts) && rechunkable && !bodyless
        }
        assert(addsChunked == Self.addsChunked(parsed, requestIsHead: requestIsHead))
        made = Head(
            status: parsed.status, clientHead: out, announcesClose: close, keepAlive: keepAlive,
            upstreamRequestID: upstreamRequestID)
        return .final
    }

    /// Whether the client's head gets `transfer-encoding: chunked`: a body that is chunked, has
    /// another coding, or ends at the close (the framing `parsedHead` chooses from the same facts).
    @inline(__always)
    private static func addsChunked(_ parsed: ResponseHeadParser, requestIsHead: Bool) -> Bool {
        let bodyless = requestIsHead || parsed.status == 204 || parsed.status == 304
        return !bodyless && (parsed.chunked || parsed.transferEncoded || parsed.contentLength == nil)
    }

    /// The first `length` bytes of `bytes` (the head of a read parsed in place).
    private static func prefix(_ bytes: ByteBuffer, _ length: Int) -> ByteBuffer {
        length == bytes.readableBytes ? bytes : bytes.getSlice(at: bytes.readerIndex, length: length)!
    }

    /// The head's facts to the observer, its first `length` bytes where they lie in `bytes`.
    /// (`mutating`, as the payload's and the end's: the reader is then read in place, where a
    /// non-mutating call had it, ~150 bytes, copied with `memcpy` first; passed the observer, or
    /// through `unowned(unsafe)`, it was retained and released, docs/performance.md "Session 16, usagetap".)
    @inline(never)
    private mutating func observeHead(_ bytes: ByteBuffer, length: Int, status: UInt, fields: ResponseFacts.Fields) {
        bytes.withUnsafeReadableBytes {
            observer?.responseHead(
                ResponseFacts(status: status, head: UnsafeRawBufferPointer(start: $0.baseAddress, count: length), fields: fields))
        }
    }

    // MARK: Body

    private mutating func readBody(
        _ framing: Framing, from buffer: inout ByteBuffer, allocator: ByteBufferAllocator,
        emit: (Event) -> Void
    ) throws(ResponseError) {
        switch framing {
        case .length(let remaining):
            let count = min(remaining, buffer.readableBytes)
            if observer != nil { observePayload(buffer, count: count) }
            emit(.body(buffer.readSlice(length: count)!, payload: count))
            if count == remaining {
                state = .done
                complete(reusable: buffer.readableBytes == 0, emit: emit)
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            } else {
                state = .body(.length(remaining: remaining - count))
            }
        case .chunked where filtering:
            try readFilteredChunks(from: &buffer, allocator: allocator, emit: emit)
        case .untilClose where filtering:
            let count = buffer.readableBytes
            if observer != nil { observePayload(buffer, count: count) }
            var out = allocator.buffer(capacity: count)
            buffer.withUnsafeReadableBytes { bodyFilter?.filter($0, into: &out) }
            buffer.moveReaderIndex(forwardBy: count)
            emitChunk(out, allocator: allocator, emit: emit)
        case .chunked:
            let (consumed, payload) = try Self.scan(buffer, with: &chunks!, observer: observer)
            // The bytes go on as framed: only the payload count comes from the scan.
            emit(.body(buffer.readSlice(length: consumed)!, payload: payload))
            if chunks!.isFinished {
                state = .done
                complete(reusable: buffer.readableBytes == 0, emit: emit)
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            }
        case .untilClose:
            let count = buffer.readableBytes
            var framed = allocator.buffer(capacity: 18)
            ChunkedFraming.writeSizeLine(count, into: &framed)
            if observer != nil { observePayload(buffer, count: count) }
            emit(.body(framed, payload: 0))
            emit(.body(buffer.readSlice(length: count)!, payload: count))
            emit(.body(ChunkedFraming.crlf, payload: 0))
        }
    }

    /// A chunked body through `bodyFilter`: the payload of the chunks read, filtered, as one chunk
    /// of this side's; the upstream's last chunk (and trailers) as a plain last chunk.
    private mutating func readFilteredChunks(
        from buffer: inout ByteBuffer, allocator: ByteBufferAllocator, emit: (Event) -> Void
    ) throws(ResponseError) {
        var out = allocator.buffer(capacity: buffer.readableBytes)
        var consumed = 0
        let observer = self.observer
        let filter = bodyFilter
        do throws(ChunkedError) {
            try buffer.withUnsafeReadableBytes { bytes throws(ChunkedError) in
                while case .data(let data) = try chunks!.next(bytes, at: &consumed) {
                    let payload = UnsafeRawBufferPointer(rebasing: bytes[data])
                    observer?.responsePayload(payload)
                    filter?.filter(payload, into: &out)
                }
            }
        } catch {
            throw ResponseError(reason: error.reason)
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        guard chunks!.isFinished else { return emitChunk(out, allocator: allocator, emit: emit) }
        filter?.finish(into: &out)
        emitChunk(out, allocator: allocator, emit: emit)
        emit(.body(ByteBuffer(staticString: ChunkedFraming.lastChunk), payload: 0))
        state = .done
        complete(reusable: buffer.readableBytes == 0, emit: emit)
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
    }

    /// `payload` as one chunk for the client (nothing when empty: a chunk of size 0 would end the body).
    private func emitChunk(_ payload: ByteBuffer, allocator: ByteBufferAllocator, emit: (Event) -> Void) {
        guard payload.readableBytes > 0 else { return }
        var framed = allocator.buffer(capacity: payload.readableBytes + 20)
        ChunkedFraming.writeSizeLine(payload.readableBytes, into: &framed)
        framed.writeImmutableBuffer(payload)
        framed.writeImmutableBuffer(ChunkedFraming.crlf)
        emit(.body(framed, payload: payload.readableBytes))
    }

    /// A body that ends at the close, filtered: what the filter still holds, as a chunk, before
    /// the exchange writes the last chunk (empty when there is nothing, or no filter).
    mutating func filteredTail(allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard filtering, let bodyFilter else { return nil }
        var out = allocator.buffer(capacity: 0)
        bodyFilter.finish(into: &out)
        guard out.readableBytes > 0 else { return nil }
        var framed = allocator.buffer(capacity: out.readableBytes + 20)
        ChunkedFraming.writeSizeLine(out.readableBytes, into: &framed)
        framed.writeImmutableBuffer(out)
        framed.writeImmutableBuffer(ChunkedFraming.crlf)
        return framed
    }

    /// Follows the chunks of `buffer` until the body ends or the bytes run out: (bytes of the
    /// body scanned, payload bytes among them), the payload handed to `observer` on the way.
    /// (Apart from `readBody`, which stays small enough to be inlined into the exchange's read.)
    @inline(never)
    private static func scan(
        _ buffer: ByteBuffer, with scanner: inout ChunkedScanner,
        observer: ResponseObserver?
    ) throws(ResponseError) -> (Int, Int) {
        var consumed = 0
        var payload = 0
        do throws(ChunkedError) {
            try buffer.withUnsafeReadableBytes { bytes throws(ChunkedError) in
                while case .data(let data) = try scanner.next(bytes, at: &consumed) {
                    payload += data.count
                    observer?.responsePayload(UnsafeRawBufferPointer(rebasing: bytes[data]))
                }
            }
        } catch {
            throw ResponseError(reason: error.reason)
        }
        return (consumed, payload)
    }

    /// The next `count` bytes of `buffer` to the observer. Out of line: the relay without an
    /// observer only tests for one.
    @inline(never)
    private mutating func observePayload(_ buffer: ByteBuffer, count: Int) {
        buffer.withUnsafeReadableBytes { observer?.responsePayload(UnsafeRawBufferPointer(start: $0.baseAddress, count: count)) }
    }
}
