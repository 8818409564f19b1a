import Foundation
import Testing
import TestSupport

/// docs/operations.md "Crashes, restarts, watchdog": while a slot has no worker, a surviving
/// worker accepts on the slot's socket, so connections the kernel queued there do not wait for
/// the respawn (nor its backoff: 1 s after a second crash within 10 s).
@Suite(.serialized) struct CrashedSlotProcessTests {
    @Test func connectionsQueuedOnACrashedSlotDoNotWaitForTheRespawnBackoff() throws {
        let master = try MasterFixture(workers: 2)
        var client = SequentialClient(port: master.port)
        client.run(for: 0.3)
        let first = master.waitForWorkers(2)
        let victim = try #require(first.first)

        // Killed between two requests (this thread sends them), so no request is in flight on it:
        // the next connections are the ones the kernel queues on the dead worker's socket.
        kill(victim, SIGKILL)
        let replacement = try #require(client.run(for: 10) { Set(master.workerPIDs).subtracting(first).first })
        // The same slot's worker dies again within 10 s: its respawn waits 1 s.
        kill(replacement, SIGKILL)
        #expect(client.run(for: 10) { master.workerPIDs.count == 2 && !master.workerPIDs.contains(replacement) ? true : nil } == true)
        client.run(for: 0.5)

        #expect(master.logLines(containing: "Worker exited unexpectedly; respawning").count == 2)
        #expect(master.logLines(containing: "delay_ms=1000").count == 1, "the second respawn waited for the backoff")
        #expect(client.failures.isEmpty, "\(client.failures.count) failed, first: \(client.failures.prefix(3))")
        #expect(client.durations.count > 50, "the client really ran (\(client.durations.count) requests)")
        // A connection left waiting for the respawn waits its 1 s backoff at least; 0.9 s leaves
        // a loaded machine room for a slow request (one took 0.52 s at load 8) without letting
        // a wait for the backoff through.
        let slow = client.durations.filter { $0 >= 0.9 }
        #expect(slow.isEmpty, "\(slow.count) requests took 0.9 s or more, the slowest \(client.durations.max() ?? 0) s")
    }
}

/// One client that opens a new connection per request, one request at a time, and records how
/// long each took (from `connect` to the end of the response) and every failure.
struct SequentialClient {
    let port: Int
    private(set) var durations: [Double] = []
    private(set) var failures: [String] = []

    init(port: Int) { self.port = port }

    /// Sends requests until `seconds` have passed.
    mutating func run(for seconds: Double) {
        _ = run(for: seconds) { () -> Bool? in nil }
    }

    /// Sends requests until `condition` returns a value (checked between requests) or `seconds`
    /// have passed; returns that value, nil at the deadline.
    mutating func run<T>(for seconds: Double, until condition: () -> T?) -> T? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let value = condition() { return value }
            let start = Date()
            do {
                let response = try RawConnection(port: port, timeout: 15).request("GET", "/openai/v1/models")
                if response.status != 200 { failures.append("status \(response.status)") }
            } catch {
                failures.append("\(error)")
            }
            durations.append(Date().timeIntervalSince(start))
        }
        return nil
    }
}
