import Common
import NIOCore
import Testing
@testable import FluxgateWorker

/// A `WorkerControlState` driven with explicit instants (seconds since the worker started).
struct WorkerControlHarness {
    var state: WorkerControlState
    var now: Double = 0

    init(standby: Bool = false) {
        state = WorkerControlState(standby: standby, startedAt: Self.instant(0))
    }

    static func instant(_ seconds: Double) -> NIODeadline { .uptimeNanoseconds(UInt64(seconds * 1e9)) }

    mutating func handle(_ event: WorkerControlEvent, at seconds: Double? = nil) -> [WorkerControlAction] {
        if let seconds { now = seconds }
        return state.handle(event, now: Self.instant(now))
    }

    mutating func master(
        _ kind: ControlMessage.Kind, gen: UInt64 = 0, body: ControlMessage.Body = .init(),
        at seconds: Double? = nil
    ) -> [WorkerControlAction] {
        handle(.messageReceived(ControlMessage(type: kind, gen: gen, body: body)), at: seconds)
    }

    mutating func tick(at seconds: Double) -> [WorkerControlAction] {
        handle(.tick, at: seconds)
    }
}

extension Array where Element == WorkerControlAction {
    var sent: [ControlMessage] {
        compactMap { action -> ControlMessage? in
            guard case .send(let message) = action else { return nil }
            return message
        }
    }
    var heartbeats: [ControlMessage] { sent.filter { $0.type == .heartbeat } }
}

@Suite struct WorkerControlStateTests {
    static let configuration = Fixtures.configuration(upstreams: [Fixtures.upstream("openai", "/openai")])

    // MARK: - applyConfig

    /// The master reports a reload applied on this ack (docs/security.md: a revoked key stops
    /// working once the reload says so), so it must not come before the data plane swapped.
    @Test func applyConfigIsAcknowledgedOnlyOnceTheDataPlaneHasAppliedIt() {
        var h = WorkerControlHarness()
        #expect(
            h.master(.applyConfig, gen: 2, body: .init(config: Self.configuration)) == [
                .apply(Self.configuration, generation: 2)
            ])
        #expect(h.tick(at: 0.5).isEmpty, "no ack while the data plane is applying")
        #expect(h.handle(.configurationApplied(generation: 2)) == [.send(ControlMessage(type: .configApplied, gen: 2))])
    }

    @Test func aConfigurationTheDataPlaneCannotApplyIsRejectedWithTheReason() {
        var h = WorkerControlHarness()
        _ = h.master(.applyConfig, gen: 2, body: .init(config: Self.configuration))
        let reason = "the listener's TLS certificate is unusable: TLS setup failed (no certificate)"
        #expect(
            h.handle(.configurationFailed(generation: 2, reason: reason)) == [
                .send(ControlMessage(type: .configRejected, gen: 2, body: .init(error: reason)))
            ])
        #expect(h.state.phase == .serving, "the worker goes on with the configuration it had")
    }

    @Test func applyConfigWithoutAConfigurationIsRejectedAndChangesNothing() {
        var h = WorkerControlHarness()
        #expect(
            h.master(.applyConfig, gen: 2) == [
                .send(ControlMessage(type: .configRejected, gen: 2, body: .init(error: "applyConfig without a configuration")))
            ])
    }

    @Test func applyConfigWhileDrainingIsStillAppliedAndAcknowledged() {
        // A graceful restart's old workers get the new configuration right before `drain` and
        // the reload is reported applied on their acks: requests still reaching them use it.
        var h = WorkerControlHarness()
        _ = h.master(.drain, body: .init(deadlineMs: 5_000))
        #expect(
            h.master(.applyConfig, gen: 3, body: .init(config: Self.configuration)) == [
                .apply(Self.configuration, generation: 3)
            ])
        #expect(h.handle(.configurationApplied(generation: 3)).sent == [ControlMessage(type: .configApplied, gen: 3)])
    }

    // MARK: - Heartbeats

    @Test func noHeartbeatBeforeTheFirstSecond() {
        var h = WorkerControlHarness()
        #expect(h.tick(at: 0).isEmpty)
        #expect(h.tick(at: 0.5).isEmpty)
        #expect(h.tick(at: 0.999_999_999).isEmpty)
    }

    @Test func oneHeartbeatPerSecond() {
        var h = WorkerControlHarness()
        var beats: [Double] = []
        for t in stride(from: 0.25, through: 3.5, by: 0.25) where !h.tick(at: t).heartbeats.isEmpty { beats.append(t) }
        #expect(beats == [1, 2, 3])
        #expect(h.tick(at: 4).heartbeats == [ControlMessage(type: .heartbeat)])
    }

    @Test func aLateTickSendsOneHeartbeatAndTheNextIsAFullSecondLater() {
        var h = WorkerControlHarness()
        #expect(h.tick(at: 3.5).heartbeats.count == 1, "missed beats are not caught up")
        #expect(h.tick(at: 4.4).isEmpty)
        #expect(h.tick(at: 4.5).heartbeats.count == 1)
    }

    @Test func heartbeatsContinueWhileDrainingAndStopWhenTheChannelCloses() {
        var h = WorkerControlHarness()
        _ = h.master(.drain, body: .init(deadlineMs: 5_000), at: 0.5)
        #expect(h.tick(at: 1).heartbeats.count == 1)
        _ = h.handle(.channelClosed, at: 1.5)
        #expect(h.tick(at: 2).isEmpty)
        #expect(h.tick(at: 10).isEmpty)
    }

    // MARK: - drain

    @Test func drainStopsAcceptingRepliesStoppedAcceptingThenDrainedAndExitsZero() {
        var h = WorkerControlHarness()
        #expect(h.master(.drain, body: .init(deadlineMs: 5_000)) == [.drain(deadlineMs: 5_000)])
        #expect(h.state.listening == .closed)
        #expect(h.handle(.listenersClosed) == [.send(ControlMessage(type: .stoppedAccepting))])
        #expect(
            h.handle(.drainFinished) == [
                .send(ControlMessage(type: .drained)),
                .exit(.success),
            ])
        #expect(h.state.phase == .exited(.success))
    }

    @Test func drainWithoutADeadlineGetsTheOrphanDeadline() {
        var h = WorkerControlHarness()
        #expect(h.master(.drain) == [.drain(deadlineMs: 30_000)])
    }

    @Test func aSecondDrainIsIgnoredAndNotAnswered() {
        var h = WorkerControlHarness()
        #expect(h.master(.drain, body: .init(deadlineMs: 5_000)) == [.drain(deadlineMs: 5_000)])
        #expect(h.master(.drain, body: .init(deadlineMs: 1_000)).isEmpty, "the first deadline stands")
        #expect(h.handle(.drainFinished).sent.map(\.type) == [.drained], "answered once")
    }

    @Test func nothingHappensAfterTheExit() {
        var h = WorkerControlHarness()
        _ = h.master(.drain)
        _ = h.handle(.drainFinished)
        #expect(h.master(.applyConfig, gen: 3, body: .init(config: Self.configuration)).isEmpty)
        #expect(h.handle(.channelClosed).isEmpty)
        #expect(h.tick(at: 5).isEmpty)
    }

    // MARK: - The master is gone

    @Test func eofDrainsWithTheOrphanDeadlineThenExitsWithoutAReply() {
        var h = WorkerControlHarness()
        #expect(h.handle(.channelClosed, at: 0.5) == [.log(.masterGone), .drain(deadlineMs: 30_000)])
        #expect(h.handle(.listenersClosed).isEmpty)
        #expect(h.handle(.drainFinished) == [.exit(.success)])
    }

    @Test func eofDuringADrainChangesNothing() {
        var h = WorkerControlHarness()
        _ = h.master(.drain, body: .init(deadlineMs: 5_000))
        #expect(h.handle(.channelClosed).isEmpty)
        #expect(h.state.phase == .draining(toldByMaster: true))
    }

    @Test func aProtocolErrorIsLoggedAndClosesTheChannelWhichThenDrains() {
        var h = WorkerControlHarness()
        #expect(h.handle(.protocolError("frame too large")) == [.log(.protocolError("frame too large")), .closeChannel])
        #expect(h.handle(.channelClosed) == [.log(.masterGone), .drain(deadlineMs: 30_000)])
    }

    // MARK: - standby, the rest

    @Test func aStandbyWorkerDoesNotAcceptUntilStartAccepting() {
        var h = WorkerControlHarness(standby: true)
        #expect(h.state.listening == .standby)
        _ = h.master(.applyConfig, gen: 2, body: .init(config: Self.configuration))
        #expect(h.state.listening == .standby, "a configuration is not the word to accept")

        #expect(h.master(.startAccepting) == [.startAccepting])
        #expect(h.state.listening == .starting)
        #expect(h.master(.startAccepting).isEmpty, "the sockets are adopted once")
        #expect(h.handle(.listenerAdopted).isEmpty)
        #expect(h.state.listening == .accepting)
    }

    @Test func startAcceptingIsIgnoredByAnAcceptingOrDrainedWorker() {
        var accepting = WorkerControlHarness()
        #expect(accepting.master(.startAccepting).isEmpty)

        var drained = WorkerControlHarness(standby: true)
        _ = drained.master(.drain)
        #expect(drained.master(.startAccepting).isEmpty, "a drained worker never reopens its listeners")
    }

    @Test func failingToAdoptTheListenersExitsWithFailure() {
        var h = WorkerControlHarness(standby: true)
        _ = h.master(.startAccepting)
        #expect(h.handle(.listenerAdoptionFailed("EBADF")) == [.log(.startAcceptingFailed("EBADF")), .exit(.failure)])
    }

    // MARK: - Lent sockets

    @Test func aLentSocketIsAdoptedAndGivenBackWhenTheMasterAsks() {
        var h = WorkerControlHarness()
        #expect(h.master(.adoptListener, body: .init(listener: 7)) == [.adoptListener(7)])
        #expect(h.state.borrowed == [7])
        #expect(h.master(.releaseListener, body: .init(listener: 7)) == [.releaseListener(7)])
        #expect(
            h.handle(.borrowedListenerReleased(listener: 7)) == [
                .send(ControlMessage(type: .listenerReleased, body: .init(listener: 7)))
            ])
        #expect(h.state.borrowed.isEmpty)
    }

    @Test func aLentSocketThatCannotBeAdoptedIsReportedGivenBack() {
        var h = WorkerControlHarness()
        _ = h.master(.adoptListener, body: .init(listener: 7))
        #expect(
            h.handle(.borrowedListenerFailed(listener: 7, reason: "EAGAIN")) == [
                .log(.borrowedListenerFailed("EAGAIN")),
                .send(ControlMessage(type: .listenerReleased, body: .init(listener: 7))),
            ])
        #expect(
            h.master(.releaseListener, body: .init(listener: 7)) == [
                .send(ControlMessage(type: .listenerReleased, body: .init(listener: 7)))
            ], "a release of a socket it does not hold is answered at once")
    }

    @Test func aDrainingWorkerTakesNoLoanAndItsDrainClosesThoseItHas() {
        var h = WorkerControlHarness()
        _ = h.master(.adoptListener, body: .init(listener: 7))
        _ = h.master(.drain, body: .init(deadlineMs: 5_000))
        #expect(h.state.borrowed.isEmpty, "the drain closes lent sockets with the others (stoppedAccepting)")
        #expect(h.master(.releaseListener, body: .init(listener: 7)).isEmpty)
        #expect(
            h.master(.adoptListener, body: .init(listener: 8)) == [
                .discardListener(8), .send(ControlMessage(type: .listenerReleased, body: .init(listener: 8))),
            ])
    }

    @Test(arguments: [
        ControlMessage.Kind.ready, .configApplied, .configRejected, .heartbeat, .drained, .stoppedAccepting,
        .listenerReleased,
    ])
    func aMasterBoundKindFromTheMasterIsLoggedAndIgnored(kind: ControlMessage.Kind) {
        var h = WorkerControlHarness()
        #expect(h.master(kind) == [.log(.unexpectedMessage(kind))], "logged, nothing sent")
        #expect(h.state.phase == .serving)
    }
}
