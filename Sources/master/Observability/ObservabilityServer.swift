#if canImport(Glibc)
import Glibc
#endif
import Common

/// The `observability.listen` listener, served on the master's own poll loop
/// (docs/observability.md "Endpoints"). Every socket is non-blocking and every connection has a
/// deadline, so a slow or huge request never stalls the loop: at most `maxConnections` at once,
/// a head of at most `ObservabilityRequest.maxHeadBytes`, `timeout` for the whole exchange.
struct ObservabilityServer {
    static let maxConnections = 32
    static let timeout: Duration = .seconds(10)

    private struct Connection {
        let fd: FileDescriptor
        let deadline: Instant
        var input: [UInt8] = []
        /// The response, once made; `sent` of it are written.
        var output: [UInt8]?
        var sent = 0
    }

    private(set) var listener: FileDescriptor?
    private(set) var address: BindAddress?
    private var connections: [CInt: Connection] = [:]

    /// Opens the listener at `address` (closing any other first); nil closes it.
    mutating func listen(on address: BindAddress?) throws(SystemError) {
        guard address != self.address || (address != nil && listener == nil) else { return }
        close()
        guard let address else { return }
        listener = try Sockets.listen(on: address, backlog: 64, reusePort: false)
        self.address = address
    }

    mutating func close() {
        listener?.close()
        listener = nil
        address = nil
        for connection in connections.values { connection.fd.close() }
        connections = [:]
    }

    /// The descriptors to poll and for what.
    var pollDescriptors: [(fd: FileDescriptor, events: Int16)] {
        var result: [(FileDescriptor, Int16)] = []
        if let listener { result.append((listener, Int16(POLLIN))) }
        for connection in connections.values.sorted(by: { $0.fd.rawValue < $1.fd.rawValue }) {
            result.append((connection.fd, Int16(connection.output == nil ? POLLIN : POLLOUT)))
        }
        return result
    }

    /// `fd` is readable or writable; `respond` makes the response to a complete request.
    mutating func ready(_ fd: FileDescriptor, now: Instant, respond: (ObservabilityRequest) -> ObservabilityResponse) {
        if fd == listener { return accept(now: now) }
        guard var connection = connections[fd.rawValue] else { return }
        if connection.output == nil {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd.rawValue, &buffer, buffer.count, 0)
            if n < 0, errno == EAGAIN || errno == EINTR { return }
            guard n > 0 else { return drop(fd) }
            connection.input += buffer[..<n]
            let request = ObservabilityRequest.parse(connection.input)
            if request == .incomplete {
                connections[fd.rawValue] = connection
                return
            }
            var head = false
            if case .get(_, let isHead) = request { head = isHead }
            connection.output = respond(request).wire(head: head)
            connection.input = []
        }
        write(&connection)
        if let output = connection.output, connection.sent >= output.count {
            drop(fd)
        } else {
            connections[fd.rawValue] = connection
        }
    }

    /// Closes every connection past its deadline.
    mutating func expire(now: Instant) {
        for connection in connections.values where now >= connection.deadline { drop(connection.fd) }
    }

    private mutating func accept(now: Instant) {
        guard let listener else { return }
        while true {
            let client = Glibc.accept(listener.rawValue, nil, nil)
            guard client >= 0 else { return }
            let fd = FileDescriptor(client)
            guard connections.count < Self.maxConnections else {
                fd.close()  // the scraper retries; the loop never waits for a slow client
                continue
            }
            try? fd.setCloseOnExec(true)
            try? fd.setNonBlocking(true)
            connections[client] = Connection(fd: fd, deadline: now + Self.timeout)
        }
    }

    private func write(_ connection: inout Connection) {
        guard let output = connection.output else { return }
        while connection.sent < output.count {
            let n = output.withUnsafeBytes { bytes in
                send(connection.fd.rawValue, bytes.baseAddress! + connection.sent, bytes.count - connection.sent, Int32(MSG_NOSIGNAL))
            }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                // EAGAIN: wait for POLLOUT; any other error: the peer is gone, give up.
                if errno != EAGAIN { connection.sent = output.count }
                return
            }
            connection.sent += n
        }
    }

    private mutating func drop(_ fd: FileDescriptor) {
        guard let connection = connections.removeValue(forKey: fd.rawValue) else { return }
        connection.fd.close()
    }
}
