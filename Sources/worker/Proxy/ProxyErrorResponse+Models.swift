/// The answers of model routing (docs/routing-and-forwarding.md "Model routing" and "Errors made
/// by the proxy").
extension ProxyErrorResponse {
    /// A model no entry names, or one the key may not use: the same answer, so a key learns
    /// nothing about models it may not use.
    static let modelNotFound = Self(
        .notFound, "The model does not exist or you do not have access to it.", "invalid_request_error", "model_not_found")
    /// Not a JSON object, or no string `model` at its top level.
    static let modelMissing = Self(
        .badRequest, "The request body must be a JSON object with a string \"model\" member.",
        "invalid_request_error", "invalid_model")
    /// `model` not found within the first 1 MiB of the body.
    static let modelBeyondLimit = Self(
        .payloadTooLarge, "The request body's \"model\" member must be within its first 1 MiB.",
        "invalid_request_error", "model_beyond_limit")

    /// A 200 with `json` as its body: `GET /v1/models`, answered by the proxy (an empty `type`
    /// says `message` is the whole body, `jsonBody`).
    static func document(_ json: String) -> Self { Self(.ok, json, "", "") }
}
