import Common
import NIOCore
import NIOHTTP1

/// Header rules of behaviour §5. Pure functions over `HTTPHeaders` so they are tested without a
/// network; the data plane calls them once per request and once per response head.
enum ForwardingHeaders {
    /// How a message body is delimited on the wire (RFC 9112 §6).
    enum Framing: Equatable {
        case none
        case contentLength
        case chunked
    }

    /// The hop-by-hop set (RFC 9110 §7.6.1) plus `trailers`, which Fluxgate also removes.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "trailers", "transfer-encoding", "upgrade",
    ]

    /// Headers the client sends that never go upstream: its own credentials, `Host`, and
    /// `Expect: 100-continue`, which the proxy answers itself (nginx does the same) so that the
    /// upstream never sends a 1xx the client did not wait for.
    static let clientOnly: Set<String> = ["authorization", "x-api-key", "host", "expect"]

    /// What the forwarding rules make of a header name, read from its bytes (any case).
    enum NameClass: Equatable {
        case clientOnly, hopByHop, contentLength, transferEncoding, connection, other
    }

    /// `clientOnly`, `hopByHop` (`connection` and `transfer-encoding` are hop-by-hop too, with
    /// classes of their own) and `content-length`, without lower-casing or hashing: the data
    /// plane asks for every header of every request. ForwardingHeadersTests checks it against
    /// the two sets.
    static func classify(_ name: String) -> NameClass {
        switch name.utf8.count {
        case 2 where ASCIIBytes.equals(name, lowercase: "te"): return .hopByHop
        case 4 where ASCIIBytes.equals(name, lowercase: "host"): return .clientOnly
        case 6 where ASCIIBytes.equals(name, lowercase: "expect"): return .clientOnly
        case 7 where ASCIIBytes.equals(name, lowercase: "trailer") || ASCIIBytes.equals(name, lowercase: "upgrade"):
            return .hopByHop
        case 8 where ASCIIBytes.equals(name, lowercase: "trailers"): return .hopByHop
        case 9 where ASCIIBytes.equals(name, lowercase: "x-api-key"): return .clientOnly
        case 10 where ASCIIBytes.equals(name, lowercase: "connection"): return .connection
        case 10 where ASCIIBytes.equals(name, lowercase: "keep-alive"): return .hopByHop
        case 13 where ASCIIBytes.equals(name, lowercase: "authorization"): return .clientOnly
        case 14 where ASCIIBytes.equals(name, lowercase: "content-length"): return .contentLength
        case 17 where ASCIIBytes.equals(name, lowercase: "transfer-encoding"): return .transferEncoding
        case 18 where ASCIIBytes.equals(name, lowercase: "proxy-authenticate"): return .hopByHop
        case 19 where ASCIIBytes.equals(name, lowercase: "proxy-authorization"): return .hopByHop
        default: return .other
        }
    }

    static func isHopByHop(_ name: String) -> Bool {
        switch classify(name) {
        case .hopByHop, .connection, .transferEncoding: return true
        default: return false
        }
    }

    static func isClientOnly(_ name: String) -> Bool { classify(name) == .clientOnly }

    /// The upstream request's head as it goes on the wire, written straight into one buffer (no
    /// header list is built and no encoder runs on the relay path): the request line; `Host` for
    /// the upstream; the client's headers in order with every repeated value, minus credentials,
    /// `Host` and hop-by-hop headers (also those named in `Connection`); the provider key in the
    /// upstream's style; the body framing.
    static func writeUpstreamRequestHead(method: HTTPMethod, target: String, client: HTTPHeaders,
                                         upstream: Configuration.Upstream, hostHeader: String,
                                         framing: Framing, into out: inout ByteBuffer) {
        let named = droppedNames(client, upstream: upstream)
        let key = upstream.apiKey.value
        var bound = method.rawValue.utf8.count + target.utf8.count + hostHeader.utf8.count + key.utf8.count + 96
        for (name, value) in client { bound += name.utf8.count + value.utf8.count + 4 }
        out.writeHead(maxBytes: bound) { out in
            out.write(method.rawValue)
            out.write(" ")
            out.write(target)
            out.write(" HTTP/1.1\r\nhost: ")
            out.write(hostHeader)
            out.write("\r\n")
            for (name, value) in client where forwards(name, framing: framing, named: named) {
                out.write(name)
                out.write(": ")
                out.write(value)
                out.write("\r\n")
            }
            if !key.isEmpty {
                switch upstream.apiKeyHeader {
                case .authorization: out.write("authorization: Bearer ")
                case .xAPIKey: out.write("x-api-key: ")
                case .apiKey: out.write("api-key: ")
                }
                out.write(key)
                out.write("\r\n")
            }
            if framing == .chunked { out.write("transfer-encoding: chunked\r\n") }
            out.write("\r\n")
        }
    }

    /// Names (lower-case) of client headers that never go upstream besides the fixed sets: those
    /// named in `Connection`, and the client's own copy of the header the provider key goes in,
    /// so the upstream never sees two (`authorization` and `x-api-key` are client-only anyway).
    private static func droppedNames(_ client: HTTPHeaders, upstream: Configuration.Upstream) -> Set<String> {
        var named = connectionTokens(client, skippingHopByHop: true)
        if upstream.apiKeyHeader == .apiKey && !upstream.apiKey.value.isEmpty { named.insert("api-key") }
        return named
    }

    /// Whether a client header is forwarded: not a credential, `Host` or hop-by-hop, not named
    /// in `Connection`; and no `Content-Length` beside a chunked body (re-framed as chunked: a
    /// stale length would desynchronise the upstream).
    private static func forwards(_ name: String, framing: Framing, named: Set<String>) -> Bool {
        switch classify(name) {
        case .clientOnly, .hopByHop, .connection, .transferEncoding: return false
        case .contentLength where framing == .chunked: return false
        default: return named.isEmpty || !named.contains(name.lowercased())
        }
    }

    /// Lower-cased header names listed in `Connection` (RFC 9110 §7.6.1). Values are split on
    /// commas by hand: `headers[canonicalForm:]` builds arrays and substrings for every message.
    static func connectionTokens(_ headers: HTTPHeaders, skippingHopByHop: Bool = false) -> Set<String> {
        var tokens = Set<String>()
        for (name, value) in headers where ASCIIBytes.equals(name, lowercase: "connection") {
            ASCIIBytes.forEachListElement(value) { element in
                let token = element.lowercased()
                if !(skippingHopByHop && isHopByHop(token)) { tokens.insert(token) }
            }
        }
        return tokens
    }
}
