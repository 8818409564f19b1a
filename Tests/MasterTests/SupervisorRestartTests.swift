#if canImport(Glibc)
import Glibc
#endif
import Common
import Testing
@testable import FluxgateMaster

/// Graceful restarts for restart-class changes (`bind_address`, `workers`): new generation, hand-over
/// of sockets without two acceptors at once, drain of the old generation, rollback.
@Suite struct SupervisorRestartTests {
    /// Keeps heartbeat timeouts out of tests about other deadlines.
    static var patientHeartbeats: SupervisorPolicy {
        var policy = SupervisorPolicy()
        policy.heartbeatTimeout = .seconds(1000)
        return policy
    }

    @Test func aNewBindAddressGetsNewSocketsAndTheOldOnesCloseAfterTheirWorkersDrained() {
        var h = SupervisorHarness(workers: 2)
        let (old, oldListeners) = h.startRunning()
        let moved = SupervisorHarness.configuration(workers: 2, address: "127.0.0.1:9090")
        h.handle(.signal(.hangup), at: 10)

        let open = h.load(moved)
        #expect(
            open == [
                .log(
                    LogEntry(
                        .info, "Configuration needs new workers; starting a new generation",
                        [
                            ("generation", .plain("2")), ("workers", .plain("2")), ("address", .plain("127.0.0.1:9090")),
                        ])),
                .openListeners([ListenerID(raw: 3), ListenerID(raw: 4)], BindAddress(parsing: "127.0.0.1:9090")!),
            ])
        let spawned = h.handle(.listenersOpened(open.opened, BindAddress(parsing: "127.0.0.1:9090")!), at: 10.1).spawns
        #expect(spawned.map(\.listeners) == [[ListenerID(raw: 3)], [ListenerID(raw: 4)]])
        #expect(spawned.allSatisfy { !$0.standby && $0.generation == 2 }, "fresh sockets: nobody else accepts on them")

        #expect(h.handle(.workerReady(spawned[0].worker, generation: 2), at: 10.2).drains.isEmpty)
        let commit = h.handle(.workerReady(spawned[1].worker, generation: 2), at: 10.3)
        #expect(commit.drains == old)
        #expect(commit.sent(to: old[0]) == [.applyConfig(generation: 2, moved), .drain(deadline: .seconds(30))])
        #expect(commit.closed.isEmpty, "old sockets stay open while their workers drain")
        h.handle(.configApplied(old[0], generation: 2), at: 10.31)
        #expect(
            h.handle(.configApplied(old[1], generation: 2), at: 10.32).notifications
                == ["READY=1\nSTATUS=serving generation 2 with 2 workers on 127.0.0.1:9090"])

        #expect(h.handle(.workerExited(old[0], .exited(0)), at: 12).closed == [oldListeners[0]])
        #expect(h.handle(.workerExited(old[1], .exited(0)), at: 13).closed == [oldListeners[1]])
    }

    @Test func growingTheWorkerCountKeepsTheRunningWorkersAndAddsSockets() {
        var h = SupervisorHarness(workers: 2)
        let (old, listeners) = h.startRunning()
        let three = SupervisorHarness.configuration(workers: 3)
        h.handle(.signal(.hangup), at: 10)
        let open = h.load(three)
        #expect(open.opened == [ListenerID(raw: 3)], "one new socket, at the address already bound")
        #expect(open.contains(.openListeners([ListenerID(raw: 3)], BindAddress(parsing: "127.0.0.1:8080")!)))

        let launched = h.handle(.listenersOpened([ListenerID(raw: 3)], BindAddress(parsing: "127.0.0.1:8080")!), at: 10.1)
        #expect(launched.spawns.map(\.slot) == [2])
        #expect(launched.spawns.first?.standby == false)
        #expect(launched.sends == [old[0]: [.applyConfig(generation: 2, three)], old[1]: [.applyConfig(generation: 2, three)]])

        h.handle(.configApplied(old[0], generation: 2))
        h.handle(.configApplied(old[1], generation: 2))
        let commit = h.handle(.workerReady(launched.spawns[0].worker, generation: 2), at: 10.2)
        #expect(commit.drains.isEmpty, "nobody is restarted when only slots are added")
        #expect(commit.closed.isEmpty)
        #expect(h.state.current.sockets == listeners + [ListenerID(raw: 3)])
        #expect(commit.notifications == ["READY=1\nSTATUS=serving generation 2 with 3 workers on 127.0.0.1:8080"])
    }

    @Test func shrinkingHandsSurplusSocketsToSurvivorsAndClosesNone() {
        var h = SupervisorHarness(workers: 3)
        let (old, listeners) = h.startRunning()
        let two = SupervisorHarness.configuration(workers: 2)
        h.handle(.signal(.hangup), at: 10)
        let launched = h.load(two)
        #expect(launched.opened.isEmpty)
        // Slot 0 now serves sockets 0 and 2: a new worker, in standby while the old ones accept.
        #expect(launched.spawns.map(\.listeners) == [[listeners[0], listeners[2]]])
        #expect(launched.spawns.first?.standby == true)
        // Slot 1 keeps its socket and its worker.
        #expect(launched.sends == [old[1]: [.applyConfig(generation: 2, two)]])

        let successor = launched.spawns[0].worker
        h.handle(.configApplied(old[1], generation: 2), at: 10.1)
        let commit = h.handle(.workerReady(successor, generation: 2), at: 10.2)
        #expect(Set(commit.drains) == [old[0], old[2]])
        #expect(commit.sent(to: old[2]) == [.applyConfig(generation: 2, two), .drain(deadline: .seconds(30))])
        #expect(commit.sent(to: successor).isEmpty, "old workers still accept on sockets 0 and 2")

        #expect(h.handle(.stoppedAccepting(old[0]), at: 10.21).sent(to: successor).isEmpty)
        #expect(h.handle(.stoppedAccepting(old[2]), at: 10.22).sent(to: successor) == [.startAccepting])

        var closed: [ListenerID] = []
        closed += h.handle(.workerExited(old[0], .exited(0)), at: 11).closed
        closed += h.handle(.workerExited(old[2], .exited(0)), at: 12).closed
        #expect(closed.isEmpty, "surplus sockets are never closed while the address stays")
        #expect(h.state.current.slots.map(\.listeners) == [[listeners[0], listeners[2]], [listeners[1]]])
    }

    @Test func aCandidateThatDiesRollsBackAndTheOldGenerationIsUntouched() {
        var h = SupervisorHarness(workers: 2)
        let (old, _) = h.startRunning()
        let request = ReloadRequestID(raw: 9)
        h.handle(.reloadRequested(.operatorRequest(request)), at: 10)
        let open = h.load(SupervisorHarness.configuration(workers: 2, address: "127.0.0.1:9090"))
        let spawned = h.handle(.listenersOpened(open.opened, BindAddress(parsing: "127.0.0.1:9090")!), at: 10.1).spawns
        h.handle(.workerReady(spawned[0].worker, generation: 2), at: 10.2)

        let failed = h.handle(.workerExited(spawned[1].worker, .exited(1)), at: 10.3)
        #expect(failed.messages.first == "New generation failed to start; keeping the previous one")
        #expect(failed.drains == [spawned[0].worker], "the surviving candidate is stopped")
        #expect(failed.sent(to: old[0]).isEmpty && failed.sent(to: old[1]).isEmpty)
        let reason = "worker of slot 1 exited during start-up (exit status 1)"
        #expect(failed.replies == [request: .failed(reason)])
        #expect(failed.notifications == ["READY=1\nSTATUS=reload failed: \(reason); serving generation 1 with 2 workers on 127.0.0.1:8080"])
        #expect(failed.closed == [open.opened[1]], "the dead candidate's socket closes")
        #expect(h.handle(.workerExited(spawned[0].worker, .exited(0)), at: 11).closed == [open.opened[0]])
        #expect(h.state.current.generation == 1)
    }

    @Test func aCandidateThatNeverGetsReadyRollsBackAtTheStartTimeout() {
        var h = SupervisorHarness(workers: 1, policy: Self.patientHeartbeats)
        h.startRunning()
        h.handle(.signal(.hangup), at: 10)
        let launched = h.load(SupervisorHarness.configuration(workers: 1, address: "127.0.0.1:9090"))
        let spawned = h.handle(.listenersOpened(launched.opened, BindAddress(parsing: "127.0.0.1:9090")!), at: 10).spawns
        #expect(h.tick(at: 24.9).drains.isEmpty)
        let timedOut = h.tick(at: 25)
        #expect(timedOut.drains == [spawned[0].worker])
        #expect(timedOut.notifications.first?.hasPrefix("READY=1\nSTATUS=reload failed: the new generation did not report ready") == true)
    }

    @Test func anAddressThatCannotBeBoundFailsTheReloadAndKeepsEverything() {
        var h = SupervisorHarness(workers: 1)
        h.startRunning()
        let request = ReloadRequestID(raw: 4)
        h.handle(.reloadRequested(.operatorRequest(request)))
        let open = h.load(SupervisorHarness.configuration(workers: 1, address: "127.0.0.1:80"))
        let failed = h.handle(.listenersFailed(open.opened, "Permission denied"))
        #expect(failed.replies == [request: .failed("cannot listen on 127.0.0.1:80: Permission denied")])
        #expect(failed.spawns.isEmpty && failed.drains.isEmpty)
    }

    @Test func theStandbySuccessorStartsWhenTheOldWorkerExitsWithoutReporting() {
        var h = SupervisorHarness(workers: 2)
        let (old, _) = h.startRunning()
        h.handle(.signal(.hangup), at: 10)
        let launched = h.load(SupervisorHarness.configuration(workers: 1))
        let successor = launched.spawns[0].worker
        h.handle(.workerReady(successor, generation: 2), at: 10.1)
        let exit0 = h.handle(.workerExited(old[0], .signalled(SIGKILL)), at: 10.2)
        #expect(exit0.sent(to: successor).isEmpty)
        #expect(h.handle(.workerExited(old[1], .exited(0)), at: 10.3).sent(to: successor) == [.startAccepting])
    }

    @Test func oldWorkersAreKilledAtTheDrainDeadline() {
        var h = SupervisorHarness(workers: 1, policy: Self.patientHeartbeats)
        let (old, _) = h.startRunning()
        h.handle(.signal(.hangup), at: 10)
        let open = h.load(SupervisorHarness.configuration(workers: 1, address: "127.0.0.1:9090"))
        let spawned = h.handle(.listenersOpened(open.opened, BindAddress(parsing: "127.0.0.1:9090")!), at: 10).spawns
        h.handle(.workerReady(spawned[0].worker, generation: 2), at: 10)
        h.handle(.configApplied(old[0], generation: 2), at: 10)
        #expect(h.tick(at: 40.9).kills.isEmpty)
        let deadline = h.tick(at: 41)
        #expect(deadline.kills == [.kill(old[0], .kill)])
        #expect(deadline.messages == ["Worker killed at the drain deadline"])
    }
}

/// docs/security.md, revoking a key: "applied" is reported only when no worker that may still
/// answer a request has the previous generation, the old workers of a restart included.
extension SupervisorRestartTests {
    @Test func aRestartIsAppliedOnlyOnceTheOldWorkersServeTheNewConfigurationAndTheyDrainRightAfter() {
        var h = SupervisorHarness(workers: 2)
        let (old, _) = h.startRunning()
        let request = ReloadRequestID(raw: 1)
        h.handle(.reloadRequested(.operatorRequest(request)), at: 10)
        let one = SupervisorHarness.configuration(workers: 1, maxConnections: 7)
        let successor = h.load(one).spawns[0].worker  // 2 -> 1: slot 0 now serves both sockets

        let commit = h.handle(.workerReady(successor, generation: 2), at: 10.2)
        for id in old {
            #expect(
                commit.sent(to: id) == [.applyConfig(generation: 2, one), .drain(deadline: .seconds(30))],
                "the new keys first, then the drain, on the same ordered channel")
        }
        #expect(commit.replies.isEmpty && commit.notifications.isEmpty, "not applied while an old worker has the old keys")
        #expect(h.state.current.generation == 2, "the new generation is current: new connections reach it")

        #expect(h.handle(.configApplied(old[0], generation: 2), at: 10.25).replies.isEmpty)
        let applied = h.handle(.configApplied(old[1], generation: 2), at: 10.3)
        #expect(applied.replies == [request: .applied(generation: 2)])
        #expect(applied.notifications == ["READY=1\nSTATUS=serving generation 2 with 1 worker on 127.0.0.1:8080"])
    }

    @Test func anOldWorkerThatExitsInsteadOfAcknowledgingNoLongerHoldsTheReload() {
        var h = SupervisorHarness(workers: 2)
        let (old, _) = h.startRunning()
        let request = ReloadRequestID(raw: 1)
        h.handle(.reloadRequested(.operatorRequest(request)), at: 10)
        let successor = h.load(SupervisorHarness.configuration(workers: 1)).spawns[0].worker
        h.handle(.workerReady(successor, generation: 2), at: 10.2)
        h.handle(.configApplied(old[0], generation: 2), at: 10.3)
        #expect(h.handle(.workerExited(old[1], .exited(0)), at: 10.4).replies == [request: .applied(generation: 2)])
    }

    @Test func anOldWorkerThatNeverAcknowledgesIsKilledAtTheAcknowledgementDeadline() {
        var h = SupervisorHarness(workers: 1, policy: Self.patientHeartbeats)
        let (old, _) = h.startRunning()
        let request = ReloadRequestID(raw: 1)
        h.handle(.reloadRequested(.operatorRequest(request)), at: 10)
        let spawned = h.loadMoved(SupervisorHarness.configuration(workers: 1, address: "127.0.0.1:9090"), at: 10)
        h.handle(.workerReady(spawned[0].worker, generation: 2), at: 10.1)
        #expect(h.tick(at: 20.0).kills.isEmpty)
        let late = h.tick(at: 20.1)
        #expect(late.kills == [.kill(old[0], .kill)], "it could still answer with the old keys")
        #expect(late.replies == [request: .applied(generation: 2)])
    }

    @Test func aHotReloadAlsoReachesTheDrainingCandidatesOfARolledBackRestart() {
        var h = SupervisorHarness(workers: 1, policy: Self.patientHeartbeats)
        let (old, _) = h.startRunning()
        h.handle(.signal(.hangup), at: 10)
        let spawned = h.loadMoved(SupervisorHarness.configuration(workers: 2, address: "127.0.0.1:9090"), at: 10)
        h.handle(.workerReady(spawned[0].worker, generation: 2), at: 10.1)  // accepts on the new address
        h.handle(.workerExited(spawned[1].worker, .exited(1)), at: 10.2)  // rollback: spawned[0] drains
        // The next reload is generation 2 as well, with other keys: the drained candidate gets it.
        let request = ReloadRequestID(raw: 1)
        h.handle(.reloadRequested(.operatorRequest(request)), at: 11)
        let keys = SupervisorHarness.configuration(workers: 1, maxConnections: 5)
        let broadcast = h.load(keys)
        #expect(broadcast.sends == [old[0]: [.applyConfig(generation: 2, keys)], spawned[0].worker: [.applyConfig(generation: 2, keys)]])
        h.handle(.configApplied(old[0], generation: 2), at: 11.1)
        #expect(h.handle(.configApplied(spawned[0].worker, generation: 2), at: 11.2).replies == [request: .applied(generation: 2)])
    }

    @Test func aHotReloadAlsoReachesAWorkerStillDrainingAnEarlierRestart() {
        var h = SupervisorHarness(workers: 2, policy: Self.patientHeartbeats)
        let (old, _) = h.startRunning()
        h.handle(.signal(.hangup), at: 10)
        let successor = h.load(SupervisorHarness.configuration(workers: 1)).spawns[0].worker
        h.handle(.workerReady(successor, generation: 2), at: 10.1)
        for id in old { h.handle(.configApplied(id, generation: 2), at: 10.2) }
        // The old workers still drain (a long stream) when the next reload comes.
        let request = ReloadRequestID(raw: 2)
        h.handle(.reloadRequested(.operatorRequest(request)), at: 12)
        let three = SupervisorHarness.configuration(workers: 1, maxConnections: 3)
        let broadcast = h.load(three)
        #expect(
            broadcast.sends == [
                successor: [.applyConfig(generation: 3, three)], old[0]: [.applyConfig(generation: 3, three)],
                old[1]: [.applyConfig(generation: 3, three)],
            ])
        h.handle(.configApplied(successor, generation: 3), at: 12.1)
        h.handle(.configApplied(old[0], generation: 3), at: 12.1)
        #expect(h.handle(.configApplied(old[1], generation: 3), at: 12.2).replies == [request: .applied(generation: 3)])
    }

    @Test func writingDownThePortChosenForPortZeroIsNotAnAddressChange() {
        var h = SupervisorHarness(workers: 2, address: "127.0.0.1:0")
        let ids = h.handle(.start).opened
        let spawned = h.handle(.listenersOpened(ids, BindAddress(parsing: "127.0.0.1:40000")!)).spawns
        for launch in spawned { h.handle(.workerReady(launch.worker, generation: 1)) }
        h.handle(.signal(.hangup), at: 5)
        let pinned = SupervisorHarness.configuration(workers: 2, address: "127.0.0.1:40000", maxConnections: 5)
        let reload = h.load(pinned)
        #expect(reload.opened.isEmpty && reload.spawns.isEmpty, "a hot reload on the sockets already bound")
        #expect(reload.sends.count == 2)
    }
}
