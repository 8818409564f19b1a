import Common
import NIOCore
import Testing
@testable import FluxgateWorker

/// A `WorkerControlState` driven with explicit instants (seconds since the worker started).
struct WorkerControlHarness {
    var state: WorkerControlState
    var now: Double = 0

    init(generation: UInt64 = 1, standby: Bool = false) {
        state = WorkerControlState(generation: generation, standby: standby, startedAt: Self.instant(0))
    }

    static func instant(_ seconds: Double) -> NIODeadline { .uptimeNanoseconds(UInt64(seconds * 1e9)) }

    mutating func handle(_ event: WorkerControlEvent, at seconds: Double? = nil) -> [WorkerControlAction] {
        if let seconds { now = seconds }
        return state.handle(event, now: Self.instant(now))
    }

    mutating func master(_ kind: ControlMessage.Kind, seq: UInt64, gen: UInt64 = 1, body: ControlMessage.Body = .init(),
                         at seconds: Double? = nil) -> [WorkerControlAction] {
        handle(.messageReceived(ControlMessage(type: kind, seq: seq, gen: gen, body: body)), at: seconds)
    }

    mutating func tick(at seconds: Double, load: WorkerLoad = .unmeasured) -> [WorkerControlAction] {
        handle(.tick(load), at: seconds)
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

    @Test func applyConfigAppliesThenAcksWithTheRequestsSeqAndGeneration() {
        var h = WorkerControlHarness(generation: 1)
        let actions = h.master(.applyConfig, seq: 7, gen: 2, body: .init(config: Self.configuration))
        #expect(actions == [
            .apply(Self.configuration),
            .send(ControlMessage(type: .configApplied, seq: 2, ack: 7, gen: 2)),
        ])
        #expect(h.state.generation == 2, "heartbeats and drain replies now carry generation 2")
    }

    @Test func applyConfigWithoutAConfigurationIsRejectedAndChangesNothing() {
        var h = WorkerControlHarness(generation: 1)
        let actions = h.master(.applyConfig, seq: 7, gen: 2)
        #expect(actions == [
            .send(ControlMessage(type: .configRejected, seq: 2, ack: 7, gen: 2,
                                 body: .init(error: "applyConfig without a configuration"))),
        ])
        #expect(h.state.generation == 1)
    }

    @Test func theWorkersSeqCountsUpFromTheReadyMainSent() {
        var h = WorkerControlHarness()
        let first = h.master(.applyConfig, seq: 3, body: .init(config: Self.configuration)).sent
        let second = h.master(.applyConfig, seq: 4).sent
        let heartbeat = h.tick(at: 1).sent
        #expect((first + second + heartbeat).map(\.seq) == [2, 3, 4])
    }

    // MARK: - Heartbeats

    @Test func noHeartbeatBeforeTheFirstSecond() {
        var h = WorkerControlHarness()
        #expect(h.tick(at: 0).isEmpty)
        #expect(h.tick(at: 0.5).isEmpty)
        #expect(h.tick(at: 0.999_999_999).isEmpty)
    }

    @Test func oneHeartbeatPerSecondWithTheCurrentGeneration() {
        var h = WorkerControlHarness(generation: 4)
        var beats: [Double] = []
        for t in stride(from: 0.25, through: 3.5, by: 0.25) where !h.tick(at: t).heartbeats.isEmpty { beats.append(t) }
        #expect(beats == [1, 2, 3])
        #expect(h.tick(at: 4).heartbeats == [ControlMessage(type: .heartbeat, seq: 5, gen: 4)])
    }

    @Test func aLateTickSendsOneHeartbeatAndTheNextIsAFullSecondLater() {
        var h = WorkerControlHarness()
        #expect(h.tick(at: 3.5).heartbeats.count == 1, "missed beats are not caught up")
        #expect(h.tick(at: 4.4).isEmpty)
        #expect(h.tick(at: 4.5).heartbeats.count == 1)
    }

    @Test func aHeartbeatCarriesTheLoadTheShellMeasured() {
        var h = WorkerControlHarness()
        let beat = h.tick(at: 1, load: WorkerLoad(inflight: 3, connections: 5)).heartbeats
        #expect(beat.map(\.body) == [ControlMessage.Body(inflight: 3, connections: 5)])
        #expect(h.tick(at: 2).heartbeats.map(\.body) == [ControlMessage.Body()], "unmeasured load is left out")
    }

    @Test func heartbeatsContinueWhileDrainingAndStopWhenTheChannelCloses() {
        var h = WorkerControlHarness()
        _ = h.master(.drain, seq: 2, body: .init(deadlineMs: 5_000), at: 0.5)
        #expect(h.tick(at: 1).heartbeats.count == 1)
        _ = h.handle(.channelClosed, at: 1.5)
        #expect(h.tick(at: 2).isEmpty)
        #expect(h.tick(at: 10).isEmpty)
    }

    // MARK: - drain

    @Test func drainStopsAcceptingRepliesStoppedAcceptingThenDrainedAndExitsZero() {
        var h = WorkerControlHarness(generation: 3)
        #expect(h.master(.drain, seq: 9, gen: 3, body: .init(deadlineMs: 5_000)) == [.drain(deadlineMs: 5_000)])
        #expect(h.state.listening == .closed)
        #expect(h.handle(.listenersClosed) == [.send(ControlMessage(type: .stoppedAccepting, seq: 2, ack: 9, gen: 3))])
        #expect(h.handle(.drainFinished) == [
            .send(ControlMessage(type: .drained, seq: 3, ack: 9, gen: 3)),
            .exit(.success),
        ])
        #expect(h.state.phase == .exited(.success))
    }

    @Test func drainWithoutADeadlineGetsTheOrphanDeadline() {
        var h = WorkerControlHarness()
        #expect(h.master(.drain, seq: 2) == [.drain(deadlineMs: 30_000)])
    }

    @Test func aSecondDrainIsIgnoredAndNotAnswered() {
        var h = WorkerControlHarness()
        _ = h.master(.drain, seq: 2, body: .init(deadlineMs: 5_000))
        #expect(h.master(.drain, seq: 3, body: .init(deadlineMs: 1_000)).isEmpty)
        #expect(h.handle(.drainFinished).sent.map(\.ack) == [2], "only the first drain is answered")
    }

    @Test func nothingHappensAfterTheExit() {
        var h = WorkerControlHarness()
        _ = h.master(.stop, seq: 2)
        #expect(h.master(.applyConfig, seq: 3, body: .init(config: Self.configuration)).isEmpty)
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
        _ = h.master(.drain, seq: 2, body: .init(deadlineMs: 5_000))
        #expect(h.handle(.channelClosed).isEmpty)
        #expect(h.state.phase == .draining(ack: 2))
    }

    @Test func aProtocolErrorIsLoggedAndClosesTheChannelWhichThenDrains() {
        var h = WorkerControlHarness()
        #expect(h.handle(.protocolError("frame too large")) == [.log(.protocolError("frame too large")), .closeChannel])
        #expect(h.handle(.channelClosed) == [.log(.masterGone), .drain(deadlineMs: 30_000)])
    }

    // MARK: - stop, standby, the rest

    @Test func stopExitsZeroAtOnceEvenWhileDraining() {
        var serving = WorkerControlHarness()
        #expect(serving.master(.stop, seq: 2) == [.exit(.success)])

        var draining = WorkerControlHarness()
        _ = draining.master(.drain, seq: 2)
        #expect(draining.master(.stop, seq: 3) == [.exit(.success)])
    }

    @Test func aStandbyWorkerDoesNotAcceptUntilStartAccepting() {
        var h = WorkerControlHarness(standby: true)
        #expect(h.state.listening == .standby)
        _ = h.master(.applyConfig, seq: 2, body: .init(config: Self.configuration))
        #expect(h.state.listening == .standby, "a configuration is not the word to accept")

        #expect(h.master(.startAccepting, seq: 3) == [.startAccepting])
        #expect(h.state.listening == .starting)
        #expect(h.master(.startAccepting, seq: 4).isEmpty, "the sockets are adopted once")
        #expect(h.handle(.listenerAdopted).isEmpty)
        #expect(h.state.listening == .accepting)
    }

    @Test func startAcceptingIsIgnoredByAnAcceptingOrDrainedWorker() {
        var accepting = WorkerControlHarness()
        #expect(accepting.master(.startAccepting, seq: 2).isEmpty)

        var drained = WorkerControlHarness(standby: true)
        _ = drained.master(.drain, seq: 2)
        #expect(drained.master(.startAccepting, seq: 3).isEmpty, "a drained worker never reopens its listeners")
    }

    @Test func failingToAdoptTheListenersExitsWithFailure() {
        var h = WorkerControlHarness(standby: true)
        _ = h.master(.startAccepting, seq: 2)
        #expect(h.handle(.listenerAdoptionFailed("EBADF")) == [.log(.startAcceptingFailed("EBADF")), .exit(.failure)])
    }

    @Test(arguments: [ControlMessage.Kind.hello, .ready, .configApplied, .configRejected, .heartbeat, .drained,
                      .stoppedAccepting])
    func aWorkerBoundKindFromTheMasterIsLoggedAndIgnored(kind: ControlMessage.Kind) {
        var h = WorkerControlHarness()
        #expect(h.master(kind, seq: 2) == [.log(.unexpectedMessage(kind))])
        #expect(h.state.phase == .serving)
        #expect(h.state.sequence == 1, "nothing was sent")
    }

    @Test func reopenLogsNeedsNothing() {
        var h = WorkerControlHarness()
        #expect(h.master(.reopenLogs, seq: 2).isEmpty)
    }
}
