import Common
import NIOCore
import NIOHTTP1

/// Header rules of docs/routing-and-forwarding.md "Headers". Pure functions over `HTTPHeaders` so they are tested without a
/// network; the data plane calls them once per request and once per response head.
enum ForwardingHeaders {
    /// The hop-by-hop set (RFC 9110 §7.6.1) plus `trailers`, which Fluxgate also removes.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "trailers", "transfer-encoding", "upgrade",
    ]

    /// Headers the client sends that never go upstream: its own credentials, `Host`, and
    /// `Expect: 100-continue`, which the proxy answers itself (nginx does the same) so that the
    /// upstream never sends a 1xx the client did not wait for.
    static let clientOnly: Set<String> = ["authorization", "x-api-key", "host", "expect"]

    static func isHopByHop(_ name: String) -> Bool { HeaderNameClass.classify(name).isHopByHop }

    static func isClientOnly(_ name: String) -> Bool { HeaderNameClass.classify(name).isClientOnly }

    /// The upstream request's head as it goes on the wire, written straight into one buffer (no
    /// header list is built and no encoder runs on the relay path): the request line; `Host` for
    /// the upstream; the client's headers in order with every repeated value, copied from the
    /// bytes they arrived in, minus credentials, `Host` and hop-by-hop headers (also those named
    /// in `Connection`); the provider key in the upstream's style; the body framing. The
    /// request-target is `match`'s on `target`, its pieces copied from the client's.
    static func writeUpstreamRequestHead(
        method: HTTPMethod, match: Router.Match, target: UpstreamTarget,
        client: RequestHead, framing: BodyFraming, requestID: String? = nil, bound: Int? = nil,
        into out: inout ByteBuffer
    ) {
        // The client's own copy of the header the provider key goes in is dropped, so the upstream
        // never sees two (`authorization` and `x-api-key` are client-only anyway).
        let dropsAPIKeyHeader = target.apiKeyHeader == .apiKey && !target.apiKeyLine.isEmpty
        client.headerBytes.withUnsafeReadableBytes { bytes in
            let named = client.facts.connectionNamesHeaders ? connectionTokens(client, bytes) : []
            let bound =
                bound ?? upstreamRequestHeadBound(method: method, match: match, target: target, client: client, requestID: requestID)
            out.writeHead(maxBytes: bound) { out in
                // The usual methods without making their raw-value string (`rawValue` builds one).
                switch method {
                case .GET: out.write("GET ")
                case .POST: out.write("POST ")
                default:
                    out.write(string: method.rawValue)
                    out.write(" ")
                }
                match.writeTarget(on: target, from: UnsafeRawBufferPointer(rebasing: bytes[client.target]), into: &out)
                out.write(" HTTP/1.1\r\n")
                target.hostLine.withUnsafeBytes { out.write($0) }
                // Forwarded lines written as `name: value\r\n` are copied from the client's bytes
                // when they arrived in exactly that form, consecutive ones in one copy (`run`): the
                // same bytes as writing name, ": ", value and CRLF apart, a copy instead of four.
                var run = 0..<0
                for field in client.fields
                where forwards(
                    field, bytes, framing: framing, named: named, dropsAPIKeyHeader: dropsAPIKeyHeader,
                    dropsRequestID: requestID != nil, lengthRewritten: client.facts.contentLengthRewritten)
                {
                    if let line = canonicalLine(field, bytes) {
                        if line.lowerBound == run.upperBound, !run.isEmpty {
                            run = run.lowerBound..<line.upperBound
                        } else {
                            out.write(UnsafeRawBufferPointer(rebasing: bytes[run]))
                            run = line
                        }
                        continue
                    }
                    out.write(UnsafeRawBufferPointer(rebasing: bytes[run]))
                    run = 0..<0
                    out.write(UnsafeRawBufferPointer(rebasing: bytes[field.name]))
                    out.write(": ")
                    out.write(UnsafeRawBufferPointer(rebasing: bytes[field.value]))
                    out.write("\r\n")
                }
                out.write(UnsafeRawBufferPointer(rebasing: bytes[run]))
                target.apiKeyLine.withUnsafeBytes { out.write($0) }
                if let requestID {
                    // propagate_request_id (docs/observability.md "Request ids"): ours replaces the client's.
                    out.write("x-request-id: ")
                    out.write(string: requestID)
                    out.write("\r\n")
                }
                if framing == .chunked { out.write("transfer-encoding: chunked\r\n") }
                if client.facts.contentLengthRewritten {
                    // A renamed model changed the body's length (docs/routing-and-forwarding.md
                    // "Model routing"); the client's own field was left out.
                    out.write("content-length: ")
                    out.write(string: String(client.facts.contentLength))
                    out.write("\r\n")
                }
                out.write("\r\n")
            }
        }
    }

    /// The whole line of `field` in the client's bytes when it reads `name: value` CRLF there
    /// (one space, no trailing whitespace): what the four writes would have made.
    @inline(__always)
    private static func canonicalLine(_ field: RequestHead.Field, _ bytes: UnsafeRawBufferPointer) -> Range<Int>? {
        let colon = field.name.upperBound
        let end = field.value.upperBound
        guard field.value.lowerBound == colon &+ 2, end &+ 2 <= bytes.count, bytes[colon] == UInt8(ascii: ":"),
            bytes[colon &+ 1] == UInt8(ascii: " "), bytes[end] == 0x0D, bytes[end &+ 1] == 0x0A
        else { return nil }
        return field.name.lowerBound..<end &+ 2
    }

    /// At least the bytes `writeUpstreamRequestHead` writes: a buffer made with this much room
    /// (and the body's, when it goes in the same write) is never grown while the head is written
    /// (growing it copied the head and cost ~250 instructions per request).
    static func upstreamRequestHeadBound(
        method: HTTPMethod, match: Router.Match, target: UpstreamTarget, client: RequestHead, requestID: String? = nil
    ) -> Int {
        let methodBytes: Int
        // The usual methods without making their raw-value string (`rawValue` builds one).
        switch method {
        case .GET, .PUT: methodBytes = 3
        case .POST: methodBytes = 4
        default: methodBytes = method.rawValue.utf8.count
        }
        return methodBytes + match.targetByteCount(on: target) + target.hostLine.count + target.apiKeyLine.count
            // A field received as `name:value` goes out as `name: value`, one byte more: one per field.
            + client.headerBytes.readableBytes + client.fields.count + 96 + (requestID.map { $0.utf8.count + 16 } ?? 0)
    }

    /// Whether a client header is forwarded: not a credential, `Host` or hop-by-hop, not named
    /// in `Connection`; and no `Content-Length` beside a chunked body (re-framed as chunked: a
    /// stale length would desynchronise the upstream; the parser refuses both anyway).
    private static func forwards(
        _ field: RequestHead.Field, _ bytes: UnsafeRawBufferPointer, framing: BodyFraming,
        named: [Range<Int>], dropsAPIKeyHeader: Bool, dropsRequestID: Bool, lengthRewritten: Bool
    ) -> Bool {
        switch field.kind {
        case .contentLength: return framing != .chunked && !lengthRewritten
        case .requestID:
            return !dropsRequestID && !named.contains { ASCIIBytes.equalsIgnoringCase(bytes, $0, field.name) }
        case .anthropicRequestID:
            return !named.contains { ASCIIBytes.equalsIgnoringCase(bytes, $0, field.name) }
        case .other:
            if dropsAPIKeyHeader && ASCIIBytes.equals(bytes, field.name, lowercase: "api-key") { return false }
            return !named.contains { ASCIIBytes.equalsIgnoringCase(bytes, $0, field.name) }
        default:
            return false
        }
    }

    /// The tokens listed in the request's `Connection` fields (RFC 9110 §7.6.1), as ranges of its
    /// header bytes: headers of those names are not forwarded.
    private static func connectionTokens(_ client: RequestHead, _ bytes: UnsafeRawBufferPointer) -> [Range<Int>] {
        var tokens: [Range<Int>] = []
        for field in client.fields where field.kind == .connection {
            ASCIIBytes.forEachListElement(bytes, field.value) { tokens.append($0) }
        }
        return tokens
    }
}

extension HeaderNameClass {
    /// Never forwarded: `Host` is the upstream's, `Expect` is answered here, credentials are replaced.
    var isClientOnly: Bool {
        switch self {
        case .host, .expect, .authorization, .xAPIKey: return true
        default: return false
        }
    }
}
