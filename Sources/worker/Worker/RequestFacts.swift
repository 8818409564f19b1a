import Common
import NIOCore
import NIOHTTP1

/// What happened to one request, as cheap values collected whether or not anything is written
/// (conventions: facts first, strings last). Every request ends in one place,
/// `WorkerContext.requestEnded`, which reads these facts for the request line; metrics, usage and
/// limits will read the same values. Nothing here is a secret, a header value or a body.
struct RequestFacts {
    /// When the request's head was complete (or the malformed bytes were read).
    var startedAt: NIODeadline
    /// The request's method and request-target's bytes (a slice of the head's), for the request
    /// line's `method`, `request_url` and `target_url` (kept only when request lines are
    /// written: not the whole head, whose copy cost ~200 instructions); nil for bytes that were
    /// not a request.
    var method: HTTPMethod?
    var requestTarget: ByteBuffer?
    /// The route the request took (its upstream and target), once routed.
    var route: Router.Route?
    /// Where the route's pieces are in the request-target, for the request line's `target_url`
    /// (kept only when request lines are written, like `head`).
    var match: Router.Match?
    /// The `id` of the client key that was accepted.
    var keyID: String?
    /// The accepted key's series key for the metrics' `key` label (`MetricsSchema`).
    var keyMetric = MetricsSchema.noneKey
    /// Instants of the upstream exchange (`ProxyExchange.upstreamSentNs` …; 0 = did not happen),
    /// for docs/observability.md's `fluxgate_upstream_response_seconds` and `fluxgate_overhead_seconds`.
    var upstreamSentNs: UInt64 = 0
    var upstreamHeadNs: UInt64 = 0
    var clientHeadNs: UInt64 = 0
    /// The request id (docs/observability.md "Request ids"), made only when needed: a request
    /// line is written or `propagate_request_id` is on.
    var requestID: String?
    /// The upstream's own id (`x-request-id`, or Anthropic's `request-id`), kept only when request
    /// lines are written.
    var upstreamRequestID: String?
    /// Request body bytes received; nil for a request that announced no body (as Fluxgate logs it).
    var requestBodyBytes: Int?
    /// Response body bytes sent (payload, without chunk framing).
    var responseBodyBytes: Int?
    /// The status the client was sent (499: it closed before the response was complete).
    var status: UInt = 0
    var outcome = RequestOutcome.responded
    /// Why the upstream could not answer, when it could not (the request line's `error`).
    var upstreamError: UpstreamErrorCause?
    /// Tries made upstream (the first included); 0 when the request never left the proxy.
    var attempts = 0
    /// The rate limit that refused the request (its 429), for `fluxgate_rate_limited_total`.
    var rateLimited: RateLimitKind?
    /// The target of the last try, when the route has several (nil: the route's one target).
    var target: UpstreamTarget?
    /// The `model` the client sent, when the request was routed by it (the request line's
    /// `model` when the response names none).
    var requestModel: String?
    /// Refused with 404 `model_not_found` (`fluxgate_rejected_requests_total{reason="unknown_model"}`).
    var unknownModel = false
    /// The response's token usage (docs/usage.md), when its upstream reads usage and a response
    /// head came: what the request line shows and what token limits settle on.
    var usage: UsageResult?

    init(startedAt: NIODeadline) {
        self.startedAt = startedAt
    }

    /// A new request on the same connection: field by field, in place (assigning a new value
    /// whole went through generic value witnesses, ~2,300 instructions per request).
    mutating func reset(startedAt: NIODeadline) {
        self.startedAt = startedAt
        method = nil
        requestTarget = nil
        route = nil
        match = nil
        keyID = nil
        keyMetric = MetricsSchema.noneKey
        upstreamSentNs = 0
        upstreamHeadNs = 0
        clientHeadNs = 0
        if requestID != nil { requestID = nil }
        if upstreamRequestID != nil { upstreamRequestID = nil }
        requestBodyBytes = nil
        responseBodyBytes = nil
        status = 0
        outcome = .responded
        upstreamError = nil
        attempts = 0
        if rateLimited != nil { rateLimited = nil }
        target = nil
        if requestModel != nil || unknownModel {
            requestModel = nil
            unknownModel = false
        }
        usage = nil
    }
}

/// How a request ended.
enum RequestOutcome: Equatable {
    /// The upstream's response was relayed whole.
    case responded
    /// The proxy answered itself before any upstream response (a check refused it, or the
    /// upstream could not be reached). (No payload: the facts stay cheap to reset.)
    case proxyError
    /// The client closed before the response was complete.
    case clientClosed
    /// The upstream's response was cut after its head had been relayed.
    case upstreamCut
}

/// Why an upstream exchange failed, for the request line's `error` field: the layer that failed
/// and the system's or OpenSSL's fixed reason text. Never a header, a URL with credentials or a key.
struct UpstreamErrorCause: Equatable, CustomStringConvertible {
    enum Layer: String {
        case dns, connect, tls, timeout, reset, `protocol`, truncated
    }

    var layer: Layer
    var reason: String

    var description: String { reason.isEmpty ? layer.rawValue : "\(layer.rawValue): \(reason)" }
}
