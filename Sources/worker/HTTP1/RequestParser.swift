import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// The HTTP/1.1 request parser of a client connection (RFC 9112), and the place where request
/// smuggling is stopped: whatever two implementations could frame differently is refused.
///
/// * Lines end in CRLF; a bare LF or CR anywhere in a head or a chunk line is refused, as are
///   obs-fold continuation lines and whitespace before a header's colon.
/// * Method: upper-case letters, `-` and `_` (nginx's rule); request-target: visible ASCII;
///   version `HTTP/1.x` (anything but 1.1 is answered 505 by the checks after the parser).
/// * Header names are tokens; values are visible ASCII, obs-text, spaces and tabs, with the
///   spaces and tabs around them removed.
/// * Body framing: one `Content-Length` of digits, or one `Transfer-Encoding: chunked` (any case);
///   both, two of either, a list, or any other coding is refused. Chunk sizes are hex with at
///   most 15 significant digits; chunk extensions are read past, trailer fields are checked like
///   header fields and dropped.
/// * Empty lines before a request line are skipped (RFC 9112 §2.2). A head that has not all
///   arrived is refused at the first byte that cannot be part of a request line
///   (`RequestLinePrefix`): garbage without a line end gets its 400 at once.
///
/// Pull-based: `append` what a read delivered, then take events with `next()` until it returns
/// nil. Body bytes are slices of the read, so a request body is never copied here; a chunked body
/// is followed by `ChunkedScanner` (the request side's rules), which keeps no bytes. Only a head
/// split across reads is kept between reads, bounded by the limits.
struct RequestParser {
    private enum State {
        /// Before or inside a request head. `scanned` bytes of the buffer are known not to end
        /// the head (so a head arriving byte by byte is scanned once, not once per byte).
        case head(scanned: Int)
        case fixedBody(remaining: Int)
        /// A chunked body, followed by `chunks`.
        case chunked
        case stopped
    }

    /// What `nextPart()` found: a `RequestEvent` without the head in it. The head (~170
    /// bytes) waits in the parser until `takeHead()` moves it out: carried in the event, it
    /// was copied by `memcpy` a dozen times per request between the parser, the connection's
    /// checks and the handler, with outlined copies and destroys of the event around them.
    enum Part {
        /// A complete head: `takeHead()` has it.
        case head
        case body(ByteBuffer)
        case end
        case malformed(RequestParseError)
    }

    /// The few numbers of the worker's limits the parser needs (`WorkerLimits.parser` makes them;
    /// docs/routing-and-forwarding.md, "Built-in limits", has their values).
    struct Limits: Sendable, Hashable {
        /// Longest request-target (the checks after the parser answer 414 above it).
        var maxRequestTargetBytes: Int
        /// Sum of header name and value bytes of one request (431); also bounds a trailer section.
        var maxHeaderBytes: Int
        /// Header lines in one request (431).
        var maxHeaderCount: Int
    }

    private let limits: Limits
    private var state = State.head(scanned: 0)
    private var buffer: ByteBuffer?
    /// How much of an incomplete head's request line is known to be one.
    private var requestLine = RequestLinePrefix()
    /// The chunked body being read. Beside `state`, not in it, so that the state stays a word and
    /// a tag: it is copied at every event, and the scanner is three words.
    private var chunks = ChunkedScanner(rules: .request(maxTrailerBytes: 0))
    /// The previous head's bytes and field list, kept so the next head is written into them:
    /// once nothing holds that head any more (its exchange has ended), they are the parser's
    /// alone and no buffer or array is allocated and freed per request (~900 instructions,
    /// docs/performance.md). While the previous head is still in use (a pipelined request),
    /// the next one gets storage of its own, as before.
    private var spare = SpareHead()
    /// The head `nextPart()` last returned `.head` for, until `takeHead()`.
    private var parsedHead: RequestHead?

    /// Storage of a head that is kept only while small (a connection does not hold a large head's
    /// buffer between requests).
    private struct SpareHead {
        var bytes: ByteBuffer?
        var fields: [RequestHead.Field] = []
        static let maxBytes = 4096
        static let maxFields = 64
    }

    init(limits: Limits) { self.limits = limits }

    /// The longest head kept while it is incomplete: the request-target and the header bytes at
    /// their limits, plus the bytes that frame them. The checks after the parser (414, 431) see
    /// every head below it.
    private var maxHeadBytes: Int { limits.maxRequestTargetBytes + limits.maxHeaderBytes + 4 * limits.maxHeaderCount + 64 }

    /// Bytes from the connection, in order.
    mutating func append(_ bytes: ByteBuffer) {
        if case .stopped = state { return }
        if buffer == nil {
            buffer = bytes
        } else {
            buffer!.writeImmutableBuffer(bytes)
        }
    }

    /// The next event the appended bytes make, or nil once more bytes are needed.
    mutating func next() -> RequestEvent? {
        nextPart().map { event($0) }
    }

    /// The event of a part `nextPart()` returned (a head is taken out of the parser).
    mutating func event(_ part: Part) -> RequestEvent {
        switch part {
        case .head: return .head(takeHead())
        case .body(let bytes): return .body(bytes)
        case .end: return .end
        case .malformed(let error): return .malformed(error)
        }
    }

    /// The head of the `.head` part just returned, moved out of the parser (once per head).
    mutating func takeHead() -> RequestHead {
        parsedHead.take()!
    }

    /// The next part the appended bytes make, or nil once more bytes are needed.
    mutating func nextPart() -> Part? {
        if pendingEnd {
            pendingEnd = false
            return .end
        }
        // Taken out of `self` while parsing, so it is not copied on write.
        guard var bytes = buffer else { return nil }
        buffer = nil
        let event = next(from: &bytes)
        if case .malformed = event {
            state = .stopped
        } else if bytes.readableBytes > 0 {
            buffer = bytes
        }
        return event
    }

    /// Set when a request's last bytes were returned: `.end` is the next event, before anything
    /// of a pipelined request.
    private var pendingEnd = false

    /// The whole `Content-Length` body of the current request (`length` bytes) and its end at
    /// once, when none of it was taken yet and the bytes appended so far hold all of it (a small
    /// body that came with its head): a slice of those bytes, as `.body` would give it, and the
    /// next event is the next request's. nil, and nothing taken, otherwise: the caller then reads
    /// `.body` and `.end` as usual. The model stage reads a body that arrived whole this way,
    /// without an event per part (docs/performance.md). Inlined into the connection's body at
    /// hand, its one caller: the call and its result cost ~15 instructions per model-routed request.
    @inline(__always)
    mutating func takeFixedBody(length: Int) -> ByteBuffer? {
        guard case .fixedBody(let remaining) = state, remaining == length, !pendingEnd, var bytes = buffer,
            bytes.readableBytes >= remaining
        else { return nil }
        buffer = nil
        state = .head(scanned: 0)
        // The usual body ends the bytes: those bytes are the body, with no slice made of them
        // (~80 instructions per model-routed request, docs/performance.md "gateway7").
        if bytes.readableBytes == remaining { return bytes }
        let body = bytes.readSlice(length: remaining)!
        buffer = bytes
        return body
    }

    private mutating func next(from bytes: inout ByteBuffer) -> Part? {
        switch state {
        case .stopped:
            return nil

        case .head(let scanned):
            return head(from: &bytes, scanned: scanned)

        case .fixedBody(let remaining):
            guard bytes.readableBytes > 0 else { return nil }
            let count = min(remaining, bytes.readableBytes)
            let slice = bytes.readSlice(length: count)!
            if count == remaining {
                state = .head(scanned: 0)
                pendingEnd = true
            } else {
                state = .fixedBody(remaining: remaining - count)
            }
            return .body(slice)

        case .chunked:
            guard bytes.readableBytes > 0 else { return nil }
            var scanned = 0
            let step: ChunkedScanner.Step
            do {
                step = try bytes.withUnsafeReadableBytes { p throws(ChunkedError) in try chunks.next(p, at: &scanned) }
            } catch {
                return .malformed(.badRequest)
            }
            switch step {
            case .data(let data):
                // The data ends where the scan stopped: the slice is the read's bytes, de-chunked.
                bytes.moveReaderIndex(forwardBy: data.lowerBound)
                return .body(bytes.readSlice(length: data.count)!)
            case .needsMore:
                bytes.moveReaderIndex(forwardBy: scanned)
                return nil
            case .finished:
                bytes.moveReaderIndex(forwardBy: scanned)
                state = .head(scanned: 0)
                return .end
            }
        }
    }

    // MARK: Head

    private mutating func head(from bytes: inout ByteBuffer, scanned: Int) -> Part? {
        // Empty lines before the request line.
        while bytes.readableBytes >= 2, bytes.getInteger(at: bytes.readerIndex, as: UInt16.self) == 0x0D0A, scanned == 0 {
            bytes.moveReaderIndex(forwardBy: 2)
        }
        guard bytes.readableBytes > 0 else { return nil }
        guard let length = Self.headLength(bytes, from: scanned) else {
            // Bytes that cannot start a request are answered now, not after the header timeout.
            guard bytes.withUnsafeReadableBytes({ requestLine.check($0) }) else { return .malformed(.badRequest) }
            if bytes.readableBytes > maxHeadBytes {
                // Still in the request line: the target is what is too long.
                let lineEnded = bytes.readableBytesView.prefix(maxHeadBytes).contains(0x0A)
                return .malformed(lineEnded ? .headerFieldsTooLarge : .uriTooLong)
            }
            state = .head(scanned: max(0, bytes.readableBytes - 3))
            return nil
        }
        requestLine = RequestLinePrefix()
        guard length <= maxHeadBytes else {
            let lineEnded = bytes.readableBytesView.prefix(maxHeadBytes).contains(0x0A)
            return .malformed(lineEnded ? .headerFieldsTooLarge : .uriTooLong)
        }
        // Swapped out and back, not copied: a copy and reset retained and released its two
        // references (docs/performance.md "Session 16, heads").
        var storage = SpareHead()
        swap(&storage, &spare)
        // Parsed into `parsedHead` where it stays: returned, it was copied once more.
        let failure = bytes.withUnsafeReadableBytes {
            Self.parseHead(UnsafeRawBufferPointer(rebasing: $0[..<length]), limits: limits, reusing: &storage, into: &parsedHead)
        }
        swap(&storage, &spare)
        bytes.moveReaderIndex(forwardBy: length)
        if let failure { return .malformed(failure) }
        let facts = parsedHead!.facts
        if facts.framing == .chunked {
            state = .chunked
            chunks = ChunkedScanner(rules: .request(maxTrailerBytes: limits.maxHeaderBytes))
        } else if facts.contentLength > 0 {
            state = .fixedBody(remaining: facts.contentLength)
        } else {
            state = .head(scanned: 0)
            pendingEnd = true
        }
        return .head
    }

    /// The length of the head at the start of `bytes` up to and including the empty line that
    /// ends it, or nil when it has not all arrived. Looks for LF (CR) LF from `scanned` on: a
    /// bare LF is found too, and refused by the full parse.
    private static func headLength(_ bytes: ByteBuffer, from scanned: Int) -> Int? {
        bytes.withUnsafeReadableBytes { p in
            var i = scanned
            let count = p.count
            while i < count {
                guard let lf = memchr(p.baseAddress! + i, 0x0A, count - i) else { return nil }
                let at = p.baseAddress!.distance(to: lf)
                if at + 1 < count && p[at + 1] == 0x0A { return at + 2 }
                if at + 2 < count && p[at + 1] == 0x0D && p[at + 2] == 0x0A { return at + 3 }
                if at + 2 >= count { return nil }
                i = at + 1
            }
            return nil
        }
    }

    /// Parses a whole head (request line through the empty line) into `head`, its bytes and
    /// fields into `spare`'s storage when nothing else holds it; `spare` then keeps the new
    /// head's storage (when small). Returns why the bytes are not a head, or nil.
    private static func parseHead(
        _ p: UnsafeRawBufferPointer, limits: Limits, reusing spare: inout SpareHead, into head: inout RequestHead?
    ) -> RequestParseError? {
        let bad = RequestParseError.badRequest
        var i = 0
        // Request line.
        while i < p.count, isMethodByte(p[i]) { i += 1 }
        let methodEnd = i
        guard methodEnd > 0, methodEnd <= 32, i < p.count, p[i] == 0x20 else { return bad }
        i += 1
        let targetStart = i
        i = ASCIIBytes.targetEnd(p, from: i, to: p.count)
        let targetEnd = i
        guard targetEnd > targetStart, i + 10 <= p.count, p[i] == 0x20,
            p[i + 1] == UInt8(ascii: "H"), p[i + 2] == UInt8(ascii: "T"), p[i + 3] == UInt8(ascii: "T"),
            p[i + 4] == UInt8(ascii: "P"), p[i + 5] == UInt8(ascii: "/"), p[i + 6] == UInt8(ascii: "1"),
            p[i + 7] == UInt8(ascii: "."), p[i + 8] &- UInt8(ascii: "0") < 10,
            p[i + 9] == 0x0D, i + 10 < p.count, p[i + 10] == 0x0A
        else { return bad }
        let minor = Int(p[i + 8] &- UInt8(ascii: "0"))
        i += 11

        // Offsets in `RequestHead` count from the request-target, where its bytes start.
        let base = targetStart
        // Moved out of `spare`: unique unless the previous head is still held.
        var fields: [RequestHead.Field] = []
        swap(&fields, &spare.fields)
        // The previous head's fields are written over in place and only the surplus is removed
        // at the end: `removeAll(keepingCapacity:)` is an unspecialised `replaceSubrange` call
        // (~85 instructions per request, docs/performance.md "Session 16, heads").
        var used = 0
        // Asked only when short: the call is not inlined and checks uniqueness (~40 instructions).
        if fields.capacity < 12 { fields.reserveCapacity(12) }
        var headerBytes = 0
        var contentLength: Int?
        var chunked = false
        var facts = RequestHead.Facts()
        // Offsets stay below `p.count` (at most the head's limit): the loop's arithmetic wraps
        // (`&+`) and its ranges are made unchecked, which saved ~30 instructions a field.
        while true {
            guard i + 1 < p.count else { return bad }
            if p[i] == 0x0D {
                guard p[i + 1] == 0x0A, i + 2 == p.count else { return bad }
                break
            }
            let nameStart = i
            i = ASCIIBytes.tokenEnd(p, from: i, to: p.count)
            let name = Range(uncheckedBounds: (nameStart, i))
            guard !name.isEmpty, i < p.count, p[i] == UInt8(ascii: ":") else { return bad }
            i &+= 1
            while i < p.count, p[i] == 0x20 || p[i] == 0x09 { i &+= 1 }
            let valueStart = i
            i = ASCIIBytes.fieldValueEnd(p, from: i, to: p.count)
            guard i &+ 1 < p.count, p[i] == 0x0D, p[i &+ 1] == 0x0A else { return bad }
            var valueEnd = i
            while valueEnd > valueStart, p[valueEnd &- 1] == 0x20 || p[valueEnd &- 1] == 0x09 { valueEnd &-= 1 }
            let value = Range(uncheckedBounds: (valueStart, valueEnd))
            i &+= 2
            guard used < limits.maxHeaderCount else { return .headerFieldsTooLarge }
            headerBytes &+= name.count &+ value.count
            guard headerBytes <= limits.maxHeaderBytes else { return .headerFieldsTooLarge }
            let kind = HeaderNameClass.classify(p, name)
            switch kind {
            case .host:
                facts.hostCount += 1
                facts.hostIsBlank = value.isEmpty
            case .expect:
                ASCIIBytes.forEachListElement(p, value) { element in
                    if ASCIIBytes.equals(p, element, lowercase: "100-continue") { facts.expectsContinue = true }
                }
            case .upgrade:
                facts.upgrade = true
            case .xAPIKey:
                if facts.xAPIKeyValue == nil { facts.xAPIKeyValue = value.lowerBound - base..<value.upperBound - base }
            case .connection:
                ASCIIBytes.forEachListElement(p, value) { element in
                    switch element.count {
                    case 5 where ASCIIBytes.equals(p, element, lowercase: "close"): facts.connectionClose = true
                    case 7 where ASCIIBytes.equals(p, element, lowercase: "upgrade"): facts.upgrade = true
                    case 10 where ASCIIBytes.equals(p, element, lowercase: "keep-alive"): facts.connectionKeepAlive = true
                    default: facts.connectionNamesHeaders = true
                    }
                }
            case .authorization:
                if facts.authorizationValue == nil {
                    facts.authorizationValue = value.lowerBound - base..<value.upperBound - base
                }
            case .contentLength:
                guard contentLength == nil, !chunked, let length = ASCIIBytes.decimal(p, value) else { return bad }
                contentLength = length
            case .transferEncoding:
                guard contentLength == nil, !chunked, ASCIIBytes.equals(p, value, lowercase: "chunked") else { return bad }
                chunked = true
            case .requestID:
                if facts.requestIDValue == nil { facts.requestIDValue = value.lowerBound - base..<value.upperBound - base }
            case .otherHopByHop, .other, .anthropicRequestID:
                break
            }
            let field = RequestHead.Field(
                name: Range(uncheckedBounds: (name.lowerBound &- base, name.upperBound &- base)),
                value: Range(uncheckedBounds: (value.lowerBound &- base, value.upperBound &- base)),
                kind: kind)
            if used < fields.count { fields[used] = field } else { fields.append(field) }
            used &+= 1
        }
        if used < fields.count { fields.removeSubrange(used...) }

        facts.framing = chunked ? .chunked : contentLength != nil ? .contentLength : .none
        facts.contentLength = contentLength ?? 0
        let kept = UnsafeRawBufferPointer(rebasing: p[base..<i])
        var copied: ByteBuffer
        if var bytes = spare.bytes.take() {
            // No allocation when unique and large enough (`clear` allocates otherwise).
            bytes.clear(minimumCapacity: kept.count)
            // Copied into the writable bytes `clear` made (unique, at least this large):
            // `writeBytes` went through `_setBytes`, a call that checks capacity and uniqueness
            // again (~150 instructions with its copy).
            precondition(bytes.writableBytes >= kept.count)
            bytes.withUnsafeMutableWritableBytes { $0.copyMemory(from: kept) }
            bytes.moveWriterIndex(forwardBy: kept.count)
            copied = bytes
        } else {
            copied = ByteBuffer(bytes: kept)
        }
        if copied.capacity <= SpareHead.maxBytes { spare.bytes = copied }
        if fields.capacity <= SpareHead.maxFields { spare.fields = fields }
        head = RequestHead(
            method: method(UnsafeRawBufferPointer(rebasing: p[..<methodEnd])),
            target: 0..<targetEnd - base,
            version: HTTPVersion(major: 1, minor: minor),
            headerBytes: copied,
            fields: fields, facts: facts)
        return nil
    }

    private static func method(_ bytes: UnsafeRawBufferPointer) -> HTTPMethod {
        switch bytes.count {
        case 3 where bytes[0] == UInt8(ascii: "G") && bytes[1] == UInt8(ascii: "E") && bytes[2] == UInt8(ascii: "T"):
            return .GET
        case 4
        where bytes[0] == UInt8(ascii: "P") && bytes[1] == UInt8(ascii: "O") && bytes[2] == UInt8(ascii: "S")
            && bytes[3] == UInt8(ascii: "T"):
            return .POST
        default:
            return HTTPMethod(rawValue: String(decoding: bytes, as: UTF8.self))
        }
    }

    // MARK: Bytes

    @inline(__always)
    static func isMethodByte(_ b: UInt8) -> Bool {
        b &- UInt8(ascii: "A") < 26 || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
    }
}
