import CLinux
import Common
import Foundation
import Testing
import TestSupport

/// Both sockets of a proxied request have Nagle's algorithm off (TCP_NODELAY), so a small write,
/// an SSE event say, never waits for the ACK of the one before. Neither is set per connection:
/// the client side inherits it from the listening socket (NIO's server bootstrap sets it there and
/// Linux copies it to accepted sockets), the upstream side gets it from NIO's client bootstrap.
/// So the test looks at the worker's own sockets (`pidfd_getfd`).
@Suite struct SocketOptionsProcessTests {
    @Test func clientAndUpstreamSocketsHaveNagleOff() throws {
        let f = try ProxyFixture()
        let connection = try f.connect()
        try connection.send("GET /openai/v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n\r\n")
        #expect(try connection.readResponse().status == 200)
        let worker = try #require(f.proxy.workerPIDs.first)
        let clientPort = Int(try Sockets.localAddress(of: FileDescriptor(connection.fd)).port)
        let clientSide = try #require(Self.socket(of: worker) { $0.local == f.proxy.port && $0.remote == clientPort })
        let upstreamSide = try #require(Self.socket(of: worker) { $0.remote == f.mock.port })
        #expect(try Self.noDelay(pid: worker, fd: clientSide) == 1)
        #expect(try Self.noDelay(pid: worker, fd: upstreamSide) == 1)
    }

    struct Failure: Error { var what: String }

    /// The descriptor, in process `pid`, of its IPv4 TCP socket whose ports satisfy `matches`.
    static func socket(of pid: Int32, where matches: ((local: Int, remote: Int)) -> Bool) -> Int32? {
        // Read to the end: the kernel makes the table a page per read, and it has every socket
        // of the namespace (thousands while the other tests run).
        guard let data = FileHandle(forReadingAtPath: "/proc/\(pid)/net/tcp")?.readDataToEndOfFile() else { return nil }
        let table = String(decoding: data, as: UTF8.self)
        // "sl local_address rem_address st ... inode": addresses are HEXIP:HEXPORT.
        let inodes = table.split(separator: "\n").dropFirst().compactMap { line -> String? in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count > 9, let local = Int(f[1].split(separator: ":")[1], radix: 16),
                let remote = Int(f[2].split(separator: ":")[1], radix: 16), matches((local, remote))
            else { return nil }
            return String(f[9])
        }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        for fd in fds {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)") else { continue }
            if inodes.contains(where: { target == "socket:[\($0)]" }) { return Int32(fd) }
        }
        return nil
    }

    static func noDelay(pid: Int32, fd: Int32) throws -> Int32 {
        let pidfd = fluxgate_pidfd_open(pid)
        guard pidfd >= 0 else { throw Failure(what: "pidfd_open: errno \(errno)") }
        defer { close(pidfd) }
        let copy = fluxgate_pidfd_getfd(pidfd, fd)
        guard copy >= 0 else { throw Failure(what: "pidfd_getfd: errno \(errno)") }
        defer { close(copy) }
        var value: Int32 = -1
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(copy, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &length) == 0 else {
            throw Failure(what: "getsockopt: errno \(errno)")
        }
        return value
    }
}
