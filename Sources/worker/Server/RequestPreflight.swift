import NIOHTTP1

/// Checks 1–3 of behaviour §5 on a decoded request head, preceded by the size limits, in the
/// spec's order. Pure, so the order is tested without sockets.
enum RequestPreflight {
    static func check(_ head: HTTPRequestHead, limits: WorkerLimits) -> ProxyErrorResponse? {
        if head.uri.utf8.count > limits.maxRequestTargetBytes { return .uriTooLong }
        if head.headers.count > limits.maxHeaderCount { return .headersTooLarge }
        var headerBytes = 0
        for (name, value) in head.headers { headerBytes += name.utf8.count + value.utf8.count }
        if headerBytes > limits.maxHeaderBytes { return .headersTooLarge }

        if head.version != .http1_1 { return .versionNotSupported }
        if head.method == .CONNECT || head.headers.contains(name: "upgrade")
            || ForwardingHeaders.connectionTokens(head.headers).contains("upgrade")
        {
            return .notImplemented
        }
        let hosts = head.headers["host"]
        // RFC 9112 §3.2: exactly one Host; a blank one is as good as none.
        guard hosts.count == 1, !hosts[0].allSatisfy({ $0 == " " || $0 == "\t" }) else { return .missingHost }
        return nil
    }
}
