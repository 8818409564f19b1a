#if canImport(Glibc)
import Glibc
#endif

/// The request-target of an HTTP/1.1 request split into raw path and raw query, as byte ranges of
/// its UTF-8, never decoded (the path is forwarded byte for byte, docs/routing-and-forwarding.md
/// "Routing").
struct RequestTarget: Equatable {
    /// The path; empty for an absolute-form target without one, which means `/`.
    var path: Range<Int>
    /// The bytes after the first `?`, nil when there is no `?` at all (`/a?` has an empty query).
    var query: Range<Int>?

    /// Accepts origin-form (`/v1/models?x=1`) and absolute-form (`http://host/v1/models`, RFC 9112
    /// §3.2.2: a server must accept it; the authority is ignored, routing uses the path).
    /// Anything else (`*`, authority-form) is not a routable target.
    init?(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        var start = 0
        if bytes.first != UInt8(ascii: "/") {
            var colon = 0
            while colon < count, bytes[colon] != UInt8(ascii: ":") { colon += 1 }
            guard colon + 2 < count, bytes[colon + 1] == UInt8(ascii: "/"), bytes[colon + 2] == UInt8(ascii: "/"),
                ASCIIBytes.equals(bytes, 0..<colon, lowercase: "http") || ASCIIBytes.equals(bytes, 0..<colon, lowercase: "https")
            else { return nil }
            start = colon + 3
            while start < count, bytes[start] != UInt8(ascii: "/"), bytes[start] != UInt8(ascii: "?") { start += 1 }
        }
        var question = start
        while question < count, bytes[question] != UInt8(ascii: "?") { question += 1 }
        path = start..<question
        query = question < count ? question + 1..<count : nil
    }

    /// Where the userinfo of a request-target is (`user:secret` in `http://user:secret@host/x`,
    /// or before the `@` of an authority without a scheme), nil when there is none. RFC 9110
    /// §4.2.4: a recipient treats userinfo in a target as an error (`RequestPreflight` answers
    /// 400), and it must never be logged (`URLRedaction`). Origin-form targets (`/…`) have none,
    /// whatever `@` their path holds.
    static func userinfo(in bytes: UnsafeRawBufferPointer) -> Range<Int>? {
        guard let first = bytes.first, first != UInt8(ascii: "/") else { return nil }
        let count = bytes.count
        var start = 0
        var colon = 0
        while colon < count, bytes[colon] != UInt8(ascii: ":"), bytes[colon] != UInt8(ascii: "/") { colon += 1 }
        if colon + 2 < count, bytes[colon] == UInt8(ascii: ":"), bytes[colon + 1] == UInt8(ascii: "/"),
            bytes[colon + 2] == UInt8(ascii: "/")
        {
            start = colon + 3
        }
        var at: Int?
        var i = start
        while i < count, bytes[i] != UInt8(ascii: "/"), bytes[i] != UInt8(ascii: "?"), bytes[i] != UInt8(ascii: "#") {
            if bytes[i] == UInt8(ascii: "@") { at = i }
            i += 1
        }
        return at.map { start..<$0 }
    }

    /// True when a segment of the path is `.` or `..`, also percent-encoded (`%2e`, `%2E`, `.%2e`,
    /// …). Such paths are rejected with 400 rather than resolved
    /// (docs/routing-and-forwarding.md "Differences from Fluxgate").
    func hasDotSegment(_ bytes: UnsafeRawBufferPointer) -> Bool {
        // Almost every path has neither `.` nor `%`: answer that without looking at segments
        // (`memchr` twice: a closure over the range cost ~250 instructions a request).
        guard !path.isEmpty else { return false }
        let start = bytes.baseAddress! + path.lowerBound
        guard memchr(start, Int32(UInt8(ascii: ".")), path.count) != nil || memchr(start, Int32(UInt8(ascii: "%")), path.count) != nil
        else { return false }
        var segmentStart = path.lowerBound
        for i in path.lowerBound...path.upperBound where i == path.upperBound || bytes[i] == UInt8(ascii: "/") {
            if Self.isDotSegment(bytes, segmentStart..<i) { return true }
            segmentStart = i + 1
        }
        return false
    }

    private static func isDotSegment(_ bytes: UnsafeRawBufferPointer, _ segment: Range<Int>) -> Bool {
        var dots = 0
        var i = segment.lowerBound
        while i < segment.upperBound {
            if bytes[i] == UInt8(ascii: ".") {
                i += 1
            } else if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < segment.upperBound, bytes[i + 1] == UInt8(ascii: "2"), bytes[i + 2] | 0x20 == UInt8(ascii: "e")
                else { return false }
                i += 3
            } else {
                return false
            }
            dots += 1
            if dots > 2 { return false }
        }
        return dots == 1 || dots == 2
    }
}
