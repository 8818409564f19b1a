import NIOHTTP1

/// A request over a limit, as the client is told (docs/rate-limits.md "Over a limit"): 429 in the
/// OpenAI error shape, naming the kind of limit and its value, never a key or its id.
struct RateLimitRefusal {
    enum Owner: String {
        case key, upstream
    }

    var kind: RateLimitKind
    var response: ProxyErrorResponse

    static let inFlightExceeded = RateLimitRefusal(
        kind: .inFlight,
        response: ProxyErrorResponse(
            .tooManyRequests, "Too many requests in flight for this API key or upstream; retry later.",
            "rate_limit_exceeded", "in_flight", headers: [.init(name: "retry-after", value: "1")]))

    /// `on_unavailable: reject` while Redis cannot be asked.
    static let backendUnavailable = ProxyErrorResponse(
        .serviceUnavailable, "The rate-limit store is unavailable; retry later.", "server_error",
        "rate_limit_store_unavailable", headers: [.init(name: "retry-after", value: "1")])

    /// `wait`: nanoseconds until the window has room.
    static func requests(limit: Int, wait: Int64, owner: Owner) -> RateLimitRefusal {
        refusal(.requests, unit: "requests", limit: String(limit), wait: wait, owner: owner)
    }

    /// `wait`: nanoseconds until the window has room; nil when the reservation alone is over
    /// the limit (it never fits: a minute is the honest answer).
    static func tokens(limit: Int64, wait: Int64?, owner: Owner) -> RateLimitRefusal {
        refusal(.tokens, unit: "tokens", limit: String(limit), wait: wait ?? RateLimitStage.window, owner: owner)
    }

    /// The 429 of docs/rate-limits.md for a limit counted in `unit` (`requests`, `tokens`: also
    /// the error's `code` and the `x-ratelimit-*-<unit>` headers' suffix).
    private static func refusal(_ kind: RateLimitKind, unit: String, limit: String, wait: Int64, owner: Owner) -> RateLimitRefusal {
        let seconds = max(1, (wait + 999_999_999) / 1_000_000_000)
        let subject = owner == .key ? "this API key" : "this upstream"
        return RateLimitRefusal(
            kind: kind,
            response: ProxyErrorResponse(
                .tooManyRequests,
                "Rate limit of \(limit) \(unit) per minute reached for \(subject); retry after \(seconds) s.",
                "rate_limit_exceeded", unit,
                headers: [
                    .init(name: "retry-after", value: String(seconds)),
                    .init(name: "x-ratelimit-limit-\(unit)", value: limit),
                    .init(name: "x-ratelimit-remaining-\(unit)", value: "0"),
                    .init(name: "x-ratelimit-reset-\(unit)", value: resetText(wait)),
                ]))
    }

    /// OpenAI's form of a reset duration: "1s", "6m0s", "250ms".
    static func resetText(_ nanoseconds: Int64) -> String {
        let milliseconds = max(0, (nanoseconds + 999_999) / 1_000_000)
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        let seconds = milliseconds / 1000
        let fraction = milliseconds % 1000
        let secondsText = fraction == 0 ? "\(seconds % 60)s" : "\(seconds % 60).\(String(fraction + 1000).dropFirst())s"
        return seconds >= 60 ? "\(seconds / 60)m\(secondsText)" : secondsText
    }
}
