#if canImport(Glibc)
import Glibc
#endif
import Common
import Testing
@testable import FluxgateMaster

/// Crash handling: respawn on the same slot at once, then exponential backoff capped at 30 s;
/// heartbeats; exit status 78.
@Suite struct SupervisorCrashTests {
    @Test func aCrashedWorkerIsRespawnedAtOnceOnItsSlotWithItsSocket() {
        var h = SupervisorHarness(workers: 2)
        let (workers, listeners) = h.startRunning()
        let crash = h.handle(.workerExited(workers[1], .signalled(SIGSEGV)), at: 60)
        #expect(
            crash.logs.first
                == LogEntry(
                    .error, "Worker exited unexpectedly; respawning",
                    [
                        ("slot", .plain("1")), ("pid", .plain("1001")), ("generation", .plain("1")),
                        ("reason", .plain("killed by SIGSEGV")), ("delay_ms", .plain("0")),
                    ]))
        #expect(crash.spawns.map(\.slot) == [1])
        #expect(crash.spawns.first?.listeners == [listeners[1]])
        #expect(crash.spawns.first?.standby == true, "the survivor accepts on the socket meanwhile (SupervisorLendingTests)")
        #expect(crash.closed.isEmpty, "the socket stays open: new connections wait in its backlog")
    }

    @Test func repeatedCrashesBackOffExponentiallyUpToThirtySeconds() {
        var h = SupervisorHarness(workers: 1)
        var worker = h.startRunning().workers[0]
        var t = 1.0
        var delays: [Double] = []
        for _ in 0..<8 {
            let crash = h.handle(.workerExited(worker, .exited(1)), at: t)
            if let spawned = crash.spawns.first {
                delays.append(0)
                worker = spawned.worker
            } else {
                let due = h.state.current.slots[0].respawnAt!
                let delay = Double(due.nanoseconds) / 1e9 - t
                delays.append(delay)
                #expect(h.tick(at: t + delay - 0.001).spawns.isEmpty)
                worker = h.tick(at: t + delay).spawns[0].worker
                t += delay
            }
            h.handle(.workerReady(worker, generation: 1), at: t + 0.1)
            t += 0.5
        }
        #expect(delays == [0, 1, 2, 4, 8, 16, 30, 30])
    }

    @Test func aWorkerThatRanStablyResetsTheBackoff() {
        var h = SupervisorHarness(workers: 1)
        let first = h.startRunning().workers[0]
        let second = h.handle(.workerExited(first, .exited(1)), at: 1).spawns[0].worker
        h.handle(.workerReady(second, generation: 1), at: 1.1)
        #expect(h.handle(.workerExited(second, .exited(1)), at: 2).spawns.isEmpty, "second fast failure waits 1 s")
        let third = h.tick(at: 3).spawns[0].worker
        h.handle(.workerReady(third, generation: 1), at: 3.1)
        for t in stride(from: 4.0, through: 14.0, by: 1) { h.handle(.heartbeat(third), at: t) }
        #expect(h.handle(.workerExited(third, .exited(1)), at: 14).spawns.count == 1, "ran 10 s: respawned at once")
    }

    @Test func aSilentWorkerIsKilledAfterTenSecondsAndReplaced() {
        var h = SupervisorHarness(workers: 2)
        let (workers, _) = h.startRunning()
        for t in stride(from: 1.0, through: 10.0, by: 1) { h.handle(.heartbeat(workers[0]), at: t) }
        h.handle(.heartbeat(workers[1]), at: 3)
        #expect(h.tick(at: 12.9).kills.isEmpty)
        let silent = h.tick(at: 13)
        #expect(silent.kills == [.kill(workers[1], .kill)])
        #expect(silent.messages == ["Worker unresponsive (no heartbeat); killing it"])
        let replaced = h.handle(.workerExited(workers[1], .signalled(SIGKILL)), at: 13.01)
        #expect(replaced.spawns.map(\.slot) == [1])
    }

    @Test func exitStatus78IsNeverRespawnedAndStopsTheMasterWith78() {
        var h = SupervisorHarness(workers: 2)
        let (workers, _) = h.startRunning()
        let fatal = h.handle(.workerExited(workers[0], .exited(78)), at: 30)
        #expect(fatal.spawns.isEmpty)
        #expect(fatal.messages.first == "Worker rejected the configuration (exit status 78); stopping")
        #expect(fatal.drains == [workers[1]])
        #expect(h.handle(.workerExited(workers[1], .exited(0)), at: 31).exitCode == 78)
    }

    @Test func aFailedSpawnCountsAsACrash() {
        var h = SupervisorHarness(workers: 1)
        let worker = h.startRunning().workers[0]
        let next = h.handle(.workerExited(worker, .exited(1)), at: 1).spawns[0].worker
        let failed = h.handle(.spawnFailed(next, "posix_spawn: Resource temporarily unavailable"), at: 1)
        #expect(failed.spawns.isEmpty)
        #expect(h.state.current.slots[0].respawnAt == .seconds(2))
    }

    @Test func noRespawnWhileStopping() {
        var h = SupervisorHarness(workers: 2)
        let (workers, _) = h.startRunning()
        h.handle(.signal(.terminate), at: 5)
        let exit = h.handle(.workerExited(workers[0], .signalled(SIGSEGV)), at: 5.5)
        #expect(exit.spawns.isEmpty)
    }
}
