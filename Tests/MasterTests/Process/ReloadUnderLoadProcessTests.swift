import Foundation
import Testing
import TestSupport

/// The design card's promise: reloads never cost a user a request. Several client threads open a
/// new connection per request while the master reloads; every request must succeed.
@Suite(.serialized) struct ReloadUnderLoadProcessTests {
    @Test func twentySighupReloadsUnderLoadFailNoRequest() throws {
        let master = try MasterFixture(workers: 2)
        let load = LoadGenerator(port: master.port, threads: 4)
        usleep(300_000)
        // max_connections alternates, so each reload is a real change (hot: applyConfig broadcast).
        for round in 0..<20 {
            try master.rewrite(workers: 2, maxConnections: 1000 + round % 2)
            master.process.signal(SIGHUP)
            usleep(150_000)
        }
        let (succeeded, failures) = load.stop()
        #expect(failures.isEmpty, "\(failures.count) failed requests, first: \(failures.prefix(5))")
        #expect(succeeded > 100, "the load really ran (\(succeeded) requests)")
        #expect(master.logLines(containing: "Reloaded configuration").count >= 10)
    }

    @Test func workerCountChangesUnderLoadFailNoRequest() throws {
        // Graceful restarts on the same sockets: grow (nobody restarted), shrink (surplus sockets
        // handed to the survivor), grow again (slot 0 replaced in standby hand-over). A draining
        // worker gives connections it accepted just before closing its listener a grace to
        // deliver their first request (WorkerServer.quiesceGrace), so none is lost.
        try changeWorkerCountsUnderLoad([3, 1, 2], keepAlive: false)
    }

    /// Shrinking replaces workers, which drain. Their keep-alive clients keep sending: each gets
    /// its response with `Connection: close` and reconnects to a live worker, instead of sending
    /// its next request into a closing connection (wrk lost 22-35 requests per shrink that way).
    @Test func keepAliveClientsLoseNoRequestWhenTheirWorkerDrains() throws {
        try changeWorkerCountsUnderLoad([1, 2, 1], keepAlive: true)
    }

    /// A response whose head went out before its worker began draining could not say
    /// `connection: close`, so the client may reuse the connection as soon as the response ends:
    /// that next request is served (and told to close), not met by a closed socket.
    @Test func aRequestRightAfterAResponseThatSpannedTheDrainIsServed() throws {
        let master = try MasterFixture(workers: 2)
        let client = try RawConnection(port: master.port, timeout: 15)
        try client.send("GET /openai/sse?n=20&interval_ms=100 HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = try client.readHead()
        #expect(head.status == 200)
        #expect(head.header("connection") == nil, "the stream started before the drain")
        // 2 -> 1 replaces both workers (the survivor's socket set changes): this one drains
        // while its stream has about 1.5 s to go.
        try master.rewrite(workers: 1)
        #expect(try master.reload().status == 0)
        let first = try client.readResponse(afterHead: head)
        #expect(first.body.count > 0)
        let next = try client.request("GET", "/openai/v1/models")
        #expect(next.status == 200)
        #expect(next.header("connection")?.lowercased() == "close")
    }

    /// Starts with 2 workers and 4 clients, changes the worker count through `counts` with a
    /// reload each, and expects every request to have succeeded.
    private func changeWorkerCountsUnderLoad(_ counts: [Int], keepAlive: Bool) throws {
        let master = try MasterFixture(workers: 2)
        let load = LoadGenerator(port: master.port, threads: 4, keepAlive: keepAlive)
        usleep(300_000)
        for workers in counts {
            try master.rewrite(workers: workers)
            let result = try master.reload()
            #expect(result.status == 0, "\(result.stderr)")
            #expect(master.waitForWorkers(workers).count == workers)
            usleep(300_000)
        }
        let (succeeded, failures) = load.stop()
        #expect(succeeded > 100, "the load really ran (\(succeeded) requests)")
        #expect(failures.isEmpty, "\(failures.count) failed requests, first: \(failures.prefix(5))")
    }

    @Test func aNewBindAddressServesAtOnceAndAnInFlightRequestOnTheOldOneCompletes() throws {
        let master = try MasterFixture(workers: 2)
        let newPort = try Self.freePort()
        // A slow request in flight on the old address across the restart.
        let slow = try RawConnection(port: master.port, timeout: 15)
        try slow.send("GET /openai/delay-headers?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n")
        usleep(200_000)

        try master.rewrite(address: "127.0.0.1:\(newPort)", workers: 2)
        let result = try master.reload()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try master.get(port: newPort).status == 200)
        #expect(try slow.readResponse(method: "GET").status == 200, "the old generation drained, not cut")

        // The old address stops listening once its workers have drained.
        let deadline = Date().addingTimeInterval(10)
        var refused = false
        while Date() < deadline, !refused {
            refused = (try? RawConnection(port: master.port, timeout: 2)) == nil
            if !refused { usleep(100_000) }
        }
        #expect(refused)
    }

    @Test func aWorkerKilledUnderLoadIsReplacedWithoutARefusedConnection() throws {
        let master = try MasterFixture(workers: 2)
        let load = LoadGenerator(port: master.port, threads: 3)
        usleep(300_000)
        let victim = try #require(master.workerPIDs.first)
        kill(victim, SIGKILL)
        #expect(master.waitForWorkers(2, excluding: [victim]).count == 2)
        usleep(500_000)
        let (succeeded, failures) = load.stop()
        #expect(succeeded > 50)
        // Requests in flight on the killed worker die with it; what must not happen is a refused
        // connection: the slot's socket stays open in the master and the replacement accepts it.
        #expect(!failures.contains { $0.contains("connect") }, "\(failures.prefix(5))")
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
