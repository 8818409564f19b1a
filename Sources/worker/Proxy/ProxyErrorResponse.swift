import NIOCore
import NIOHTTP1
import Common

/// A response the proxy makes itself (docs/routing-and-forwarding.md "Errors made by the proxy"): a JSON body in the OpenAI error
/// shape, so SDKs show the message to the user, with `content-type: application/json` and an
/// exact `content-length`. Messages are fixed texts: no header value, path or secret is echoed.
struct ProxyErrorResponse: Sendable, Equatable {
    var status: HTTPResponseStatus
    var message: String
    var type: String
    var code: String
    /// Headers beyond content-type and content-length (a 429's `retry-after` and
    /// `x-ratelimit-*`, docs/rate-limits.md).
    var headers: [Header] = []

    struct Header: Sendable, Equatable {
        var name: String
        var value: String
    }

    static let badRequest = Self(.badRequest, "The request is malformed.", "invalid_request_error", "bad_request")
    static let missingHost = Self(.badRequest, "The request has no Host header.", "invalid_request_error", "missing_host")
    static let userinfoInTarget = Self(
        .badRequest, "The request target must not contain user information (user:password@).",
        "invalid_request_error", "userinfo_in_target")
    static let invalidPath = Self(
        .badRequest, "The request path contains a '.' or '..' segment or is not a valid target.",
        "invalid_request_error", "invalid_path")
    static let unauthorized = Self(.unauthorized, "Invalid or missing API key.", "invalid_request_error", "invalid_api_key")
    static let noRoute = Self(.notFound, "No upstream is configured for this path.", "invalid_request_error", "route_not_found")
    static let uriTooLong = Self(.uriTooLong, "The request line is too long.", "invalid_request_error", "uri_too_long")
    static let headersTooLarge = Self(
        .requestHeaderFieldsTooLarge, "The request headers are too large or too many.",
        "invalid_request_error", "request_header_fields_too_large")
    static let notImplemented = Self(
        .notImplemented, "CONNECT and protocol upgrades are not supported.",
        "invalid_request_error", "not_implemented")
    static let versionNotSupported = Self(
        .httpVersionNotSupported, "Only HTTP/1.1 is supported.",
        "invalid_request_error", "http_version_not_supported")
    static let overloaded = Self(
        .serviceUnavailable, "The proxy is at its connection limit; retry later.",
        "server_error", "overloaded")
    static let noUpstreams = Self(.serviceUnavailable, "No upstreams are configured.", "server_error", "no_upstreams")
    static let upstreamUnreachable = Self(.badGateway, "The upstream could not be reached.", "server_error", "upstream_unreachable")
    static let upstreamFailed = Self(
        .badGateway, "The upstream closed the connection or sent an invalid response.",
        "server_error", "upstream_error")
    static let upstreamTimeout = Self(.gatewayTimeout, "The upstream did not respond in time.", "server_error", "upstream_timeout")

    /// The TLS connection to the upstream failed: the message says what (OpenSSL's fixed reason
    /// texts, never certificate contents).
    static func upstreamTLS(_ error: TLSError) -> Self {
        Self(.badGateway, "TLS with the upstream failed: \(error.summary).", "server_error", "upstream_tls_error")
    }

    /// The answer to bytes the request parser refused (step 0 of the order of checks,
    /// docs/routing-and-forwarding.md).
    init(_ error: RequestParseError) {
        switch error {
        case .badRequest: self = .badRequest
        case .uriTooLong: self = .uriTooLong
        case .headerFieldsTooLarge: self = .headersTooLarge
        }
    }

    init(_ status: HTTPResponseStatus, _ message: String, _ type: String, _ code: String, headers: [Header] = []) {
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.headers = headers
    }

    var jsonBody: String {
        // A document of the proxy's own (`GET /v1/models`, `ProxyErrorResponse+Models.swift`):
        // `message` is the whole body. (Not a field of its own: a larger value made every stage's
        // verdict larger to copy, ~60 instructions per request.)
        if type.isEmpty { return message }
        return #"{"error":{"message":\#(Self.quoted(message)),"type":\#(Self.quoted(type)),"code":\#(Self.quoted(code))}}"#
    }

    func head(closeConnection: Bool, bodyLength: Int) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(bodyLength))
        for header in self.headers { headers.add(name: header.name, value: header.value) }
        if closeConnection { headers.add(name: "connection", value: "close") }
        return HTTPResponseHead(version: .http1_1, status: status, headers: headers)
    }

    /// The whole response as it goes on the wire, and its body's length (for the log).
    func wire(closeConnection: Bool, allocator: ByteBufferAllocator) -> (bytes: ByteBuffer, bodyLength: Int) {
        var body = body(allocator: allocator)
        let bodyLength = body.readableBytes
        let head = head(closeConnection: closeConnection, bodyLength: bodyLength)
        var out = allocator.buffer(capacity: 160 + bodyLength)
        out.writeString("HTTP/1.1 \(head.status.code) \(head.status.reasonPhrase)\r\n")
        for (name, value) in head.headers { out.writeString("\(name): \(value)\r\n") }
        out.writeStaticString("\r\n")
        out.writeBuffer(&body)
        return (out, bodyLength)
    }

    func body(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(string: jsonBody)
    }

    static func quoted(_ text: String) -> String { JSONText.quoted(text) }
}
