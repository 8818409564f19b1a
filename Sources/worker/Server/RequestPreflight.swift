import NIOHTTP1

/// Checks 1–3 of behaviour §5 on a decoded request head, preceded by the size limits, in the
/// spec's order. Pure, so the order is tested without sockets.
enum RequestPreflight {
    static func check(_ head: HTTPRequestHead, limits: WorkerLimits) -> ProxyErrorResponse? {
        if head.uri.utf8.count > limits.maxRequestTargetBytes { return .uriTooLong }
        if head.headers.count > limits.maxHeaderCount { return .headersTooLarge }
        // One pass over the headers, building nothing: this runs for every request.
        var headerBytes = 0
        var hosts = 0
        var blankHost = false
        var upgrade = false
        for (name, value) in head.headers {
            headerBytes += name.utf8.count + value.utf8.count
            switch name.utf8.count {
            case 4 where ASCIIBytes.equals(name, lowercase: "host"):
                hosts += 1
                blankHost = value.utf8.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
            case 7 where ASCIIBytes.equals(name, lowercase: "upgrade"):
                upgrade = true
            case 10 where ASCIIBytes.equals(name, lowercase: "connection"):
                upgrade = upgrade || ASCIIBytes.listContains(value, token: "upgrade")
            default:
                break
            }
        }
        if headerBytes > limits.maxHeaderBytes { return .headersTooLarge }

        if head.version != .http1_1 { return .versionNotSupported }
        if head.method == .CONNECT || upgrade { return .notImplemented }
        // RFC 9112 §3.2: exactly one Host; a blank one is as good as none.
        guard hosts == 1, !blankHost else { return .missingHost }
        return nil
    }

    /// `Expect: 100-continue` (any case), which the proxy answers itself.
    static func expectsContinue(_ head: HTTPRequestHead) -> Bool {
        for (name, value) in head.headers where ASCIIBytes.equals(name, lowercase: "expect") {
            if ASCIIBytes.listContains(value, token: "100-continue") { return true }
        }
        return false
    }
}
