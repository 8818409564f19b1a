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
    /// Where the upstream's own request id is: `X-Request-Id`, else `Request-Id` (Anthropic).
    var xRequestID: Range<Int>?
    var anthropicRequestID: Range<Int>?
    var upstreamRequestID: Range<Int>? { xRequestID ?? anthropicRequestID }
    /// The head's bytes: up to and including its empty line.
    var headLength = 0

    typealias ResponseError = UpstreamResponseReader.ResponseError

    /// Parses the head at the start of `bytes`, up to its first empty line (`headLength`; any
    /// bytes after it are not looked at), writing the kept part to `out` (the final framing lines
    /// and the empty line are the caller's). `facts`, when not nil (an observer is attached), gets
    /// where the values of the headers behind `ResponseFacts` are. Lines are read up to the empty
    /// one, so the first CR LF CR LF is where the head ends, as a separate scan for it would
    /// find; bytes that end before it are an error ("response head not terminated").
    static func parse(
        _ bytes: UnsafeRawBufferPointer, into out: inout HeadWriter,
        facts: inout ResponseFacts.Fields?, dropsRequestID: Bool = false
    ) throws(ResponseError) -> ResponseHeadParser {
        var p = ResponseHeadParser()
        // Below `n` every byte has one after it: a CR is read with the LF that must follow.
        let n = bytes.count &- 1
        guard n > 0 else { throw ResponseError(reason: "response head not terminated") }
        // Status line: HTTP/1.x SP 3DIGIT [SP reason], the reason any field-value bytes.
        let statusEnd = ASCIIBytes.fieldValueEnd(bytes, from: 0, to: n)
        guard statusEnd < n, bytes[statusEnd] == 0x0D, bytes[statusEnd + 1] == 0x0A, statusEnd >= 12,
            bytes[0] == UInt8(ascii: "H"), bytes[1] == UInt8(ascii: "T"), bytes[2] == UInt8(ascii: "T"),
            bytes[3] == UInt8(ascii: "P"), bytes[4] == UInt8(ascii: "/"), bytes[5] == UInt8(ascii: "1"),
            bytes[6] == UInt8(ascii: "."), bytes[8] == UInt8(ascii: " ")
        else {
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
        // nil until a header is named: an empty array was released at every return (~18).
        var connectionNamed: [Range<Int>]?
        var contentLengthKept = false

        out.write("HTTP/1.1 ")
        let fieldsStart = statusEnd &+ 2
        // The kept bytes not yet copied: from `run` to the current line.
        var run = 9
        var start = fieldsStart
        var headEnd = -1
        while start < n {
            let colon = ASCIIBytes.tokenEnd(bytes, from: start, to: n)
            guard colon < n, bytes[colon] == UInt8(ascii: ":") else {
                if colon == start, bytes[start] == 0x0D, bytes[start &+ 1] == 0x0A {
                    // The empty line (tested here, off the path of every other line).
                    headEnd = start
                    break
                }
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
            switch HeaderNameClass.classify(bytes, start..<colon) {
            case .other:
                // Of the facts, only `content-type` and `content-encoding` (12 and 16 bytes) are
                // among these: other lengths are not handed over (the call cost ~13 a header).
                if facts != nil, colon &- start == 12 || colon &- start == 16 {
                    facts!.note(bytes, name: start..<colon, value: (colon &+ 1)..<end)
                }
            case .host, .expect, .authorization, .xAPIKey:
                // The request's client-only names are ordinary in a response.
                break
            case .requestID:
                if p.xRequestID == nil { p.xRequestID = trimmed(bytes, colon &+ 1, end) }
                if facts != nil { facts!.note(bytes, name: start..<colon, value: trimmed(bytes, colon &+ 1, end)) }
                if dropsRequestID {
                    // propagate_request_id: the client gets the proxy's id instead.
                    out.write(UnsafeRawBufferPointer(rebasing: bytes[run..<start]))
                    run = next
                }
            case .anthropicRequestID:
                if p.anthropicRequestID == nil { p.anthropicRequestID = trimmed(bytes, colon &+ 1, end) }
                if facts != nil { facts!.note(bytes, name: start..<colon, value: trimmed(bytes, colon &+ 1, end)) }
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
                p.chunked =
                    lastToken(bytes, trimmed(bytes, colon &+ 1, end)).map {
                        ASCIIBytes.equals(bytes, $0, lowercase: "chunked")
                    } ?? false
                out.write(UnsafeRawBufferPointer(rebasing: bytes[run..<start]))
                run = next
            case .connection:
                let value = trimmed(bytes, colon &+ 1, end)
                // The usual values whole, without walking the list a byte at a time (~130 instructions).
                if ASCIIBytes.equals(bytes, value, lowercase: "keep-alive") {
                    keepAliveToken = true
                } else if ASCIIBytes.equals(bytes, value, lowercase: "close") {
                    closeToken = true
                } else {
                    ASCIIBytes.forEachListElement(bytes, value) { token in
                        if ASCIIBytes.equals(bytes, token, lowercase: "close") {
                            closeToken = true
                        } else if ASCIIBytes.equals(bytes, token, lowercase: "keep-alive") {
                            keepAliveToken = true
                        } else {
                            connectionNamed = (connectionNamed ?? []) + [token]
                        }
                    }
                }
                out.write(UnsafeRawBufferPointer(rebasing: bytes[run..<start]))
                run = next
            case .upgrade, .otherHopByHop:
                out.write(UnsafeRawBufferPointer(rebasing: bytes[run..<start]))
                run = next
            }
            start = next
        }
        guard headEnd >= 0 else { throw ResponseError(reason: "response head not terminated") }
        p.headLength = headEnd &+ 2
        out.write(UnsafeRawBufferPointer(rebasing: bytes[run..<start]))
        if p.transferEncoded {
            // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3): the stale length goes.
            p.contentLength = nil
        }
        if (p.transferEncoded && contentLengthKept) || connectionNamed != nil {
            // Lines already copied must go after all (rare): copy the header lines again, filtered.
            // "HTTP/1.1 " took the place of the status line's first nine bytes: its end is at the
            // same offset in both heads.
            out.rewind(to: fieldsStart)
            writeFiltered(
                bytes, from: fieldsStart, to: headEnd, dropsContentLength: p.transferEncoded, dropsRequestID: dropsRequestID,
                named: connectionNamed ?? [], into: &out)
        }
        if http10 && keepAliveToken { http10 = false }
        p.keepAlive = !closeToken && !http10
        return p
    }

    /// The header lines of `bytes[from..<to]` (already validated) that are forwarded.
    private static func writeFiltered(
        _ bytes: UnsafeRawBufferPointer, from: Int, to n: Int, dropsContentLength: Bool, dropsRequestID: Bool,
        named: [Range<Int>], into out: inout HeadWriter
    ) {
        var start = from
        while start < n {
            var colon = start
            while bytes[colon] != UInt8(ascii: ":") { colon &+= 1 }
            var end = colon
            while bytes[end] != 0x0D { end &+= 1 }
            let name = start..<colon
            let kept: Bool
            switch HeaderNameClass.classify(bytes, name) {
            case .host, .expect, .authorization, .xAPIKey, .other, .anthropicRequestID: kept = true
            case .requestID: kept = !dropsRequestID
            case .contentLength: kept = !dropsContentLength
            case .transferEncoding, .connection, .upgrade, .otherHopByHop: kept = false
            }
            if kept && !named.contains(where: { ASCIIBytes.equalsIgnoringCase(bytes, $0, name) }) {
                out.write(UnsafeRawBufferPointer(rebasing: bytes[start..<end &+ 2]))
            }
            start = end &+ 2
        }
    }

    /// A value without its leading and trailing spaces and tabs. Inlined: the call cost ~15 of
    /// its ~27 instructions (docs/performance.md "Session 16, heads").
    @inline(__always)
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
