import Foundation
import Testing
import TestSupport

/// The master and its workers as processes: slots, crash replacement, reload outcomes, orphaned
/// workers, the shared in-flight limit. 127.0.0.1 only; every process is killed at the end.
@Suite(.serialized) struct MasterLifecycleProcessTests {
    @Test func eachWorkerAcceptsOnItsOwnSlotSocket() throws {
        let master = try MasterFixture(workers: 2)
        let workers = master.waitForWorkers(2)
        #expect(workers.count == 2)
        // fd 3 of each worker is its slot's listening socket: two different sockets.
        let sockets = workers.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\($0)/fd/3") }
        #expect(sockets.count == 2 && Set(sockets).count == 2 && sockets.allSatisfy { $0.hasPrefix("socket:") }, "\(sockets)")
        #expect(try master.get().status == 200)
    }

    @Test func aKilledWorkerIsReplacedOnItsSlot() throws {
        let master = try MasterFixture(workers: 2)
        let before = master.waitForWorkers(2)
        let victim = try #require(before.first)
        kill(victim, SIGKILL)
        let after = master.waitForWorkers(2, excluding: [victim])
        #expect(after.count == 2 && !after.contains(victim))
        #expect(master.process.waitForLine(containing: "Worker exited unexpectedly; respawning") != nil)
        for _ in 0..<10 { #expect(try master.get().status == 200) }
    }

    @Test func anInvalidReloadKeepsTheOldConfigurationAndTheReloadCommandFails() throws {
        let master = try MasterFixture(workers: 1)
        try MasterFixture.write("version: 1\nserver:\n  max_connections: 0\n", to: master.configPath)
        let result = try master.reload()
        #expect(result.status != 0)
        #expect(result.stderr.contains("server.max_connections"), "\(result.stderr)")
        #expect(try master.get().status == 200, "the previous configuration still serves")
        #expect(!master.logLines(containing: "keeping previous settings").isEmpty)
    }

    @Test func aValidReloadIsAppliedAndTheReloadCommandSucceeds() throws {
        let master = try MasterFixture(workers: 2)
        try master.rewrite(requestPath: "/v2")
        let result = try master.reload()
        #expect(result.status == 0, "\(result.stderr)")
        // The file watcher may have applied it a moment before: then this reload finds it unchanged.
        #expect(result.stdout.contains("configuration applied") || result.stdout.contains("configuration unchanged"))
        #expect(try master.get("/v2/models").status == 200)
        #expect(try master.get("/openai/v1/models").status == 404)
        let status = try master.status()
        #expect(status.stdout.contains("serving generation 2 with 2 workers"), "\(status.stdout)")
    }

    @Test func aFileChangeIsPickedUpWithoutASignal() throws {
        let master = try MasterFixture(workers: 1)
        try master.rewrite(workers: 1, requestPath: "/auto")
        #expect(master.process.waitForLine(containing: "Configuration file changed, reloaded automatically", timeout: 10) != nil)
        #expect(try master.get("/auto/x").status == 200)
        // Deleted: one warning, the configuration stays.
        unlink(master.configPath)
        #expect(master.process.waitForLine(containing: "Configuration file not found during polling", timeout: 10) != nil)
        usleep(700_000)
        #expect(master.logLines(containing: "Configuration file not found during polling").count == 1)
        #expect(try master.get("/auto/x").status == 200)
    }

    @Test func workersExitWhenTheMasterIsKilled() throws {
        let master = try MasterFixture(workers: 2)
        let workers = master.waitForWorkers(2)
        master.process.signal(SIGKILL)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, workers.contains(where: { kill($0, 0) == 0 }) { usleep(100_000) }
        #expect(!workers.contains { kill($0, 0) == 0 }, "orphaned workers drain and exit")
    }

    @Test func maxConnectionsHoldsAcrossAllWorkers() throws {
        let master = try MasterFixture(workers: 2, maxConnections: 2)
        // Two slow requests hold the two permits, whichever workers took them.
        let slow = try (0..<2).map { _ in try RawConnection(port: master.port, timeout: 15) }
        for connection in slow { try connection.send("GET /openai/delay-headers?ms=2500 HTTP/1.1\r\nHost: x\r\n\r\n") }
        usleep(800_000)
        // New connections land on both workers (per-slot sockets): every one is refused with 503.
        var statuses: [Int] = []
        for _ in 0..<8 { statuses.append(try master.get().status) }
        #expect(statuses.allSatisfy { $0 == 503 }, "\(statuses)")
        for connection in slow { #expect(try connection.readResponse(method: "GET").status == 200) }
        #expect(try master.get().status == 200)
    }

    @Test func sigtermStopsWithExitZeroAndFluxgatesLines() throws {
        let master = try MasterFixture(workers: 2)
        master.process.signal(SIGTERM)
        #expect(master.process.waitForExit(timeout: 40) == 0)
        #expect(!master.logLines(containing: "Shutdown signal received (SIGTERM); shutting down proxy").isEmpty)
        #expect(!master.logLines(containing: "Proxy server shutdown complete").isEmpty)
    }
}
