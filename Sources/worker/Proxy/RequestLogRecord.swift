import Logging

/// The one `Request processed` line of behaviour §7. The field order is the log handler's job
/// (Common/Logging prints these names first, in `fieldOrder`); absent fields are left out.
/// Nothing here may hold a secret, a header value or a body. `request_url` and `target_url` keep
/// their query string as Fluxgate logs them; a client that puts a credential in the query (e.g.
/// Google's `?key=`) therefore has it logged — documented in docs/, not redacted here.
struct RequestLogRecord: Sendable, Equatable {
    static let message: Logger.Message = "Request processed"
    static let fieldOrder = [
        "client_ip", "method", "request_url", "request_body_length", "api_key", "target_url",
        "upstream", "duration_ms", "status", "response_body_length",
    ]

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

    /// The fields in the order of behaviour §7, absent ones omitted.
    var fields: [(key: String, value: String)] {
        var out: [(key: String, value: String)] = []
        func add(_ key: String, _ value: String?) { if let value { out.append((key, value)) } }
        add("client_ip", clientIP)
        add("method", method)
        add("request_url", requestURL)
        add("request_body_length", requestBodyLength.map(String.init))
        add("api_key", apiKeyID)
        add("target_url", targetURL)
        add("upstream", upstream)
        add("duration_ms", durationMs.map(String.init))
        add("status", status.map(String.init))
        add("response_body_length", responseBodyLength.map(String.init))
        return out
    }

    /// Numbers stay numbers (`.stringConvertible`), so the JSON log format prints them unquoted.
    var metadata: Logger.Metadata {
        var metadata = Logger.Metadata()
        func add(_ key: String, _ value: String?) { if let value { metadata[key] = .string(value) } }
        func add(_ key: String, _ value: (some CustomStringConvertible & Sendable)?) {
            if let value { metadata[key] = .stringConvertible(value) }
        }
        add("client_ip", clientIP)
        add("method", method)
        add("request_url", requestURL)
        add("request_body_length", requestBodyLength)
        add("api_key", apiKeyID)
        add("target_url", targetURL)
        add("upstream", upstream)
        add("duration_ms", durationMs)
        add("status", status)
        add("response_body_length", responseBodyLength)
        return metadata
    }

    func emit(to logger: Logger) {
        logger.trace(Self.message, metadata: metadata)
    }
}
