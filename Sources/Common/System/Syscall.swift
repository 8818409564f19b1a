#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: the call's name and errno, printable for an operator.
public struct SystemError: Error, Sendable, Equatable, CustomStringConvertible {
    public let call: String
    public let errno: CInt

    public init(call: String, errno: CInt) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// The one wrapper for syscalls that return -1 and set errno (as NIO's System.swift does):
/// EINTR is retried, anything else is thrown as a `SystemError`.
/// Never use it for `close`: on Linux the descriptor is gone even when close reports EINTR.
@discardableResult
public func syscall<T: FixedWidthInteger>(_ name: String, _ body: () -> T) throws(SystemError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code == EINTR { continue }
        throw SystemError(call: name, errno: code)
    }
}

/// An owned file descriptor number. Plain value: closing is explicit.
public struct FileDescriptor: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: CInt
    public init(_ rawValue: CInt) { self.rawValue = rawValue }

    public func close() { _ = Glibc.close(rawValue) }

    /// Marks the descriptor close-on-exec (or clears it), so only the descriptors a spawn
    /// places explicitly reach a child.
    public func setCloseOnExec(_ on: Bool) throws(SystemError) {
        let flags = try syscall("fcntl(F_GETFD)") { fcntl(rawValue, F_GETFD) }
        let updated = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC
        try syscall("fcntl(F_SETFD)") { fcntl(rawValue, F_SETFD, updated) }
    }

    public func setNonBlocking(_ on: Bool) throws(SystemError) {
        let flags = try syscall("fcntl(F_GETFL)") { fcntl(rawValue, F_GETFL) }
        let updated = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        try syscall("fcntl(F_SETFL)") { fcntl(rawValue, F_SETFL, updated) }
    }

    /// Writes every byte (blocking descriptor), with MSG_NOSIGNAL for sockets so a peer that
    /// died cannot raise SIGPIPE in the writer.
    public func sendAll(_ bytes: [UInt8]) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            let n = try syscall("send") {
                bytes.withUnsafeBytes { send(rawValue, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            }
            offset += n
        }
    }

    /// One `read(2)`, retried on EINTR; 0 bytes = end of file.
    public func read(into buffer: inout [UInt8]) throws(SystemError) -> Int {
        try syscall("read") { buffer.withUnsafeMutableBytes { Glibc.read(rawValue, $0.baseAddress, $0.count) } }
    }

    public var description: String { "fd \(rawValue)" }
}
