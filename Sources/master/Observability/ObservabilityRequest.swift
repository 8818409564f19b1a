/// The one thing the observability listener reads from a client: its request head
/// (docs/observability.md "Endpoints"). Pure: bytes in, a decision out.
enum ObservabilityRequest: Equatable {
    /// Keep reading: no blank line yet, and still under the limit.
    case incomplete
    case get(path: String, head: Bool)
    /// A method other than GET or HEAD (405).
    case methodNotAllowed
    /// Not an HTTP/1 request line, or a head over `maxHeadBytes` (400, then close).
    case malformed

    /// The longest head accepted: a scraper's is a few hundred bytes.
    static let maxHeadBytes = 8 * 1024

    static func parse(_ bytes: [UInt8]) -> ObservabilityRequest {
        guard let end = headEnd(bytes) else { return bytes.count > maxHeadBytes ? .malformed : .incomplete }
        guard end <= maxHeadBytes else { return .malformed }
        let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\r")) ?? end
        let parts = bytes[..<lineEnd].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].starts(with: Array("HTTP/1.".utf8)), let target = parts[1].first,
            target == UInt8(ascii: "/")
        else { return .malformed }
        let method = String(decoding: parts[0], as: UTF8.self)
        // The query (`?…`) is not part of the path: `/metrics?x=1` is `/metrics`.
        let path = String(decoding: parts[1].prefix { $0 != UInt8(ascii: "?") }, as: UTF8.self)
        switch method {
        case "GET": return .get(path: path, head: false)
        case "HEAD": return .get(path: path, head: true)
        default: return method.isEmpty || !method.utf8.allSatisfy(Self.isToken) ? .malformed : .methodNotAllowed
        }
    }

    /// Index just past the first CRLFCRLF.
    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 3..<bytes.count
        where bytes[index] == 10 && bytes[index - 1] == 13 && bytes[index - 2] == 10 && bytes[index - 3] == 13 {
            return index + 1
        }
        return nil
    }

    private static func isToken(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }
}

/// What the listener sends back: always `Connection: close`, one response per connection.
struct ObservabilityResponse: Equatable {
    var status: Int
    var reason: String
    var contentType = "text/plain; charset=utf-8"
    var body: [UInt8]
    var extraHeaders: [(String, String)] = []

    static func == (a: Self, b: Self) -> Bool {
        a.status == b.status && a.body == b.body && a.contentType == b.contentType
    }

    static func text(_ status: Int, _ reason: String, _ body: String) -> Self {
        Self(status: status, reason: reason, body: Array((body + "\n").utf8))
    }

    /// The bytes on the wire; a HEAD request gets the head only (with the body's length).
    func wire(head: Bool) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in extraHeaders { text += "\(name): \(value)\r\n" }
        text += "Connection: close\r\n\r\n"
        return Array(text.utf8) + (head ? [] : body)
    }
}
