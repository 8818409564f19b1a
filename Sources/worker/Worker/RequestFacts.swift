import NIOCore

/// What happened to one request, as cheap values collected whether or not anything is written
/// (conventions: facts first, strings last). Every request ends in one place,
/// `WorkerContext.requestEnded`, which reads these facts for the request line; metrics, usage and
/// limits will read the same values. Nothing here is a secret, a header value or a body.
struct RequestFacts {
    /// When the request's head was complete (or the malformed bytes were read).
    var startedAt: NIODeadline
    /// The head as parsed, for the request line's method and URL (kept only when request lines
    /// are written); nil for bytes that were not a request.
    var head: RequestHead?
    /// The route the request took (its upstream and target), once routed.
    var route: Router.Route?
    /// Where the route's pieces are in the request-target, for the request line's `target_url`
    /// (kept only when request lines are written, like `head`).
    var match: Router.Match?
    /// The `id` of the client key that was accepted.
    var keyID: String?
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
    /// The `model` the client sent, when the request was routed by it (the request line's
    /// `model` when the response names none).
    var requestModel: String?
    /// Refused with 404 `model_not_found` (for `fluxgate_rejected_requests_total{reason="unknown_model"}`
    /// once the metrics registry exists).
    var unknownModel = false

    init(startedAt: NIODeadline, head: RequestHead?) {
        self.startedAt = startedAt
        self.head = head
    }

    /// A new request on the same connection: field by field, in place (assigning a new value
    /// whole went through generic value witnesses, ~2,300 instructions per request).
    mutating func reset(startedAt: NIODeadline) {
        self.startedAt = startedAt
        head = nil
        route = nil
        match = nil
        keyID = nil
        requestBodyBytes = nil
        responseBodyBytes = nil
        status = 0
        outcome = .responded
        upstreamError = nil
        attempts = 0
        if requestModel != nil || unknownModel {
            requestModel = nil
            unknownModel = false
        }
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
        case dns, connect, tls, timeout, reset, `protocol`
    }

    var layer: Layer
    var reason: String

    var description: String { reason.isEmpty ? layer.rawValue : "\(layer.rawValue): \(reason)" }
}
