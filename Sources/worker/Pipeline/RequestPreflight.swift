/// Checks 1–4 of docs/routing-and-forwarding.md's "Order of checks" on a parsed request head, in
/// that order. (The header count and size limits are the parser's: it answers 431 itself.) Pure,
/// so the order is tested without sockets.
enum RequestPreflight {
    static func check(_ request: RequestHead, limits: WorkerLimits) -> ProxyErrorResponse? {
        if request.target.count > limits.maxRequestTargetBytes { return .uriTooLong }
        if request.hasUserinfo { return .userinfoInTarget }
        if request.version != .http1_1 { return .versionNotSupported }
        // A case pattern, not `==`: HTTPMethod's `==` is RawRepresentable's, which builds both
        // raw-value strings and compares them (~100 instructions).
        if case .CONNECT = request.method { return .notImplemented }
        if request.facts.upgrade { return .notImplemented }
        // RFC 9112 §3.2: exactly one Host; a blank one is as good as none.
        guard request.facts.hostCount == 1, !request.facts.hostIsBlank else { return .missingHost }
        return nil
    }
}

extension RequestHead {
    /// The target carries `user:password@` (RFC 9110 §4.2.4: an error, and a secret to keep out
    /// of every log line).
    var hasUserinfo: Bool {
        headerBytes.withUnsafeReadableBytes { RequestTarget.userinfo(in: UnsafeRawBufferPointer(rebasing: $0[target])) != nil }
    }
}
