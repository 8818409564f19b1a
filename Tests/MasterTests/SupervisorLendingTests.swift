#if canImport(Glibc)
import Glibc
#endif
import Common
import Testing
@testable import FluxgateMaster

/// docs/operations.md "Crashes, restarts, watchdog": while a slot has no accepting worker, a
/// surviving worker accepts on its sockets, and two processes never accept on one socket at once.
@Suite struct SupervisorLendingTests {
    @Test func aCrashedSlotsSocketIsLentToASurvivorBeforeItsReplacementIsSpawnedInStandby() {
        var h = SupervisorHarness(workers: 2)
        let (workers, listeners) = h.startRunning()
        let crash = h.handle(.workerExited(workers[1], .signalled(SIGKILL)), at: 5)
        let lent = crash.firstIndex(of: .send(workers[0], .adoptListener(listeners[1])))
        let spawned = crash.firstIndex { if case .spawn = $0 { return true } else { return false } }
        #expect(lent != nil && spawned != nil && lent! < spawned!, "lent first: the queue is served from now on")
        #expect(crash.spawns.first?.standby == true)
        #expect(h.state.workers[workers[0]]?.borrowed == [listeners[1]: .lent])
    }

    @Test func theReplacementAcceptsOnlyAfterTheSurvivorGaveTheSocketBack() {
        var h = SupervisorHarness(workers: 2)
        let (workers, listeners) = h.startRunning()
        let replacement = h.handle(.workerExited(workers[1], .signalled(SIGKILL)), at: 5).spawns[0].worker
        let ready = h.handle(.workerReady(replacement, generation: 1), at: 5.2)
        #expect(ready.sent(to: workers[0]) == [.releaseListener(listeners[1])])
        #expect(ready.sent(to: replacement).isEmpty, "the survivor still accepts on it")
        #expect(h.handle(.heartbeat(replacement), at: 5.3).isEmpty, "asked once")
        #expect(h.handle(.listenerReleased(workers[0], listeners[1]), at: 5.4).sent(to: replacement) == [.startAccepting])
        #expect(h.state.workers[workers[0]]?.borrowed == [:])
    }

    @Test func duringTheRespawnBackoffTheSurvivorKeepsTheSocket() {
        var h = SupervisorHarness(workers: 2)
        let (workers, listeners) = h.startRunning()
        let second = h.handle(.workerExited(workers[1], .signalled(SIGKILL)), at: 5).spawns[0].worker
        h.handle(.workerReady(second, generation: 1), at: 5.2)
        h.handle(.listenerReleased(workers[0], listeners[1]), at: 5.3)
        // Dies again within 10 s: its respawn waits 1 s, the socket is lent again at once.
        let again = h.handle(.workerExited(second, .signalled(SIGKILL)), at: 6)
        #expect(again.spawns.isEmpty)
        #expect(again.sent(to: workers[0]) == [.adoptListener(listeners[1])])
        #expect(h.tick(at: 6.999).spawns.isEmpty)
        let respawned = h.tick(at: 7)
        #expect(respawned.spawns.map(\.standby) == [true])
        #expect(respawned.sent(to: workers[0]).isEmpty, "kept until the new worker is ready")
    }

    @Test func withoutASurvivorNothingIsLentAndTheReplacementAcceptsAtOnce() {
        var h = SupervisorHarness(workers: 1)
        let worker = h.startRunning().workers[0]
        let crash = h.handle(.workerExited(worker, .signalled(SIGKILL)), at: 5)
        #expect(crash.sends.isEmpty)
        #expect(crash.spawns.map(\.standby) == [false])
    }

    @Test func aBorrowerThatDiesPassesWhatItHeldToTheNextSurvivor() {
        var h = SupervisorHarness(workers: 3)
        let (workers, listeners) = h.startRunning()
        // Slot 1 dies: lent to the survivor with the fewest loans, the lowest slot: slot 0.
        #expect(
            h.handle(.workerExited(workers[1], .signalled(SIGKILL)), at: 5).sent(to: workers[0])
                == [.adoptListener(listeners[1])])
        // Slot 0 dies too: its own socket and the borrowed one go to slot 2.
        let second = h.handle(.workerExited(workers[0], .signalled(SIGKILL)), at: 5.1)
        #expect(second.sent(to: workers[2]) == [.adoptListener(listeners[0]), .adoptListener(listeners[1])])
        #expect(second.spawns.map(\.standby) == [true])
    }

    @Test func loansAreSpreadOverTheSurvivors() {
        var h = SupervisorHarness(workers: 4)
        let (workers, listeners) = h.startRunning()
        // A shrink is not needed: two slots die, each socket goes to a different survivor.
        let first = h.handle(.workerExited(workers[2], .signalled(SIGKILL)), at: 5)
        #expect(first.sent(to: workers[0]) == [.adoptListener(listeners[2])])
        let second = h.handle(.workerExited(workers[3], .signalled(SIGKILL)), at: 5.1)
        #expect(second.sent(to: workers[1]) == [.adoptListener(listeners[3])])
    }

    @Test func aBorrowerThatDrainsGivesEverythingBackWithStoppedAccepting() {
        var h = SupervisorHarness(workers: 2)
        let (workers, listeners) = h.startRunning()
        let replacement = h.handle(.workerExited(workers[1], .signalled(SIGKILL)), at: 5).spawns[0].worker
        h.handle(.workerReady(replacement, generation: 1), at: 5.2)  // release asked
        h.handle(.signal(.terminate), at: 5.3)
        #expect(
            h.handle(.stoppedAccepting(workers[0]), at: 5.4).sent(to: replacement).isEmpty,
            "shutting down: the replacement drains too and never starts")
        #expect(h.state.workers[workers[0]]?.borrowed == [:])
        #expect(!h.state.hasAcceptor(listeners[1], other: nil))
    }

    @Test func noLoanWhileStoppingAndNoneToADrainingWorker() {
        var h = SupervisorHarness(workers: 2)
        let (workers, _) = h.startRunning()
        h.handle(.signal(.terminate), at: 5)
        #expect(h.handle(.workerExited(workers[1], .signalled(SIGKILL)), at: 5.1).sends.isEmpty)
    }

    @Test func theSocketsOfASlotWhoseWorkerWasKilledAtTheHeartbeatDeadlineAreLentOnceItIsGone() {
        var h = SupervisorHarness(workers: 2)
        let (workers, listeners) = h.startRunning()
        for t in stride(from: 1.0, through: 12.0, by: 1) { h.handle(.heartbeat(workers[0]), at: t) }
        #expect(h.tick(at: 12).kills == [.kill(workers[1], .kill)])
        #expect(h.state.workers[workers[0]]?.borrowed == [:], "killed is not gone: it may still accept")
        let gone = h.handle(.workerExited(workers[1], .signalled(SIGKILL)), at: 12.01)
        #expect(gone.sent(to: workers[0]) == [.adoptListener(listeners[1])])
    }
}
