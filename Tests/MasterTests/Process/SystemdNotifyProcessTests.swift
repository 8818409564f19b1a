import Foundation
import Testing
import TestSupport

/// sd_notify as systemd would see it: the test binds a Unix datagram socket, passes it as
/// NOTIFY_SOCKET and reads every message the master sends (only the master talks to systemd).
@Suite(.serialized) struct SystemdNotifyProcessTests {
    final class NotifySocket {
        let path: String
        let fd: Int32

        init(directory: String) {
            path = directory + "/notify.sock"
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                let bytes = Array(path.utf8)
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }

        /// The next datagram, or nil after `timeout`.
        func next(timeout: Double = 20) -> String? {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, Int32(timeout * 1000)) > 0 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buffer, buffer.count, 0)
            return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
        }

        deinit { close(fd) }
    }

    @Test func startReloadRejectedReloadAndStopSendTheExactSequence() throws {
        let directory = try TemporaryDirectory()
        let notify = NotifySocket(directory: directory.path)
        let master = try MasterFixture(workers: 2, environment: ["NOTIFY_SOCKET": notify.path])
        let serving = "serving generation 1 with 2 workers on 127.0.0.1:\(master.port)"
        #expect(notify.next() == "READY=1\nSTATUS=\(serving)")

        // A valid hot reload, triggered by the file watcher (the only trigger here, so the
        // sequence is deterministic; `fluxgate reload` would race with it).
        try master.rewrite(workers: 2, maxConnections: 77)
        let reloading = try #require(notify.next())
        #expect(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        #expect(UInt64(reloading.split(separator: "=").last ?? "") != nil)
        #expect(notify.next() == "READY=1\nSTATUS=serving generation 2 with 2 workers on 127.0.0.1:\(master.port)")

        // A rejected reload: RELOADING, then READY with the reason, nothing else changes.
        try MasterFixture.write("version: 1\nserver:\n  max_connections: 0\n", to: master.configPath)
        #expect(notify.next()?.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") == true)
        let rejected = try #require(notify.next())
        #expect(rejected.hasPrefix("READY=1\nSTATUS=reload rejected: "), "\(rejected)")
        #expect(rejected.contains("server.max_connections"))
        #expect(rejected.hasSuffix("; serving generation 2 with 2 workers on 127.0.0.1:\(master.port)"))

        master.process.signal(SIGTERM)
        #expect(notify.next() == "STOPPING=1\nSTATUS=shutting down (SIGTERM)")
        #expect(notify.next(timeout: 1) == nil, "nothing after STOPPING=1")
        #expect(master.process.waitForExit(timeout: 40) == 0)
    }
}
