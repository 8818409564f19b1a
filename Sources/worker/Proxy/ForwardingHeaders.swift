import Common
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

    /// `hopByHop.contains(lower)` without hashing: the data plane asks for every header of every
    /// request and response, and comparing short ASCII strings costs less than SipHash. Must
    /// list exactly the members of `hopByHop` (ForwardingHeadersTests checks).
    static func isHopByHop(_ lower: String) -> Bool {
        switch lower {
        case "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
             "trailers", "transfer-encoding", "upgrade":
            return true
        default:
            return false
        }
    }

    /// `clientOnly.contains(lower)` without hashing (see `isHopByHop`).
    static func isClientOnly(_ lower: String) -> Bool {
        switch lower {
        case "authorization", "x-api-key", "host", "expect": return true
        default: return false
        }
    }

    /// How the client's request body is framed. `Transfer-Encoding` wins over `Content-Length`
    /// (RFC 9112 §6.3; llhttp already refuses messages that carry both in a smuggling-prone way).
    static func requestFraming(_ headers: HTTPHeaders) -> Framing {
        if headers.contains(name: "transfer-encoding") { return .chunked }
        if headers.contains(name: "content-length") { return .contentLength }
        return .none
    }

    /// The upstream request's headers: the client's in order with every repeated value, minus
    /// credentials, `Host` and hop-by-hop headers (also those named in `Connection`); then `Host`
    /// for the upstream, the provider key in the upstream's style, and the body framing.
    static func upstreamRequestHeaders(from client: HTTPHeaders, upstream: Configuration.Upstream) -> HTTPHeaders {
        upstreamRequestHeaders(from: client, upstream: upstream, hostHeader: upstream.targetURL.hostHeader)
    }

    /// As above with the `Host` value already built (`Router.Route.hostHeader`, once per config).
    static func upstreamRequestHeaders(from client: HTTPHeaders, upstream: Configuration.Upstream,
                                       hostHeader: String) -> HTTPHeaders {
        let framing = requestFraming(client)
        var named = connectionTokens(client, skippingHopByHop: true)
        // The client's own copy of the header the provider key goes in is dropped, so the upstream
        // never sees two (`authorization` and `x-api-key` are client-only anyway).
        if upstream.apiKeyHeader == .apiKey && !upstream.apiKey.value.isEmpty { named.insert("api-key") }
        var out = HTTPHeaders()
        out.reserveCapacity(client.count + 3)
        out.add(name: "host", value: hostHeader)
        for (name, value) in client {
            let lower = name.lowercased()
            if isClientOnly(lower) || isHopByHop(lower) || (!named.isEmpty && named.contains(lower)) { continue }
            // A chunked body is re-framed as chunked: a stale length would desynchronise the upstream.
            if framing == .chunked && lower == "content-length" { continue }
            out.add(name: name, value: value)
        }
        addProviderKey(to: &out, upstream: upstream)
        if framing == .chunked { out.add(name: "transfer-encoding", value: "chunked") }
        return out
    }

    static func addProviderKey(to headers: inout HTTPHeaders, upstream: Configuration.Upstream) {
        let key = upstream.apiKey.value
        guard !key.isEmpty else { return }
        switch upstream.apiKeyHeader {
        case .authorization: headers.add(name: "authorization", value: "Bearer " + key)
        case .xAPIKey: headers.add(name: "x-api-key", value: key)
        case .apiKey: headers.add(name: "api-key", value: key)
        }
    }

    /// Lower-cased header names listed in `Connection` (RFC 9110 §7.6.1). Values are split on
    /// commas by hand: `headers[canonicalForm:]` builds arrays and substrings for every message.
    static func connectionTokens(_ headers: HTTPHeaders) -> Set<String> {
        connectionTokens(headers, skippingHopByHop: false)
    }

    /// With `skippingHopByHop`, leaves out the hop-by-hop names, which forwarding removes anyway:
    /// the usual `Connection: keep-alive` then gives an empty set and the per-header lookups in
    /// the forwarding loops are skipped.
    static func connectionTokens(_ headers: HTTPHeaders, skippingHopByHop: Bool) -> Set<String> {
        var tokens = Set<String>()
        for (name, value) in headers where name.utf8.count == 10 && name.lowercased() == "connection" {
            for part in value.utf8.split(separator: UInt8(ascii: ",")) {
                let token = Substring(part).trimmingASCIISpaces().lowercased()
                if !token.isEmpty && !(skippingHopByHop && isHopByHop(token)) { tokens.insert(token) }
            }
        }
        return tokens
    }
}

extension Substring {
    func trimmingASCIISpaces() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}
