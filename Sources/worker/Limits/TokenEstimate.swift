import Common
import NIOCore

/// What a request body asks for (docs/rate-limits.md "Tokens"): the top-level `max_tokens`,
/// `max_completion_tokens` (OpenAI chat) or `max_output_tokens` (Responses), read with the
/// project's one JSON parser from the body's first bytes when they are the whole body.
enum TokenEstimate {
    static let fields = ["max_tokens", "max_completion_tokens", "max_output_tokens"]

    /// nil when the body is not whole, not a JSON object, or names none of the fields.
    static func maxTokens(in body: ByteBuffer?, complete: Bool) -> Int64? {
        guard complete, let body, body.readableBytes > 0 else { return nil }
        guard let object = (try? JSONParser.parse(body.readableBytesView))?.objectValue else { return nil }
        for field in fields {
            if let value = object[field]?.int64Value, value >= 0 { return value }
        }
        return nil
    }
}
