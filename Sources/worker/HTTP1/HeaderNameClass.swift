/// The header names both head parsers (the request parser and the response head parser) treat
/// specially, found once per header from its bytes (any case). What forwarding does with each
/// class is `ForwardingHeaders`' business; this is only the naming.
enum HeaderNameClass: Equatable {
    /// Read by the request checks and replaced or dropped on the way up: `Host`, `Expect`, and
    /// the two credential headers.
    case host, expect, authorization, xAPIKey
    /// Hop-by-hop (RFC 9110 §7.6.1); `connection`, `transferEncoding` and `upgrade` are read too.
    /// `otherHopByHop` also holds `trailers`, which Fluxgate removes as well.
    case connection, transferEncoding, upgrade, otherHopByHop
    case contentLength, other
    /// `X-Request-Id`, and Anthropic's `Request-Id` in responses (docs/observability.md "Request ids").
    case requestID, anthropicRequestID

    var isHopByHop: Bool {
        switch self {
        case .connection, .transferEncoding, .upgrade, .otherHopByHop: return true
        default: return false
        }
    }

    /// The class of `bytes[name]`, without lower-casing or hashing: the request parser asks for
    /// every header of every request. ForwardingHeaderTests checks it against the sets of docs/routing-and-forwarding.md "Headers".
    /// `bytes[name]` must be `tchar`s (both head parsers have checked the name already), so each
    /// byte folds to lower case with `| 0x20` (`ASCIIBytes.equalsToken`).
    static func classify(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> HeaderNameClass {
        @inline(__always) func named(_ lowercase: StaticString) -> Bool { ASCIIBytes.equalsToken(bytes, name, lowercase: lowercase) }
        switch name.count {
        case 2 where named("te"): return .otherHopByHop
        case 4 where named("host"): return .host
        case 6 where named("expect"): return .expect
        case 7 where named("upgrade"): return .upgrade
        case 7 where named("trailer"): return .otherHopByHop
        case 8 where named("trailers"): return .otherHopByHop
        case 9 where named("x-api-key"): return .xAPIKey
        case 10 where named("connection"): return .connection
        case 10 where named("keep-alive"): return .otherHopByHop
        case 10 where named("request-id"): return .anthropicRequestID
        case 12 where named("x-request-id"): return .requestID
        case 13 where named("authorization"): return .authorization
        case 14 where named("content-length"): return .contentLength
        case 17 where named("transfer-encoding"): return .transferEncoding
        case 18 where named("proxy-authenticate"): return .otherHopByHop
        case 19 where named("proxy-authorization"): return .otherHopByHop
        default: return .other
        }
    }

    static func classify(_ name: String) -> HeaderNameClass {
        var name = name
        return name.withUTF8 { utf8 in
            // A name that is not a token is none of these (and would break `classify`'s folding).
            guard utf8.allSatisfy(ASCIIBytes.isTokenByte) else { return .other }
            return classify(UnsafeRawBufferPointer(utf8), 0..<utf8.count)
        }
    }
}
