import NIOCore

/// The request line's fields read straight from a request's facts: the one list of them, for
/// both ways of printing the line (`RequestLogRecord.emit`). Nothing is made of a field that is
/// not written (building a record of strings first, its copy into the writer's closure and its
/// destruction cost ~3,000 instructions per logged request, docs/performance.md).
extension RequestFacts {
    /// Calls `body` with each present field, in Fluxgate's order (`LogLineFormatter.requestFieldOrder`).
    /// `madeRequestID` is shown as `request_id` when the facts have none (the caller made it for
    /// the line only: no `String`).
    /// (`mutating` though it changes nothing: called from the line writer's closure on facts
    /// held `inout`, a non-mutating call copied them whole and destroyed the copy, ~450
    /// instructions per line.)
    mutating func forEachLineField(
        clientIP: String?, endedAt: NIODeadline, madeRequestID: RequestIDGenerator.Text? = nil,
        _ body: (StaticString, RequestLogRecord.FieldValue) -> Void
    ) {
        if var clientIP {
            // An address's text (digits, hex, `.`, `:`, `%`) needs no quoting or escaping.
            clientIP.withUTF8 { body("client_ip", .bare(UnsafeRawBufferPointer($0))) }
        }
        if let method {
            // The parser's method bytes (`A`–`Z`, `-`, `_`) need no quoting or escaping.
            var name = method.rawValue
            name.withUTF8 { body("method", .bare(UnsafeRawBufferPointer($0))) }
        }
        // Optional chaining, not `if let`: the buffer and the match are read where they are.
        requestTarget?.withUnsafeReadableBytes { RequestLogRecord.url($0, mayHaveUserinfo: true) { body("request_url", $0) } }
        if let requestBodyBytes { body("request_body_length", .number(Int64(requestBodyBytes))) }
        if let keyID { body("api_key", .string(keyID)) }
        if match != nil {
            requestTarget?.withUnsafeReadableBytes { bytes in
                match?.withTargetURL(target: bytes, on: target) {
                    RequestLogRecord.url($0, mayHaveUserinfo: false) { body("target_url", $0) }
                }
            }
        }
        if let name = route?.upstream.name { body("upstream", .string(name)) }
        body("duration_ms", .number((endedAt - startedAt).nanoseconds / 1_000_000))
        body("status", .number(Int64(status)))
        if let responseBodyBytes { body("response_body_length", .number(Int64(responseBodyBytes))) }
        if let upstreamError { body("error", .string(upstreamError.description)) }
        if let requestID {
            body("request_id", .string(requestID))
        } else if let madeRequestID {
            madeRequestID.withBytes { body("request_id", .bare($0)) }
        }
        if let upstreamRequestID { body("upstream_request_id", .string(upstreamRequestID)) }
        if attempts > 1 { body("attempts", .number(Int64(attempts))) }
        // The response's model when it names one, else the one the client sent (model routing).
        if let model = usage?.model ?? requestModel { body("model", .string(model)) }
        guard let usage else { return }
        if let tokens = usage.inputTokens { body("input_tokens", .number(Int64(tokens))) }
        if let tokens = usage.outputTokens { body("output_tokens", .number(Int64(tokens))) }
        if let tokens = usage.cacheReadTokens { body("cache_read_tokens", .number(Int64(tokens))) }
        if let tokens = usage.cacheWriteTokens { body("cache_write_tokens", .number(Int64(tokens))) }
        body("usage", .string(usage.status.rawValue))
    }
}
