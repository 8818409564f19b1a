#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Listening sockets and socket pairs: the mechanism the master uses to hand listeners and control
/// channels to workers.
public enum Sockets {
    /// A bound, listening, non-blocking TCP socket with SO_REUSEPORT (so one socket per worker
    /// slot can share the address) and close-on-exec (a spawn passes it on explicitly).
    /// `reusePort: false` for a listener of the master's own, which no other process may share.
    public static func listen(
        on address: BindAddress, backlog: CInt = 4096, reusePort: Bool = true
    ) throws(SystemError)
        -> FileDescriptor
    {
        let family = address.family == .ipv6 ? AF_INET6 : AF_INET
        let fd = FileDescriptor(
            try syscall("socket") {
                socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            })
        do {
            var one: CInt = 1
            let size = socklen_t(MemoryLayout<CInt>.size)
            try syscall("setsockopt(SO_REUSEADDR)") { setsockopt(fd.rawValue, SOL_SOCKET, SO_REUSEADDR, &one, size) }
            if reusePort {
                try syscall("setsockopt(SO_REUSEPORT)") { setsockopt(fd.rawValue, SOL_SOCKET, SO_REUSEPORT, &one, size) }
            }
            if family == AF_INET6 {
                // A literal IPv6 address means that address only, whatever net.ipv6.bindv6only says.
                try syscall("setsockopt(IPV6_V6ONLY)") { setsockopt(fd.rawValue, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, size) }
            }
            try withSockaddr(address) { (sa, len) throws(SystemError) in
                try syscall("bind(\(address))") { bind(fd.rawValue, sa, len) }
            }
            try syscall("listen") { Glibc.listen(fd.rawValue, backlog) }
            return fd
        } catch {
            fd.close()
            throw error
        }
    }

    /// The address a socket is actually bound to (resolves port 0 to the port the kernel chose).
    public static func localAddress(of fd: FileDescriptor) throws(SystemError) -> BindAddress {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        try withUnsafeMutablePointer(to: &storage) { (p) throws(SystemError) in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { (sa) throws(SystemError) in
                try syscall("getsockname") { getsockname(fd.rawValue, sa, &len) }
            }
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let rendered: String
        let port: UInt16
        if storage.ss_family == sa_family_t(AF_INET6) {
            var sin6 = withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in6.self) }
            inet_ntop(AF_INET6, &sin6.sin6_addr, &text, socklen_t(text.count))
            rendered = "[\(String(cString: text))]"
            port = UInt16(bigEndian: sin6.sin6_port)
        } else {
            var sin = withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in.self) }
            inet_ntop(AF_INET, &sin.sin_addr, &text, socklen_t(text.count))
            rendered = String(cString: text)
            port = UInt16(bigEndian: sin.sin_port)
        }
        return BindAddress(parsing: "\(rendered):\(port)")!
    }

    /// A connected pair of Unix sockets, both close-on-exec: a byte stream (the control channel), or
    /// with `messages` a SOCK_SEQPACKET pair that keeps message boundaries (the hand-over channel:
    /// one descriptor per message, never two read as one).
    public static func socketPair(messages: Bool = false) throws(SystemError) -> (FileDescriptor, FileDescriptor) {
        var fds: [CInt] = [-1, -1]
        let type = messages ? SOCK_SEQPACKET : SOCK_STREAM
        try syscall("socketpair") {
            socketpair(AF_UNIX, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds)
        }
        return (FileDescriptor(fds[0]), FileDescriptor(fds[1]))
    }

    /// Sends a duplicate of `descriptor` with SCM_RIGHTS (unix(7)) over the message socket `channel`,
    /// labelled `tag` (the receiver checks the label, so a descriptor is never taken for another).
    public static func sendDescriptor(_ descriptor: FileDescriptor, tag: Int, over channel: FileDescriptor) throws(SystemError) {
        var label = Int64(tag).bigEndian
        try syscall("sendmsg(SCM_RIGHTS)") {
            withUnsafeBytes(of: &label) { fluxgate_send_descriptor(channel.rawValue, descriptor.rawValue, $0.baseAddress, UInt($0.count)) }
        }
    }

    /// Takes the descriptor `sendDescriptor` sent with `tag` from `channel` without blocking (it was
    /// sent before the control message that announces it). Throws EAGAIN when nothing is queued and
    /// EBADMSG when the next message is not that descriptor (which is then closed).
    public static func receiveDescriptor(tag: Int, from channel: FileDescriptor) throws(SystemError) -> FileDescriptor {
        var label: Int64 = 0
        var received: CInt = -1
        let n = try syscall("recvmsg(SCM_RIGHTS)") {
            withUnsafeMutableBytes(of: &label) { fluxgate_receive_descriptor(channel.rawValue, $0.baseAddress, UInt($0.count), &received) }
        }
        guard n == MemoryLayout<Int64>.size, Int64(bigEndian: label) == Int64(tag), received >= 0 else {
            if received >= 0 { _ = Glibc.close(received) }
            throw SystemError(call: "recvmsg(SCM_RIGHTS)", errno: EBADMSG)
        }
        return FileDescriptor(received)
    }

    static func withSockaddr<R>(
        _ address: BindAddress,
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemError) -> R
    ) throws(SystemError) -> R {
        if address.family == .ipv6 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = address.port.bigEndian
            _ = address.host.withCString { inet_pton(AF_INET6, $0, &sin6.sin6_addr) }
            return try withUnsafePointer(to: &sin6) { (p) throws(SystemError) -> R in
                try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { (sa) throws(SystemError) -> R in
                    try body(sa, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = address.port.bigEndian
            _ = address.host.withCString { inet_pton(AF_INET, $0, &sin.sin_addr) }
            return try withUnsafePointer(to: &sin) { (p) throws(SystemError) -> R in
                try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { (sa) throws(SystemError) -> R in
                    try body(sa, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }
}
