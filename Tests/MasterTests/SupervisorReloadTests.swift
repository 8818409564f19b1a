#if canImport(Glibc)
import Glibc
#endif
import Common
import Testing
@testable import FluxgateMaster

/// Hot reloads: validation, broadcast, acks, rejection, coalescing and the operator's answer.
@Suite struct SupervisorReloadTests {
    let changed = SupervisorHarness.configuration(workers: 2, maxConnections: 10)

    @Test func sighupStartsAReloadWithReloadingAndMonotonicUsec() {
        var h = SupervisorHarness()
        h.startRunning()
        let begin = h.handle(.signal(.hangup), at: 12.5)
        #expect(begin.notifications == ["RELOADING=1\nMONOTONIC_USEC=12500000"])
        #expect(begin.loadsConfiguration)
    }

    @Test func aHotChangeIsBroadcastAndReadyFollowsTheLastAck() {
        var h = SupervisorHarness()
        let (workers, _) = h.startRunning()
        h.handle(.signal(.hangup), at: 10)

        let broadcast = h.load(changed)
        #expect(
            broadcast.sends == [
                workers[0]: [.applyConfig(generation: 2, changed)],
                workers[1]: [.applyConfig(generation: 2, changed)],
            ])
        #expect(broadcast.notifications.isEmpty, "READY=1 waits for every ack")
        #expect(broadcast.spawns.isEmpty && broadcast.drains.isEmpty, "a hot reload restarts nobody")

        #expect(h.handle(.configApplied(workers[0], generation: 2), at: 10.01).notifications.isEmpty)
        let done = h.handle(.configApplied(workers[1], generation: 2), at: 10.02)
        #expect(
            done.logs == [
                LogEntry(
                    .info, "Reloaded configuration",
                    [
                        ("path", .plain("/etc/fluxgate/fluxgate.yaml")), ("status", .quoted("applied")), ("generation", .plain("2")),
                    ])
            ])
        #expect(done.notifications == ["READY=1\nSTATUS=serving generation 2 with 2 workers on 127.0.0.1:8080"])
        #expect(h.state.current.configuration == changed)
    }

    @Test func aFileChangeLogsFluxgatesText() {
        var h = SupervisorHarness()
        let (workers, _) = h.startRunning()
        h.handle(.reloadRequested(.fileChanged), at: 3)
        h.load(changed)
        h.handle(.configApplied(workers[0], generation: 2))
        let done = h.handle(.configApplied(workers[1], generation: 2))
        #expect(
            done.logs == [
                LogEntry(
                    .info, "Configuration file changed, reloaded automatically",
                    [
                        ("path", .plain("/etc/fluxgate/fluxgate.yaml")), ("status", .quoted("applied")),
                    ])
            ])
    }

    @Test func anInvalidFileIsRejectedEveryProblemLoggedAndNothingChanges() {
        var h = SupervisorHarness()
        h.startRunning()
        let request = ReloadRequestID(raw: 1)
        h.handle(.reloadRequested(.operatorRequest(request)), at: 4)
        let rejected = h.loadInvalid(["must be greater than 0", "unknown upstream"])

        let problems = [
            "fluxgate.yaml:1:1: error: server.max_connections: must be greater than 0 [test.problem]",
            "fluxgate.yaml:2:1: error: server.max_connections: unknown upstream [test.problem]",
        ]
        #expect(rejected.logs.map(\.level) == [.warning, .warning, .warning])
        #expect(rejected.messages == problems + ["Configuration reload failed validation; keeping previous settings"])
        #expect(
            rejected.notifications == [
                "READY=1\nSTATUS=reload rejected: \(problems[0]); serving generation 1 with 2 workers on 127.0.0.1:8080"
            ])
        #expect(rejected.replies == [request: .rejected(problems)])
        #expect(rejected.sends.isEmpty && rejected.spawns.isEmpty)
        #expect(h.state.current.generation == 1)
    }

    @Test func anInvalidFileAfterAFileChangeUsesFluxgatesWarning() {
        var h = SupervisorHarness()
        h.startRunning()
        h.handle(.reloadRequested(.fileChanged))
        let rejected = h.loadInvalid(["must be greater than 0"])
        #expect(
            rejected.logs.last
                == LogEntry(
                    .warning, "Configuration file changed but validation failed; keeping previous settings",
                    [
                        ("path", .plain("/etc/fluxgate/fluxgate.yaml")),
                        ("error", .plain("fluxgate.yaml:1:1: error: server.max_connections: must be greater than 0 [test.problem]")),
                    ]))
    }

    @Test func anUnchangedConfigurationSendsNothingAndReportsUnchanged() {
        var h = SupervisorHarness()
        h.startRunning()
        let request = ReloadRequestID(raw: 3)
        h.handle(.reloadRequested(.operatorRequest(request)))
        let same = h.load(SupervisorHarness.configuration())
        #expect(same.sends.isEmpty)
        #expect(same.replies == [request: .unchanged(generation: 1)])
        #expect(same.notifications == ["READY=1\nSTATUS=serving generation 1 with 2 workers on 127.0.0.1:8080"])
    }

    @Test func reloadsArrivingDuringAReloadAreCoalescedIntoOneFollowUp() {
        var h = SupervisorHarness()
        let (workers, _) = h.startRunning()
        let first = ReloadRequestID(raw: 1), second = ReloadRequestID(raw: 2), third = ReloadRequestID(raw: 3)
        h.handle(.reloadRequested(.operatorRequest(first)), at: 10)
        h.load(changed)

        // Three triggers while the broadcast waits for acks: nothing starts yet.
        for event in [
            SupervisorEvent.signal(.hangup), .reloadRequested(.operatorRequest(second)),
            .reloadRequested(.operatorRequest(third)),
        ] {
            #expect(h.handle(event, at: 10.1).isEmpty)
        }
        h.handle(.configApplied(workers[0], generation: 2), at: 10.2)
        let finished = h.handle(.configApplied(workers[1], generation: 2), at: 10.3)
        #expect(finished.replies == [first: .applied(generation: 2)])
        #expect(
            finished.notifications == [
                "READY=1\nSTATUS=serving generation 2 with 2 workers on 127.0.0.1:8080",
                "RELOADING=1\nMONOTONIC_USEC=10300000",
            ],
            "exactly one follow-up reload starts at once")
        #expect(finished.loadsConfiguration)

        let followUp = h.load(changed)
        #expect(followUp.replies == [second: .unchanged(generation: 2), third: .unchanged(generation: 2)])
    }

    @Test func aReloadDuringTheFirstStartWaitsUntilReady() {
        var h = SupervisorHarness(workers: 1)
        let ids = h.handle(.start).opened
        let spawned = h.handle(.listenersOpened(ids, h.state.current.address)).spawns
        #expect(h.handle(.signal(.hangup), at: 0.1).isEmpty)
        let ready = h.handle(.workerReady(spawned[0].worker, generation: 1), at: 0.2)
        #expect(
            ready.notifications == [
                "READY=1\nSTATUS=serving generation 1 with 1 worker on 127.0.0.1:8080",
                "RELOADING=1\nMONOTONIC_USEC=200000",
            ])
    }

    @Test func aWorkerThatRejectsTheConfigurationIsReplacedWithoutOverlappingAcceptors() {
        var h = SupervisorHarness()
        let (workers, listeners) = h.startRunning()
        h.handle(.signal(.hangup), at: 10)
        h.load(changed)
        h.handle(.configApplied(workers[0], generation: 2), at: 10.1)

        let rejected = h.handle(.configRejected(workers[1], generation: 2, error: "cannot build TLS context"), at: 10.2)
        #expect(rejected.messages.first == "Worker rejected the configuration it was sent; restarting it")
        #expect(rejected.drains == [workers[1]])
        let replacement = rejected.spawns
        #expect(replacement.count == 1)
        #expect(replacement.first?.slot == 1 && replacement.first?.listeners == [listeners[1]])
        #expect(replacement.first?.configuration == changed && replacement.first?.generation == 2)
        #expect(replacement.first?.standby == true, "the old worker still accepts on that socket")
        #expect(rejected.notifications.isEmpty, "not applied while the worker that kept the old keys still drains")

        let newID = replacement[0].worker
        #expect(h.handle(.workerReady(newID, generation: 2), at: 10.3).sent(to: newID).isEmpty)
        #expect(h.handle(.stoppedAccepting(workers[1]), at: 10.4).sent(to: newID) == [.startAccepting])
        #expect(h.handle(.workerExited(workers[1], .exited(0)), at: 11).notifications.first?.hasPrefix("READY=1") == true)
    }

    @Test func aWorkerThatNeverAcksIsKilledAndTheReloadCompletes() {
        var h = SupervisorHarness()
        let (workers, _) = h.startRunning()
        h.handle(.signal(.hangup), at: 10)
        h.load(changed)
        h.handle(.configApplied(workers[0], generation: 2), at: 10.1)
        for t in stride(from: 11.0, through: 19.0, by: 1) {
            h.handle(.heartbeat(workers[1]), at: t)
        }
        let timedOut = h.tick(at: 20)
        #expect(timedOut.kills == [.kill(workers[1], .kill)])
        #expect(timedOut.notifications.first?.hasPrefix("READY=1") == true)
        let respawn = h.handle(.workerExited(workers[1], .signalled(SIGKILL)), at: 20.1).spawns
        #expect(respawn.first?.configuration == changed, "the replacement starts with the new configuration")
    }

    /// A worker still starting may already accept (it reports ready after it does): it gets the
    /// new generation at once, read right after its first configuration, and is waited for.
    @Test func aWorkerStillStartingGetsTheNewGenerationAtOnceAndTheReloadWaitsForIt() {
        var h = SupervisorHarness()
        let (workers, _) = h.startRunning()
        let respawned = h.handle(.workerExited(workers[1], .signalled(SIGSEGV)), at: 5).spawns[0]
        #expect(respawned.generation == 1)
        h.handle(.signal(.hangup), at: 5.1)
        #expect(h.load(changed).sent(to: respawned.worker) == [.applyConfig(generation: 2, changed)])
        #expect(h.handle(.configApplied(workers[0], generation: 2), at: 5.2).notifications.isEmpty)
        #expect(
            h.handle(.workerReady(respawned.worker, generation: 1), at: 5.3).sent(to: respawned.worker).isEmpty,
            "it has the new generation already")
        let done = h.handle(.configApplied(respawned.worker, generation: 2), at: 5.4)
        #expect(done.notifications.first?.hasPrefix("READY=1") == true)
    }
}
