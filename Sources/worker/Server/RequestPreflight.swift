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
            case 4 where name.lowercased() == "host":
                hosts += 1
                blankHost = value.utf8.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
            case 7 where name.lowercased() == "upgrade":
                upgrade = true
            case 10 where name.lowercased() == "connection":
                upgrade = upgrade || hasToken(value, "upgrade")
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
        for (name, value) in head.headers where name.utf8.count == 6 && name.lowercased() == "expect" {
            if hasToken(value, "100-continue") { return true }
        }
        return false
    }

    /// Whether the comma-separated `value` lists `token` (lower-case ASCII), ignoring case and
    /// surrounding whitespace.
    static func hasToken(_ value: String, _ token: String) -> Bool {
        for part in value.utf8.split(separator: UInt8(ascii: ",")) {
            var s = part[...]
            while let c = s.first, c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") { s = s.dropFirst() }
            while let c = s.last, c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") { s = s.dropLast() }
            if s.count == token.utf8.count && zip(s, token.utf8).allSatisfy({ $0 | 0x20 == $1 | 0x20 }) { return true }
        }
        return false
    }
}
