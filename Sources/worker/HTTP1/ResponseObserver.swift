import NIOCore

/// Watches an upstream response while `UpstreamResponseReader` relays it (usage accounting,
/// response logging, a cache: whatever needs the response's facts or its payload). The relay does
/// not change for it: the client still gets the upstream's bytes as framed, as slices of the reads.
///
/// The order of calls, all on the event loop, from inside `UpstreamResponseReader.read` (or
/// `closed()`):
/// 1. `responseHead` once, for the final head (interim 1xx heads are skipped);
/// 2. `responsePayload` zero or more times: the body's bytes in order, without chunk framing —
///    for a chunked body the data of each chunk, for a `Content-Length` body or one that ends at
///    the close the body bytes; none for a response without a body (HEAD, 204, 304);
/// 3. `responseEnded(complete: true)` once the response is complete.
///
/// The reader reports only a complete end. A response that is cut — the upstream closes early or
/// sends bytes the reader refuses, a deadline passes, the client goes away — is reported by the
/// exchange, which sees every such case, with `responseEnded(complete: false)`, once, and only
/// after a `responseHead` (before one there is no response to observe).
///
/// An observer must not call back into the reader that calls it (it is in the middle of a
/// mutating call). The reader holds it strongly until the reader goes.
protocol ResponseObserver: AnyObject {
    /// The final head's facts. They point into the head's bytes in the read buffer, valid only
    /// during the call: take what is needed (the strings are made on demand), never the value.
    func responseHead(_ facts: ResponseFacts)
    /// Payload bytes, valid only during the call.
    func responsePayload(_ bytes: UnsafeRawBufferPointer)
    func responseEnded(complete: Bool)
}

/// What an upstream's final response head says that an observer wants: recorded as byte ranges
/// while the head is parsed, and only when an observer is attached; strings are made when asked for.
struct ResponseFacts {
    var status: UInt
    /// The head as received, status line to the empty line, where it lies in the read buffer
    /// (valid during `responseHead` only; a slice of the buffer cost ~130 instructions, a
    /// retain and a release per response): the ranges below index it.
    let head: UnsafeRawBufferPointer
    var fields: Fields

    /// Where the values of the headers that make the facts are in the head: the first of each
    /// name (any case), without the spaces and tabs around it.
    ///
    /// Kept as 32-bit offsets (a head is at most `UpstreamResponseReader.maxHeadBytes`): four
    /// words, made, copied and handed over in registers, where four `Range<Int>?` (96 bytes) were
    /// initialised and copied with `memcpy` on the way to the observer (docs/performance.md,
    /// "Session 16, usagetap").
    struct Fields: Equatable {
        /// A value's range, or none (`start` −1).
        private struct Found: Equatable {
            var start: Int32 = -1
            var end: Int32 = 0

            @inline(__always) var isNone: Bool { start < 0 }
            @inline(__always) var range: Range<Int>? { start < 0 ? nil : Int(start)..<Int(end) }
            @inline(__always) init() {}
            @inline(__always) init(_ range: Range<Int>?) {
                guard let range else { return }
                start = Int32(truncatingIfNeeded: range.lowerBound)
                end = Int32(truncatingIfNeeded: range.upperBound)
            }
        }

        private var foundContentType = Found()
        private var foundContentEncoding = Found()
        private var foundXRequestID = Found()
        private var foundRequestID = Found()

        var contentType: Range<Int>? {
            get { foundContentType.range }
            set { foundContentType = Found(newValue) }
        }
        var contentEncoding: Range<Int>? {
            get { foundContentEncoding.range }
            set { foundContentEncoding = Found(newValue) }
        }
        /// `x-request-id` (OpenAI and most others).
        var xRequestID: Range<Int>? {
            get { foundXRequestID.range }
            set { foundXRequestID = Found(newValue) }
        }
        /// `request-id` (Anthropic).
        var requestID: Range<Int>? {
            get { foundRequestID.range }
            set { foundRequestID = Found(newValue) }
        }
        /// No `Content-Encoding` came (most responses): without making its range.
        var hasContentEncoding: Bool { !foundContentEncoding.isNone }

        /// Notes the header `bytes[name]` (a checked header name: `tchar`s only) if it is one of
        /// the above. `value` may still have its spaces and tabs: only a noted value is trimmed
        /// (most headers are none of these, and most calls end at the length).
        mutating func note(_ bytes: UnsafeRawBufferPointer, name: Range<Int>, value: Range<Int>) {
            @inline(__always) func named(_ lowercase: StaticString) -> Bool {
                ASCIIBytes.equalsToken(bytes, name, lowercase: lowercase)
            }
            switch name.count {
            case 10 where foundRequestID.isNone && named("request-id"): foundRequestID = Self.trimmed(bytes, value)
            case 12 where foundContentType.isNone && named("content-type"): foundContentType = Self.trimmed(bytes, value)
            case 12 where foundXRequestID.isNone && named("x-request-id"): foundXRequestID = Self.trimmed(bytes, value)
            case 16 where foundContentEncoding.isNone && named("content-encoding"):
                foundContentEncoding = Self.trimmed(bytes, value)
            default: break
            }
        }

        /// (Inlined: most values have one space before them and none after, a few loads.)
        @inline(__always)
        private static func trimmed(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) -> Found {
            var s = value.lowerBound
            var e = value.upperBound
            while s < e, bytes[s] == 0x20 || bytes[s] == 0x09 { s &+= 1 }
            while e > s, bytes[e &- 1] == 0x20 || bytes[e &- 1] == 0x09 { e &-= 1 }
            var found = Found()
            found.start = Int32(truncatingIfNeeded: s)
            found.end = Int32(truncatingIfNeeded: e)
            return found
        }
    }

    var contentType: String? { string(fields.contentType) }
    var contentEncoding: String? { string(fields.contentEncoding) }
    /// The upstream's id for the request: `x-request-id`, or else `request-id`.
    var requestID: String? { string(fields.xRequestID ?? fields.requestID) }

    private func string(_ range: Range<Int>?) -> String? {
        guard let range else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: head[range]), as: UTF8.self)
    }
}
