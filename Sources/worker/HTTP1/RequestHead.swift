import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// A request head as the parser read it, with what the checks (docs/routing-and-forwarding.md "Order of checks") and the exchange
/// need to know about its headers, found while the bytes were parsed (so nothing looks the
/// headers up by name again).
struct RequestHead {
    var method: HTTPMethod
    /// Where the request-target is in `headerBytes` (it starts them).
    var target: Range<Int>
    var version: HTTPVersion
    /// The head as received from the request-target to the last field's CRLF, copied out of the
    /// read buffer so a long request does not hold that buffer; `target` and `fields` index into
    /// it. (The target stays bytes: routing and the upstream head read it there, and no `String`
    /// is made of it unless a request line is logged.)
    var headerBytes: ByteBuffer
    var fields: [Field]
    var facts: Facts

    /// One header field: offsets into `headerBytes`' readable bytes (the value without the
    /// spaces around it), and what forwarding does with it.
    struct Field {
        var name: Range<Int>
        var value: Range<Int>
        var kind: HeaderNameClass
    }

    struct Facts {
        /// `Host` fields, and whether the (last) one is empty or blank.
        var hostCount = 0
        var hostIsBlank = false
        /// An `Upgrade` field, or `upgrade` listed in `Connection`.
        var upgrade = false
        /// `100-continue` listed in `Expect`.
        var expectsContinue = false
        /// `close` / `keep-alive` listed in `Connection`.
        var connectionClose = false
        var connectionKeepAlive = false
        /// `Connection` lists some other token: a header to drop by that name (RFC 9110 §7.6.1).
        var connectionNamesHeaders = false
        var framing = BodyFraming.none
        /// The `Content-Length` value (0 without one).
        var contentLength = 0
        /// Set above the wire layer when the body forwarded is not the client's length (a
        /// renamed model): the upstream head says `contentLength` instead of the client's field.
        var contentLengthRewritten = false
        /// Where the first `Authorization` and `X-Api-Key` values are in `headerBytes` (read as
        /// `RequestHead.authorization` and `.xAPIKey`: no `String` is made per request, the
        /// connection's cached authentication compares the bytes).
        var authorizationValue: Range<Int>?
        var xAPIKeyValue: Range<Int>?
        /// Where the first `X-Request-Id` value is (docs/observability.md "Request ids").
        var requestIDValue: Range<Int>?
    }

    /// The request-target as received.
    var uri: String { string(at: target) }

    /// The request-target's bytes as received (a slice: the head's bytes are not copied).
    var targetBytes: ByteBuffer {
        headerBytes.getSlice(at: headerBytes.readerIndex + target.lowerBound, length: target.count) ?? ByteBuffer()
    }

    /// The first `Authorization` value.
    var authorization: String? { facts.authorizationValue.map(string(at:)) }
    /// The client's `X-Request-Id` when it is a valid request id: 1–128 characters of
    /// `[A-Za-z0-9._:-]` (docs/observability.md "Request ids").
    var clientRequestID: String? {
        guard let range = facts.requestIDValue, (1...128).contains(range.count) else { return nil }
        let valid = headerBytes.withUnsafeReadableBytes { bytes in
            bytes[range].allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"),
                    UInt8(ascii: "-"):
                    return true
                default:
                    return false
                }
            }
        }
        return valid ? string(at: range) : nil
    }
    /// The first `X-Api-Key` value.
    var xAPIKey: String? { facts.xAPIKeyValue.map(string(at:)) }

    /// `headerBytes[range]` equals `string`'s UTF-8; nil equals only nil.
    func bytes(at range: Range<Int>?, equal string: String?) -> Bool {
        guard let range, let string else { return range == nil && string == nil }
        guard string.utf8.count == range.count else { return false }
        guard !range.isEmpty else { return true }
        return headerBytes.withUnsafeReadableBytes { bytes in
            let value = UnsafeRawBufferPointer(rebasing: bytes[range])
            return string.utf8.withContiguousStorageIfAvailable { memcmp(value.baseAddress!, $0.baseAddress!, range.count) == 0 }
                ?? value.elementsEqual(string.utf8)
        }
    }

    private func string(at range: Range<Int>) -> String {
        headerBytes.withUnsafeReadableBytes { String(decoding: UnsafeRawBufferPointer(rebasing: $0[range]), as: UTF8.self) }
    }

    /// RFC 9112 §9.3: HTTP/1.1 persists unless told `close`; HTTP/1.0 only when told `keep-alive`.
    var keepAlive: Bool {
        !facts.connectionClose && (version.minor >= 1 || facts.connectionKeepAlive)
    }
}

/// What a client connection's bytes mean, in order.
enum RequestEvent {
    case head(RequestHead)
    /// Request body bytes, de-chunked: a slice of what was read, not a copy.
    case body(ByteBuffer)
    case end
    /// The bytes cannot be read as a request, or not within the limits: the connection answers
    /// (the layer above maps the error to its response) and closes. The parser reads nothing
    /// after it.
    case malformed(RequestParseError)
}

/// Why the bytes of a client connection are not a request the parser can hand on. Wire-level:
/// which response each one gets is decided above (`ProxyErrorResponse.init(_:)`).
enum RequestParseError: Error, Equatable {
    /// Malformed or ambiguous: a byte that cannot be where it is, a framing two implementations
    /// could read differently (docs/routing-and-forwarding.md, "What the parser refuses").
    case badRequest
    /// The request line did not end within the head buffer.
    case uriTooLong
    /// More header lines or header bytes than the limits.
    case headerFieldsTooLarge
}

/// How a message body is delimited on the wire (RFC 9112 §6).
enum BodyFraming: Equatable {
    case none
    case contentLength
    case chunked
}
