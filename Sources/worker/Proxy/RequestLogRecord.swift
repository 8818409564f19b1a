import Logging

/// The one `Request processed` line of behaviour §7. The field order is the log handler's job
/// (Common/Logging prints these names first, in `fieldOrder`); absent fields are left out.
/// Nothing here may hold a secret, a header value or a body: `requestURL` and `targetURL` are
/// logged without their query string, because providers such as Google take keys in `?key=`.
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
        add("request_url", requestURL.map(Self.withoutQuery))
        add("request_body_length", requestBodyLength.map(String.init))
        add("api_key", apiKeyID)
        add("target_url", targetURL.map(Self.withoutQuery))
        add("upstream", upstream)
        add("duration_ms", durationMs.map(String.init))
        add("status", status.map(String.init))
        add("response_body_length", responseBodyLength.map(String.init))
        return out
    }

    var metadata: Logger.Metadata {
        var metadata = Logger.Metadata()
        for (key, value) in fields { metadata[key] = .string(value) }
        return metadata
    }

    func emit(to logger: Logger) {
        logger.trace(Self.message, metadata: metadata)
    }

    static func withoutQuery(_ url: String) -> String {
        guard let question = url.firstIndex(of: "?") else { return url }
        return String(url[..<question])
    }
}
