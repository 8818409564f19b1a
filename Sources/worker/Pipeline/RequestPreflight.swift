/// Checks 1–3 of behaviour §5 on a parsed request head, preceded by the request-target's size
/// limit, in the spec's order. (The header count and size limits are the parser's: it answers 431
/// itself.) Pure, so the order is tested without sockets.
enum RequestPreflight {
    static func check(_ request: RequestHead, limits: WorkerLimits) -> ProxyErrorResponse? {
        if request.target.count > limits.maxRequestTargetBytes { return .uriTooLong }
        if request.version != .http1_1 { return .versionNotSupported }
        if request.method == .CONNECT || request.facts.upgrade { return .notImplemented }
        // RFC 9112 §3.2: exactly one Host; a blank one is as good as none.
        guard request.facts.hostCount == 1, !request.facts.hostIsBlank else { return .missingHost }
        return nil
    }
}
