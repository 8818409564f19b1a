/// The request-target of an HTTP/1.1 request split into raw path and raw query, never decoded
/// (the path is forwarded byte for byte, behaviour §5).
struct RequestTarget: Sendable, Equatable {
    var path: Substring
    /// Text after the first `?`, nil when there is no `?` at all (`/a?` has an empty query).
    var query: Substring?

    /// Accepts origin-form (`/v1/models?x=1`) and absolute-form (`http://host/v1/models`, RFC 9112
    /// §3.2.2: a server must accept it; the authority is ignored, routing uses the path).
    /// Anything else (`*`, authority-form) is not a routable target.
    init?(uri: String) {
        var rest = Substring(uri)
        if rest.utf8.first != UInt8(ascii: "/") {
            guard let schemeEnd = rest.firstRange(of: "://") else { return nil }
            let scheme = rest[..<schemeEnd.lowerBound].lowercased()
            guard scheme == "http" || scheme == "https" else { return nil }
            let afterAuthority = rest[schemeEnd.upperBound...]
            guard let slash = afterAuthority.firstIndex(where: { $0 == "/" || $0 == "?" }) else {
                rest = "/"
                self.path = rest
                self.query = nil
                return
            }
            rest = afterAuthority[slash...]
            if rest.hasPrefix("?") { rest = "/" + rest }
        }
        if let offset = ASCIIBytes.firstOffset(of: UInt8(ascii: "?"), in: rest) {
            let question = rest.utf8.index(rest.utf8.startIndex, offsetBy: offset)
            self.path = rest[..<question]
            self.query = rest[rest.utf8.index(after: question)...]
        } else {
            self.path = rest
            self.query = nil
        }
    }

    /// True when a segment is `.` or `..`, also percent-encoded (`%2e`, `%2E`, `.%2e`, …).
    /// Such paths are rejected with 400 (behaviour §4 [differs]) rather than resolved.
    var hasDotSegment: Bool {
        // Almost every path has neither `.` nor `%`: answer that without splitting into segments
        // (the split allocated an array per request).
        let suspect = path.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "%") }
        } ?? true
        guard suspect else { return false }
        for segment in path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if Self.isDotSegment(segment) { return true }
        }
        return false
    }

    private static func isDotSegment(_ segment: Substring.UTF8View.SubSequence) -> Bool {
        var dots = 0
        var i = segment.startIndex
        while i != segment.endIndex {
            let c = segment[i]
            if c == UInt8(ascii: ".") {
                i = segment.index(after: i)
            } else if c == UInt8(ascii: "%") {
                let a = segment.index(after: i)
                guard a != segment.endIndex, segment[a] == UInt8(ascii: "2") else { return false }
                let b = segment.index(after: a)
                guard b != segment.endIndex, segment[b] | 0x20 == UInt8(ascii: "e") else { return false }
                i = segment.index(after: b)
            } else {
                return false
            }
            dots += 1
            if dots > 2 { return false }
        }
        return dots == 1 || dots == 2
    }
}
