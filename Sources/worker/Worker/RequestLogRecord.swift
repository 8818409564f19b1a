import Common
import Logging
import NIOCore

/// The one `Request processed` line of docs/logging.md "The request line". Field order is the log handler's job
/// (`LogLineFormatter.requestFieldOrder`); absent fields are left out. Nothing here may hold a
/// secret, a header value or a body.
///
/// `request_url` and `target_url` are shown as `URLRedaction` allows: without userinfo and
/// without the values of credential query parameters.
struct RequestLogRecord: Sendable {
    static let message: Logger.Message = "Request processed"

    var clientIP: String?
    var method: String?
    var requestURL: String?
    var requestBodyLength: Int?
    var apiKeyID: String?
    var targetURL: String?
    var upstream: String?
    var durationMs: Int64?
    var status: UInt?
    var responseBodyLength: Int?
    /// Tries made upstream, when more than one (docs/logging.md).
    var attempts: Int?
    /// Why the upstream could not answer (`UpstreamErrorCause`), after Fluxgate's fields; last.
    var error: String?
    /// docs/observability.md "Request ids", after Fluxgate's fields and `error`.
    var requestID: String?
    var upstreamRequestID: String?
    /// When the record is made from a request's facts: the request-target's bytes (a slice of
    /// the head's) and the route, from which `request_url` and `target_url` are read as the line
    /// is written (in place of `requestURL` and `targetURL`), so that no string is made of
    /// either (two strings, their copies and their frees cost ~1,000 instructions per logged
    /// request).
    var requestTarget: ByteBuffer?
    var match: Router.Match?
    /// The target of the last try when the route has several (`target_url` is on it).
    var answeringTarget: UpstreamTarget?
    /// The response's token usage (docs/usage.md): `usage` is its status, the counts are absent
    /// when the response gave none.
    var model: String?
    var inputTokens: Int?
    var outputTokens: Int?
    var cacheReadTokens: Int?
    var cacheWriteTokens: Int?
    var usage: String?

    /// A field's value: numbers stay numbers, so the JSON log format prints them unquoted.
    enum FieldValue {
        case string(String)
        case number(Int64)
        /// A string's UTF-8 bytes, valid during the call only (a URL, redacted and capped).
        case text(UnsafeRawBufferPointer)
        /// Like `text`, bytes known to need no quoting or escaping in any format (hex digits,
        /// a method's letters): written without looking at them.
        case bare(UnsafeRawBufferPointer)
    }

    /// The line's present fields in Fluxgate's order (`LogLineFormatter.requestFieldOrder`), URLs
    /// redacted and capped: the one list both ways of printing the line use.
    func forEachField(_ body: (StaticString, FieldValue) -> Void) {
        if let clientIP { body("client_ip", .string(clientIP)) }
        if let method { body("method", .string(method)) }
        if requestTarget != nil {
            requestTarget?.withUnsafeReadableBytes { Self.url($0, mayHaveUserinfo: true) { body("request_url", $0) } }
        } else if let requestURL {
            body("request_url", .string(Self.capped(URLRedaction.redactingCredentials(requestURL))))
        }
        if let requestBodyLength { body("request_body_length", .number(Int64(requestBodyLength))) }
        if let apiKeyID { body("api_key", .string(apiKeyID)) }
        if requestTarget != nil, match != nil {
            requestTarget?.withUnsafeReadableBytes { target in
                match?.withTargetURL(target: target, on: answeringTarget) {
                    Self.url($0, mayHaveUserinfo: false) { body("target_url", $0) }
                }
            }
        } else if let targetURL {
            body("target_url", .string(Self.capped(URLRedaction.redactingCredentials(targetURL, mayHaveUserinfo: false))))
        }
        if let upstream { body("upstream", .string(upstream)) }
        if let durationMs { body("duration_ms", .number(durationMs)) }
        if let status { body("status", .number(Int64(status))) }
        if let responseBodyLength { body("response_body_length", .number(Int64(responseBodyLength))) }
        if let error { body("error", .string(error)) }
        if let requestID { body("request_id", .string(requestID)) }
        if let upstreamRequestID { body("upstream_request_id", .string(upstreamRequestID)) }
        if let attempts { body("attempts", .number(Int64(attempts))) }
        if let model { body("model", .string(model)) }
        if let inputTokens { body("input_tokens", .number(Int64(inputTokens))) }
        if let outputTokens { body("output_tokens", .number(Int64(outputTokens))) }
        if let cacheReadTokens { body("cache_read_tokens", .number(Int64(cacheReadTokens))) }
        if let cacheWriteTokens { body("cache_write_tokens", .number(Int64(cacheWriteTokens))) }
        if let usage { body("usage", .string(usage)) }
    }

    var metadata: Logger.Metadata {
        var metadata = Logger.Metadata(minimumCapacity: 13)
        forEachField { key, value in
            switch value {
            case .string(let s): metadata[key.description] = .string(s)
            case .number(let n): metadata[key.description] = .stringConvertible(n)
            case .text(let bytes), .bare(let bytes):
                metadata[key.description] = .string(String(decoding: bytes, as: UTF8.self))
            }
        }
        return metadata
    }

    func emit(to logger: Logger) {
        logger.trace(Self.message, metadata: metadata)
    }

    /// The same line as `emit(to:)` prints with the process's own handler (`FluxgateLogHandler`),
    /// written without building metadata (RequestLineTests compare the two).
    func emit(to writer: RequestLineWriter) {
        writer.write(level: .trace, message: "Request processed") { line in
            forEachField { key, value in Self.add(key, value, to: &line) }
        }
    }

    /// A field as `FluxgateLogHandler` prints it from metadata.
    static func add(_ key: StaticString, _ value: FieldValue, to line: inout LogLineBuilder) {
        switch value {
        case .string(let s): line.add(key, s)
        case .number(let n): line.add(key, n)
        case .text(let bytes): line.add(key, text: bytes)
        case .bare(let bytes): line.add(key, bare: bytes)
        }
    }

    /// Longest URL a request line carries. Lines from several workers share one stdout, and only
    /// writes of up to PIPE_BUF (4096) bytes to a pipe are atomic: two capped URLs and the other
    /// fields stay well below it, so request lines never interleave (docs/logging.md "Lines never interleave").
    static let maxLoggedURLBytes = 1536

    /// A URL's field value: its own bytes when nothing needs redacting or capping (almost
    /// always), else the redacted and capped string.
    static func url(_ bytes: UnsafeRawBufferPointer, mayHaveUserinfo: Bool, _ body: (FieldValue) -> Void) {
        if bytes.count <= maxLoggedURLBytes, URLRedaction.redacting(bytes, mayHaveUserinfo: mayHaveUserinfo) == nil {
            return body(.text(bytes))
        }
        let url = String(decoding: bytes, as: UTF8.self)
        body(.string(capped(URLRedaction.redactingCredentials(url, mayHaveUserinfo: mayHaveUserinfo))))
    }

    static func capped(_ url: String) -> String {
        guard url.utf8.count > maxLoggedURLBytes else { return url }
        // A request target is ASCII once parsed; a cut through anything else decodes as U+FFFD.
        return String(decoding: url.utf8.prefix(maxLoggedURLBytes), as: UTF8.self) + "...(truncated)"
    }
}

extension RequestLogRecord {
    /// The line of a request that has ended: its strings are made here, only when a line is
    /// written.
    /// (`borrowing`, optional chaining: no copy of the facts or of their head is made.)
    init(_ facts: borrowing RequestFacts, clientIP: String?, endedAt: NIODeadline = .now()) {
        self.clientIP = clientIP
        method = facts.method?.rawValue
        requestTarget = facts.requestTarget
        match = facts.match
        answeringTarget = facts.target
        requestBodyLength = facts.requestBodyBytes
        apiKeyID = facts.keyID
        upstream = facts.route?.upstream.name
        durationMs = (endedAt - facts.startedAt).nanoseconds / 1_000_000
        status = facts.status
        responseBodyLength = facts.responseBodyBytes
        attempts = facts.attempts > 1 ? facts.attempts : nil
        error = facts.upstreamError?.description
        requestID = facts.requestID
        upstreamRequestID = facts.upstreamRequestID
        if let usage = facts.usage {
            inputTokens = usage.inputTokens
            outputTokens = usage.outputTokens
            cacheReadTokens = usage.cacheReadTokens
            cacheWriteTokens = usage.cacheWriteTokens
            self.usage = usage.status.rawValue
        }
        // The response's model when it names one, else the one the client sent (model routing).
        model = facts.usage?.model ?? facts.requestModel
    }
}
