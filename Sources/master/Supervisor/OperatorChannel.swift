#if canImport(Glibc)
import Glibc
#endif
import Common

/// The operator's way into a running master: a Unix stream socket with mode 0600 (only the
/// master's user and root may reload it). One request per connection, one line: `reload` or
/// `status`. The answer is text; its first line is `ok` or `error`, the rest is for the operator.
/// `fluxgate reload` waits on the connection until the reload has an outcome, which is what lets
/// `ExecReload=` (and so `systemctl reload`) fail when the new configuration is rejected.
enum OperatorChannel {
    enum Request: String { case reload, status }

    /// Where the socket lives unless `--control-socket` says otherwise: systemd's
    /// RuntimeDirectory= when set, /run/fluxgate for root, else the user's runtime directory.
    static func defaultPath(environment: [String: String]) -> String {
        if let runtime = environment["RUNTIME_DIRECTORY"], !runtime.isEmpty {
            return String(runtime.split(separator: ":").first ?? "") + "/control.sock"
        }
        if getuid() == 0 { return "/run/fluxgate/control.sock" }
        let base = environment["XDG_RUNTIME_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        return "\(base)/fluxgate-\(getuid()).sock"
    }

    // MARK: - Server side (the master)

    /// Binds the socket with mode 0600, in its directory (created when missing, see
    /// `makeDirectory`). A leftover file from a master that died is replaced; a socket another
    /// master still answers on is not.
    static func listen(path: String) throws(SystemError) -> FileDescriptor {
        try makeDirectory(containing: path)
        if connect(path: path) != nil { throw SystemError(call: "bind(\(path)): another master answers there", errno: EADDRINUSE) }
        unlink(path)
        let fd = FileDescriptor(
            try syscall("socket(AF_UNIX)") {
                socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            })
        do throws(SystemError) {
            // umask covers the window between bind (which creates the file) and any chmod.
            let previous = umask(0o177)
            defer { umask(previous) }
            _ = try withAddress(path) { (sa, len) throws(SystemError) in try syscall("bind(\(path))") { bind(fd.rawValue, sa, len) } }
            try syscall("listen(\(path))") { Glibc.listen(fd.rawValue, 16) }
            return fd
        } catch {
            fd.close()
            throw error
        }
    }

    /// Creates the socket's directory, mode 0755, when it does not exist: /run/fluxgate for root
    /// outside systemd (under systemd, RuntimeDirectory= has made it). Only the last component:
    /// a missing parent is an error (mkdir(2): ENOENT), reported as the socket being unavailable,
    /// rather than a tree of directories made up from a mistyped `--control-socket`. The mode is
    /// set with chmod after mkdir, which the umask would otherwise narrow.
    static func makeDirectory(containing path: String) throws(SystemError) {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.utf8.startIndex else { return }
        let directory = String(path[..<slash])
        do {
            try syscall("mkdir(\(directory))") { mkdir(directory, 0o755) }
        } catch {
            if error.errno == EEXIST { return }
            throw error
        }
        try syscall("chmod(\(directory))") { chmod(directory, 0o755) }
    }

    /// Reads one request line from a connection; nil until a whole line arrived (or on EOF).
    static func readRequest(_ fd: FileDescriptor, buffer: inout [UInt8]) -> (request: Request?, done: Bool) {
        var chunk = [UInt8](repeating: 0, count: 256)
        let n = chunk.withUnsafeMutableBytes { recv(fd.rawValue, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n <= 0 { return (nil, n == 0 || (errno != EAGAIN && errno != EINTR)) }
        buffer += chunk[0..<n]
        guard let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) else { return (nil, buffer.count > 1024) }
        let line = String(decoding: buffer[..<newline], as: UTF8.self).filter { $0 != " " && $0 != "\r" && $0 != "\t" }
        return (Request(rawValue: line), true)
    }

    static func reply(_ fd: FileDescriptor, ok: Bool, _ text: String) {
        // The connection is non-blocking; a short answer fits the socket buffer. Blocking briefly
        // is fine for a longer one: the master is the only writer and the client is reading.
        try? fd.setNonBlocking(false)
        try? fd.sendAll(Array(((ok ? "ok\n" : "error\n") + text + "\n").utf8))
        fd.close()
    }

    // MARK: - Client side (`fluxgate reload`, `fluxgate status`)

    static func connect(path: String) -> FileDescriptor? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        let connected =
            (try? withAddress(path) { (sa, len) throws(SystemError) in
                try syscall("connect") { Glibc.connect(fd, sa, len) }
            }) != nil
        if !connected { _ = close(fd); return nil }
        return FileDescriptor(fd)
    }

    /// Sends the request and returns the master's answer (ok flag and text), or nil when no
    /// master answers at `path`.
    static func send(_ request: Request, path: String, timeoutSeconds: Int = 300) -> (ok: Bool, text: String)? {
        guard let fd = connect(path: path) else { return nil }
        defer { fd.close() }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd.rawValue, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard (try? fd.sendAll(Array((request.rawValue + "\n").utf8))) != nil else { return nil }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while let n = try? fd.read(into: &buffer), n > 0 { answer += buffer[0..<n] }
        let text = String(decoding: answer, as: UTF8.self)
        guard let newline = text.firstIndex(of: "\n") else { return nil }
        let rest = text[text.index(after: newline)...]
        return (text[..<newline] == "ok", String(rest.hasSuffix("\n") ? rest.dropLast() : rest))
    }

    private static func withAddress<R>(
        _ path: String,
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemError) -> R
    ) throws(SystemError) -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw SystemError(call: "socket path \(path)", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return try withUnsafePointer(to: &address) { (p) throws(SystemError) -> R in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { (sa) throws(SystemError) -> R in
                try body(sa, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}
