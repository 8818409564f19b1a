import NIOCore
import Testing
@testable import FluxgateWorker

/// `ExchangeState` as a value, with explicit instants: attempts, replay, deadlines and reuse of
/// the upstream connection. No socket, no sleep.
@Suite struct ExchangeStateTests {
    static let t0 = NIODeadline.uptimeNanoseconds(5_000_000_000)
    static func at(ms: Int64) -> NIODeadline { t0 + .milliseconds(ms) }

    static func settings(
        idempotent: Bool, attemptTimeoutMs: Int64 = 600_000, replayBufferBytes: Int = 64 * 1024
    )
        -> ExchangeState.Settings
    {
        .init(
            requestTimeout: .seconds(600), attemptTimeout: .milliseconds(attemptTimeoutMs),
            streamIdleTimeout: .seconds(60), replayBufferBytes: replayBufferBytes, idempotent: idempotent)
    }

    @Test func aCleanExchangeOnAPooledConnectionGivesItBack() {
        var state = ExchangeState(settings: Self.settings(idempotent: false), now: Self.t0)
        let r1 = state.leased(active: true, reused: true, now: Self.t0)
        #expect(r1 == .send(keepReplayCopy: false))
        state.clientEnded()
        state.endSent()
        state.responseHead(status: 200, keepAlive: true, now: Self.at(ms: 40))
        #expect(state.responseStarted)
        let r2 = state.responseEnded(clean: true)
        #expect(r2)
        #expect(state.attempts == 1)
        #expect(state.current.end == .responded)
    }

    @Test func anUpstreamThatClosedAnIdlePooledConnectionGetsTheRequestAgainOnAFreshOne() {
        var state = ExchangeState(settings: Self.settings(idempotent: true), now: Self.t0)
        let r3 = state.leased(active: true, reused: true, now: Self.t0)
        #expect(r3 == .send(keepReplayCopy: true))
        state.bodySent(bytes: 100)
        state.endSent()
        // The upstream closes it before answering: attempt 2, on a fresh connection.
        let r4 = state.connectionClosed(bodyEndsAtClose: false, now: Self.at(ms: 1))
        #expect(r4 == .replay)
        #expect(state.attempts == 2)
        #expect(state.earlierAttempts.map(\.end) == [.closedBeforeResponse])
        #expect(state.phase == .leasing)
        let r5 = state.leased(active: true, reused: false, now: Self.at(ms: 2))
        #expect(r5 == .send(keepReplayCopy: false))
        state.endSent()
        state.responseHead(status: 200, keepAlive: true, now: Self.at(ms: 30))
        let r6 = state.responseEnded(clean: true)
        #expect(r6)
    }

    @Test func aPOSTIsNeverSentTwice() {
        var state = ExchangeState(settings: Self.settings(idempotent: false), now: Self.t0)
        _ = state.leased(active: true, reused: true, now: Self.t0)
        state.endSent()
        let r7 = state.connectionClosed(bodyEndsAtClose: false, now: Self.at(ms: 1))
        #expect(
            r7
                == .fail(.upstreamFailed, UpstreamErrorCause(layer: .reset, reason: "the upstream closed the connection before responding"))
        )
        #expect(state.attempts == 1)
        #expect(state.current.end == .failedBeforeResponse)
    }

    @Test func aBodyLargerThanTheReplayBufferIsNotReplayed() {
        var state = ExchangeState(settings: Self.settings(idempotent: true, replayBufferBytes: 1000), now: Self.t0)
        let r8 = state.leased(active: true, reused: true, now: Self.t0)
        #expect(r8 == .send(keepReplayCopy: true))
        state.bodySent(bytes: 600)
        #expect(state.keepsReplayCopy)
        state.bodySent(bytes: 600)
        #expect(!state.keepsReplayCopy)
        let r9 = state.connectionClosed(bodyEndsAtClose: false, now: Self.at(ms: 1))
        guard case .fail(.upstreamFailed, _) = r9 else {
            Issue.record("expected a 502")
            return
        }
    }

    @Test func aStalePooledConnectionIsSwappedForAFreshOneForAnyMethod() {
        var state = ExchangeState(settings: Self.settings(idempotent: false), now: Self.t0)
        let r10 = state.leased(active: false, reused: true, now: Self.t0)
        #expect(r10 == .leaseFresh)
        #expect(state.earlierAttempts.map(\.end) == [.staleConnection])
        let r11 = state.leased(active: true, reused: false, now: Self.at(ms: 1))
        #expect(r11 == .send(keepReplayCopy: false))
    }

    @Test func aConnectFailureIsA502WithItsCause() {
        var state = ExchangeState(settings: Self.settings(idempotent: true), now: Self.t0)
        let cause = UpstreamErrorCause(layer: .connect, reason: "connection refused")
        let r12 = state.leaseFailed(cause, error: .upstreamUnreachable, now: Self.t0)
        #expect(r12 == .fail(.upstreamUnreachable, cause))
        #expect(state.isDone)
        #expect(state.current.end == .connectFailed)
        // A connection that arrives after the exchange ended goes back clean.
        let r13 = state.leased(active: true, reused: false, now: Self.at(ms: 1))
        #expect(r13 == .giveBack)
    }

    @Test func theResponseHeadDeadlineThenTheStreamIdleGap() {
        var state = ExchangeState(settings: Self.settings(idempotent: false), now: Self.t0)
        #expect(state.deadline == Self.t0 + .seconds(600))
        _ = state.leased(active: true, reused: false, now: Self.at(ms: 1))
        let r14 = state.deadlinePassed(now: Self.at(ms: 1000))
        #expect(r14 == .rearm(Self.t0 + .seconds(600)))
        state.responseHead(status: 200, keepAlive: true, now: Self.at(ms: 2000))
        #expect(state.deadline == Self.at(ms: 2000) + .seconds(60))
        // Bytes keep arriving: the idle timer fires early and is set again.
        state.responseBytes(now: Self.at(ms: 50_000))
        let r15 = state.deadlinePassed(now: Self.at(ms: 62_000))
        #expect(r15 == .rearm(Self.at(ms: 110_000)))
        // Then nothing for a whole gap: the client connection is cut (the head was sent).
        let r16 = state.deadlinePassed(now: Self.at(ms: 110_000))
        guard case .fail(nil, let cause) = r16 else {
            Issue.record("expected a cut")
            return
        }
        #expect(cause.layer == .timeout)
    }

    @Test func noResponseHeadInTimeIsA504() {
        var state = ExchangeState(settings: Self.settings(idempotent: false, attemptTimeoutMs: 3000), now: Self.t0)
        _ = state.leased(active: true, reused: false, now: Self.t0)
        // The attempt's own timeout is shorter than the request's.
        #expect(state.deadline == Self.at(ms: 3000))
        let r17 = state.deadlinePassed(now: Self.at(ms: 3000))
        guard case .fail(.upstreamTimeout, _) = r17 else {
            Issue.record("expected a 504")
            return
        }
        #expect(state.current.end == .timedOut)
    }

    @Test func aClientThatClosesMidBodyEndsTheExchangeWithoutReuse() {
        var state = ExchangeState(settings: Self.settings(idempotent: false), now: Self.t0)
        _ = state.leased(active: true, reused: true, now: Self.t0)
        state.bodySent(bytes: 10)
        state.clientClosed()
        #expect(state.isDone)
        #expect(state.current.end == .cancelled)
        let r18 = state.connectionClosed(bodyEndsAtClose: false, now: Self.at(ms: 1))
        #expect(r18 == nil)
    }

    @Test func aResponseCutMidBodyIsNeverComplete() {
        var state = ExchangeState(settings: Self.settings(idempotent: true), now: Self.t0)
        _ = state.leased(active: true, reused: false, now: Self.t0)
        state.endSent()
        state.responseHead(status: 200, keepAlive: true, now: Self.at(ms: 5))
        let r19 = state.connectionClosed(bodyEndsAtClose: false, now: Self.at(ms: 9))
        guard case .fail(nil, _) = r19 else {
            Issue.record("expected a cut")
            return
        }
        // A body delimited by the close ends cleanly, unless an error was reported just before.
        var closing = ExchangeState(settings: Self.settings(idempotent: true), now: Self.t0)
        _ = closing.leased(active: true, reused: false, now: Self.t0)
        closing.responseHead(status: 200, keepAlive: false, now: Self.at(ms: 5))
        let r20 = closing.connectionClosed(bodyEndsAtClose: true, now: Self.at(ms: 9))
        #expect(r20 == .complete)
        var truncated = ExchangeState(settings: Self.settings(idempotent: true), now: Self.t0)
        _ = truncated.leased(active: true, reused: false, now: Self.t0)
        truncated.responseHead(status: 200, keepAlive: false, now: Self.at(ms: 5))
        truncated.errorReported()
        let r21 = truncated.connectionClosed(bodyEndsAtClose: true, now: Self.at(ms: 9))
        guard case .fail(nil, _) = r21 else {
            Issue.record("expected a cut")
            return
        }
    }

    @Test func aConnectionIsReusedOnlyIfTheUpstreamSawTheWholeRequest() {
        var state = ExchangeState(settings: Self.settings(idempotent: false), now: Self.t0)
        _ = state.leased(active: true, reused: false, now: Self.t0)
        state.responseHead(status: 200, keepAlive: true, now: Self.at(ms: 5))
        // The upstream answered early, before the request's end went out.
        let r22 = state.responseEnded(clean: true)
        #expect(!r22)
    }
}
