#if canImport(Glibc)
import Glibc
#endif
import Common
import Testing
@testable import FluxgateMaster

/// First start, shutdown and the watchdog of the pure supervisor: explicit instants, no processes.
@Suite struct SupervisorStateTests {
    // MARK: - First start

    @Test func startOpensOneListenerPerSlotThenSpawnsOneWorkerPerSlot() {
        var h = SupervisorHarness(workers: 3)
        let first = h.handle(.start)
        #expect(
            first == [
                .openListeners(
                    [ListenerID(raw: 1), ListenerID(raw: 2), ListenerID(raw: 3)],
                    BindAddress(parsing: "127.0.0.1:8080")!)
            ])

        let resolved = BindAddress(parsing: "127.0.0.1:41234")!
        let spawned = h.handle(.listenersOpened(first.opened, resolved)).spawns
        #expect(spawned.map(\.slot) == [0, 1, 2])
        #expect(spawned.map(\.listeners) == [[ListenerID(raw: 1)], [ListenerID(raw: 2)], [ListenerID(raw: 3)]])
        #expect(spawned.allSatisfy { $0.generation == 1 && !$0.standby })
        #expect(h.state.current.address == resolved, "port 0 is resolved to the bound port")
    }

    @Test func readyIsSentOnlyWhenEveryFirstGenerationWorkerIsReady() {
        var h = SupervisorHarness(workers: 2)
        let ids = h.handle(.start).opened
        let spawned = h.handle(.listenersOpened(ids, BindAddress(parsing: "127.0.0.1:8080")!)).spawns

        #expect(h.handle(.workerReady(spawned[0].worker, generation: 1), at: 0.2).notifications.isEmpty)
        let last = h.handle(.workerReady(spawned[1].worker, generation: 1), at: 0.3)
        #expect(last.notifications == ["READY=1\nSTATUS=serving generation 1 with 2 workers on 127.0.0.1:8080"])
        #expect(last.messages == ["Fluxgate proxy server listening on 127.0.0.1:8080"])
        #expect(h.state.phase == .running)
    }

    @Test func aWorkerExitingDuringStartFailsTheStartWithoutReady() {
        var h = SupervisorHarness(workers: 2)
        let ids = h.handle(.start).opened
        let spawned = h.handle(.listenersOpened(ids, h.state.current.address)).spawns

        let failed = h.handle(.workerExited(spawned[0].worker, .exited(1)), at: 1)
        #expect(failed.messages.first == "Workers failed to start")
        #expect(failed.kills == [.kill(spawned[1].worker, .terminate)])
        #expect(!failed.notifications.contains { $0.contains("READY=1") })

        let done = h.handle(.workerExited(spawned[1].worker, .signalled(SIGTERM)), at: 1.1)
        #expect(failed.closed + done.closed == ids, "each socket closes once nobody uses it")
        #expect(done.exitCode == FluxgateExit.failure.rawValue)
    }

    @Test func aWorkerRejectingItsConfigurationAtStartStopsTheMasterWith78() {
        var h = SupervisorHarness(workers: 1)
        let ids = h.handle(.start).opened
        let spawned = h.handle(.listenersOpened(ids, h.state.current.address)).spawns
        let done = h.handle(.workerExited(spawned[0].worker, .exited(78)))
        #expect(done.exitCode == 78)
    }

    @Test func noReadyReportWithinTheStartTimeoutFailsTheStart() {
        var h = SupervisorHarness(workers: 1)
        let ids = h.handle(.start).opened
        let spawned = h.handle(.listenersOpened(ids, h.state.current.address)).spawns
        #expect(h.tick(at: 14.9).kills.isEmpty)
        let timedOut = h.tick(at: 15)
        #expect(timedOut.messages.first == "Workers failed to start")
        #expect(timedOut.kills == [.kill(spawned[0].worker, .terminate)])
        // SIGTERM ignored: SIGKILL after the fast-stop timeout, exit once reaped.
        #expect(h.tick(at: 20).kills == [.kill(spawned[0].worker, .kill)])
        #expect(h.handle(.workerExited(spawned[0].worker, .signalled(SIGKILL))).exitCode == 1)
    }

    @Test func aListenerThatCannotBeBoundFailsTheStart() {
        var h = SupervisorHarness(workers: 2)
        let ids = h.handle(.start).opened
        let failed = h.handle(.listenersFailed(ids, "bind(127.0.0.1:8080): Address already in use"))
        #expect(
            failed.logs.first
                == LogEntry(
                    .error, "Failed to start proxy server",
                    [("error", .plain("bind(127.0.0.1:8080): Address already in use"))]))
        #expect(failed.exitCode == 1)
        #expect(failed.spawns.isEmpty)
    }

    // MARK: - Shutdown

    @Test func sigtermDrainsEveryWorkerWithTheShutdownTimeoutAndExitsZero() {
        var h = SupervisorHarness(workers: 2)
        let (workers, listeners) = h.startRunning()

        let stop = h.handle(.signal(.terminate), at: 100)
        #expect(stop.messages == ["Shutdown signal received (SIGTERM); shutting down proxy"])
        #expect(stop.notifications == ["STOPPING=1\nSTATUS=shutting down (SIGTERM)"])
        #expect(stop.sent(to: workers[0]) == [.drain(deadline: .seconds(30))])
        #expect(stop.sent(to: workers[1]) == [.drain(deadline: .seconds(30))])

        let first = h.handle(.workerExited(workers[0], .exited(0)), at: 101)
        #expect(first.exitCode == nil)
        let done = h.handle(.workerExited(workers[1], .exited(0)), at: 102)
        #expect(Set(first.closed + done.closed) == Set(listeners))
        #expect(done.messages == ["Proxy server shutdown complete"])
        #expect(done.exitCode == 0)
    }

    @Test func stragglersAreKilledAtTheShutdownDeadline() {
        var h = SupervisorHarness(workers: 2)
        let (workers, _) = h.startRunning()
        h.handle(.signal(.interrupt), at: 100)
        h.handle(.workerExited(workers[0], .exited(0)), at: 105)

        #expect(h.tick(at: 130.9).kills.isEmpty, "the worker gets its 30 s and a grace second")
        let deadline = h.tick(at: 131)
        #expect(deadline.kills == [.kill(workers[1], .kill)])
        #expect(deadline.messages == ["Worker killed at the shutdown deadline"])
        #expect(h.handle(.workerExited(workers[1], .signalled(SIGKILL)), at: 131.01).exitCode == 0)
    }

    @Test func sigquitDrainsWithTheLongDeadlineForStreams() {
        var h = SupervisorHarness(workers: 1)
        let (workers, _) = h.startRunning()
        let stop = h.handle(.signal(.quit), at: 10)
        #expect(stop.sent(to: workers[0]) == [.drain(deadline: .seconds(600))])
        #expect(h.tick(at: 400).kills.isEmpty)
    }

    @Test func aSecondSignalStopsTheWorkersAtOnce() {
        var h = SupervisorHarness(workers: 2)
        let (workers, _) = h.startRunning()
        h.handle(.signal(.terminate), at: 10)
        let second = h.handle(.signal(.terminate), at: 12)
        #expect(second.kills == [.kill(workers[0], .terminate), .kill(workers[1], .terminate)])
        #expect(h.tick(at: 17).kills == [.kill(workers[0], .kill), .kill(workers[1], .kill)])
        #expect(h.handle(.signal(.interrupt), at: 18).isEmpty, "a third signal changes nothing")
    }

    @Test func shutdownAnswersWaitingReloadRequestsAsAborted() {
        var h = SupervisorHarness(workers: 1)
        h.startRunning()
        let request = ReloadRequestID(raw: 7)
        h.handle(.reloadRequested(.operatorRequest(request)), at: 5)
        let stop = h.handle(.signal(.terminate), at: 5.1)
        #expect(stop.replies == [request: .aborted("the proxy is shutting down")])
        let late = h.handle(.reloadRequested(.operatorRequest(ReloadRequestID(raw: 8))), at: 5.2)
        #expect(late.replies == [ReloadRequestID(raw: 8): .aborted("the proxy is shutting down")])
        #expect(!late.loadsConfiguration)
    }

    // MARK: - Watchdog

    @Test func watchdogIsPettedEveryHalfIntervalWhenEnabled() {
        var policy = SupervisorPolicy()
        policy.watchdogInterval = .seconds(4)
        var h = SupervisorHarness(workers: 1, policy: policy)
        h.startRunning()
        #expect(h.state.nextDeadline() == .seconds(2))
        #expect(h.tick(at: 1.9).notifications.isEmpty)
        #expect(h.tick(at: 2).notifications == ["WATCHDOG=1"])
        #expect(h.tick(at: 3).notifications.isEmpty)
        #expect(h.tick(at: 4).notifications == ["WATCHDOG=1"])
    }

    @Test func noWatchdogWithoutWatchdogUsec() {
        var h = SupervisorHarness(workers: 1)
        h.startRunning()
        h.handle(.heartbeat(h.state.current.slots[0].worker!), at: 5)
        #expect(h.tick(at: 5).notifications.isEmpty)
    }
}
