import Foundation

/// A deliberately simple blocking HTTP/1.1 client over one TCP connection, so tests control every
/// byte on the wire (malformed requests, pipelining, half-sent bodies) and see every byte back.
public final class RawConnection {
    public struct Response {
        public var status: Int
        public var reason: String
        public var headers: [(String, String)]
        public var body: [UInt8]

        public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        public func headers(named name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
        public var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    public enum Failure: Error { case connect(Int32), closed, timeout, malformed(String) }

    public let fd: Int32
    private var buffer: [UInt8] = []

    public init(port: Int, host: String = "127.0.0.1", timeout: Double = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw Failure.connect(e)
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setTimeout(timeout)
    }

    deinit { Glibc.close(fd) }

    public func setTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure.closed }
            offset += n
        }
    }

    /// Sends `count` bytes of the mock's repeating pattern without holding them all in memory.
    public func sendPattern(count: Int) throws {
        var left = count
        while left > 0 {
            let n = min(left, MockPattern.block.count)
            try send(Array(MockPattern.block[0..<n]))
            left -= n
        }
    }

    /// Half-closes or fully closes the connection abruptly (RST with SO_LINGER 0 when `reset`).
    public func close(reset: Bool = false) {
        if reset {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Reads more bytes into the buffer; false at end of stream.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let n = recv(fd, &chunk, chunk.count, 0)
        if n > 0 {
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
        if n == 0 { return false }
        if errno == EAGAIN || errno == EWOULDBLOCK { throw Failure.timeout }
        if errno == ECONNRESET { return false }
        throw Failure.closed
    }

    /// True when the peer has closed the connection (reads end of stream within the timeout).
    public func isClosedByPeer(timeout: Double = 5) -> Bool {
        setTimeout(timeout)
        while true {
            guard let more = try? fill() else { return false }
            if !more { return true }
        }
    }

    private func readLine() throws -> String {
        while true {
            if let i = buffer.firstIndex(of: 10) {
                var line = buffer[0..<i]
                if line.last == 13 { line = line.dropLast() }
                buffer.removeFirst(i + 1)
                return String(decoding: line, as: UTF8.self)
            }
            guard try fill() else { throw Failure.closed }
        }
    }

    private func readExactly(_ count: Int, into body: inout [UInt8]) throws {
        while buffer.count < count { guard try fill() else { throw Failure.closed } }
        body.append(contentsOf: buffer[0..<count])
        buffer.removeFirst(count)
    }

    /// Reads the status line and headers only.
    public func readHead() throws -> Response {
        var statusLine = try readLine()
        while statusLine.isEmpty { statusLine = try readLine() }
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw Failure.malformed(statusLine)
        }
        var headers: [(String, String)] = []
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { throw Failure.malformed(line) }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        return Response(status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers, body: [])
    }

    /// Reads one whole response (Content-Length, chunked, or until close). `onChunk` sees each
    /// chunk of a chunked body as it arrives, with the time it arrived.
    public func readResponse(method: String = "GET", onChunk: (([UInt8]) -> Void)? = nil) throws -> Response {
        try readResponse(afterHead: readHead(), method: method, onChunk: onChunk)
    }

    /// Reads the body of a response whose head `readHead` returned.
    public func readResponse(
        afterHead head: Response, method: String = "GET",
        onChunk: (([UInt8]) -> Void)? = nil
    ) throws -> Response {
        var response = head
        if method == "HEAD" || response.status == 204 || response.status == 304 || (100..<200).contains(response.status) {
            return response
        }
        if response.header("transfer-encoding")?.lowercased().contains("chunked") == true {
            while true {
                let sizeLine = try readLine()
                guard let size = Int(sizeLine.split(separator: ";")[0].trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw Failure.malformed("chunk size \(sizeLine)")
                }
                if size == 0 {
                    while try !readLine().isEmpty {}
                    break
                }
                var chunk: [UInt8] = []
                try readExactly(size, into: &chunk)
                onChunk?(chunk)
                response.body += chunk
                _ = try readLine()
            }
        } else if let length = response.header("content-length").flatMap(Int.init) {
            try readExactly(length, into: &response.body)
        } else {
            while try fill() {}
            response.body = buffer
            buffer.removeAll()
        }
        return response
    }

    /// Streams a Content-Length body without holding it: discards bytes, returns count and SHA-256.
    public func readStreamedBody(length: Int) throws -> (count: Int, sha256: String) {
        let digest = SHA256Stream()
        var left = length
        if !buffer.isEmpty {
            let n = min(left, buffer.count)
            digest.update(buffer[0..<n])
            buffer.removeFirst(n)
            left -= n
        }
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        while left > 0 {
            let n = recv(fd, &chunk, min(chunk.count, left), 0)
            guard n > 0 else { throw n == 0 ? Failure.closed : Failure.timeout }
            digest.update(chunk[0..<n])
            left -= n
        }
        return (length, digest.finalHex())
    }

    /// One request and its response on this connection.
    public func request(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = [],
        host: String = "localhost"
    ) throws -> Response {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: \(host)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if !body.isEmpty || ["POST", "PUT", "PATCH"].contains(method) { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        try send(Array(text.utf8) + body)
        return try readResponse(method: method)
    }
}
