import Common
import Logging
import NIOCore

/// The one `Request processed` line of docs/logging.md "The request line": its message, its
/// field values, and the two ways of printing its fields (as a logger's metadata, or straight
/// into a `RequestLineWriter`'s line). The worker's fields come from
/// `RequestFacts.forEachLineField`, the one list of them; a record of strings (below) is what
/// tests give to compare the two ways on values no request has (quotes, control bytes,
/// non-ASCII). Field order is the log handler's job (`LogLineFormatter.requestFieldOrder`);
/// absent fields are left out. Nothing here may hold a secret, a header value or a body.
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

    /// The record's present fields in Fluxgate's order (`LogLineFormatter.requestFieldOrder`),
    /// URLs redacted and capped.
    func forEachField(_ body: (StaticString, FieldValue) -> Void) {
        if let clientIP { body("client_ip", .string(clientIP)) }
        if let method { body("method", .string(method)) }
        if let requestURL { body("request_url", .string(Self.capped(URLRedaction.redactingCredentials(requestURL)))) }
        if let requestBodyLength { body("request_body_length", .number(Int64(requestBodyLength))) }
        if let apiKeyID { body("api_key", .string(apiKeyID)) }
        if let targetURL {
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

    /// Present fields, as `forEachField` or `RequestFacts.forEachLineField` gives them.
    typealias Fields = ((StaticString, FieldValue) -> Void) -> Void

    var metadata: Logger.Metadata { Self.metadata(forEachField) }

    /// The fields as a logger's metadata (what a handler other than the process's own gets).
    static func metadata(_ fields: Fields) -> Logger.Metadata {
        var metadata = Logger.Metadata(minimumCapacity: 13)
        fields { key, value in
            switch value {
            case .string(let s): metadata[key.description] = .string(s)
            case .number(let n): metadata[key.description] = .stringConvertible(n)
            case .text(let bytes), .bare(let bytes):
                metadata[key.description] = .string(String(decoding: bytes, as: UTF8.self))
            }
        }
        return metadata
    }

    func emit(to logger: Logger) { Self.emit(forEachField, to: logger) }

    /// The line through swift-log: `fields` as metadata.
    static func emit(_ fields: Fields, to logger: Logger) {
        logger.trace(Self.message, metadata: metadata(fields))
    }

    func emit(to writer: RequestLineWriter) { Self.emit(forEachField, to: writer) }

    /// The same line as `emit(_:to: Logger)` prints with the process's own handler
    /// (`FluxgateLogHandler`), written without building metadata (RequestLineTests compare the two).
    static func emit(_ fields: Fields, to writer: RequestLineWriter) {
        writer.write(level: .trace, message: "Request processed") { line in
            fields { key, value in add(key, value, to: &line) }
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
