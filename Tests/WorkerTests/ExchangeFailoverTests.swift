import Common
import NIOCore
import Testing
@testable import FluxgateWorker

/// `ExchangeState`'s failover decisions with explicit instants (docs/routing-and-forwarding.md
/// "Retries and failover"): which failures move on, only before a response head, only while the
/// body can be sent whole again.
@Suite struct ExchangeFailoverTests {
    static let t0 = NIODeadline.uptimeNanoseconds(5_000_000_000)
    static func at(ms: Int64) -> NIODeadline { t0 + .milliseconds(ms) }
    static let refused = UpstreamErrorCause(layer: .connect, reason: "connection refused")

    static func state(
        tries: Int = 2, on: Configuration.RetryConditions = .init(), replayBufferBytes: Int = 1024, attemptTimeoutMs: Int64 = 1_000
    ) -> ExchangeState {
        var settings = ExchangeState.Settings(
            requestTimeout: .seconds(60), attemptTimeout: .milliseconds(attemptTimeoutMs),
            streamIdleTimeout: .seconds(60), replayBufferBytes: replayBufferBytes, idempotent: false)
        settings.maxTries = tries
        settings.retryOn = RetryRules(on)
        return ExchangeState(settings: settings, now: t0)
    }

    @Test func aRefusedConnectionMovesOnThenTheLastOneFails() {
        var state = Self.state()
        #expect(state.leaseFailed(Self.refused, error: .upstreamUnreachable, now: Self.at(ms: 1)) == .tryNext(.connect, Self.refused))
        #expect(state.tries == 2)
        #expect(
            state.leaseFailed(Self.refused, error: .upstreamUnreachable, now: Self.at(ms: 2)) == .fail(.upstreamUnreachable, Self.refused))
    }

    @Test func aListedStatusMovesOnButTheLastTrysIsRelayed() {
        var state = Self.state()
        _ = state.leased(active: true, reused: false, now: Self.t0)
        #expect(state.responseHead(status: 429, keepAlive: true, now: Self.at(ms: 3)) == .tryNext)
        #expect(!state.responseStarted)
        _ = state.leased(active: true, reused: false, now: Self.at(ms: 4))
        #expect(state.responseHead(status: 503, keepAlive: true, now: Self.at(ms: 5)) == .relay)
        #expect(state.responseStarted)
    }

    @Test func clientErrorsAndUnlistedStatusesAreRelayedAtOnce() {
        for status: UInt in [400, 401, 403, 404, 413, 422, 500, 200] {
            var state = Self.state(tries: 3)
            _ = state.leased(active: true, reused: false, now: Self.t0)
            #expect(state.responseHead(status: status, keepAlive: true, now: Self.at(ms: 1)) == .relay)
            #expect(state.tries == 1)
        }
    }

    @Test func resetAndTimeoutMoveOnOnlyWhenListed() {
        var plain = Self.state()
        _ = plain.leased(active: true, reused: false, now: Self.t0)
        guard case .fail(.upstreamFailed?, _)? = plain.connectionClosed(bodyEndsAtClose: false, now: Self.at(ms: 1)) else {
            Issue.record("a reset is not retried by default")
            return
        }
        var listed = Self.state(on: .init(connect: true, timeout: true, reset: true))
        _ = listed.leased(active: true, reused: false, now: Self.t0)
        guard case .tryNext(.reset, _)? = listed.connectionClosed(bodyEndsAtClose: false, now: Self.at(ms: 1)) else {
            Issue.record("a listed reset moves on")
            return
        }
        _ = listed.leased(active: true, reused: false, now: Self.at(ms: 2))
        // attempt_timeout_ms from the second try's start (when the first failed), not the first's.
        #expect(listed.deadline == Self.at(ms: 1_001))
        guard case .fail(.upstreamTimeout?, _) = listed.deadlinePassed(now: Self.at(ms: 1_001)) else {
            Issue.record("the last try's timeout is the proxy's 504")
            return
        }
    }

    @Test func aHangingTryTimesOutToTheNextTarget() {
        var state = Self.state(on: .init(connect: true, timeout: true))
        _ = state.leased(active: true, reused: false, now: Self.t0)
        guard case .tryNext(.timeout, _) = state.deadlinePassed(now: Self.at(ms: 1_000)) else {
            Issue.record("expected the next target")
            return
        }
        #expect(state.attempts == 2)
    }

    @Test func aBodyLongerThanTheReplayBufferIsNotSentTwice() {
        var state = Self.state(replayBufferBytes: 100)
        _ = state.leased(active: true, reused: false, now: Self.t0)
        state.bodySent(bytes: 60)
        #expect(state.keepsReplayCopy)
        state.bodySent(bytes: 60)
        #expect(!state.keepsReplayCopy)
        #expect(state.responseHead(status: 503, keepAlive: true, now: Self.at(ms: 1)) == .relay)
    }

    @Test func aBodyNotYetSentMovesOnWhateverItsSize() {
        var state = Self.state(replayBufferBytes: 0)
        _ = state.leased(active: true, reused: false, now: Self.t0)
        #expect(state.responseHead(status: 503, keepAlive: true, now: Self.at(ms: 1)) == .tryNext)
    }

    @Test func nothingMovesOnAfterTheResponseStarted() {
        var state = Self.state(on: .init(connect: true, timeout: true, reset: true))
        _ = state.leased(active: true, reused: false, now: Self.t0)
        state.responseHead(status: 200, keepAlive: true, now: Self.at(ms: 1))
        let cut = state.connectionClosed(bodyEndsAtClose: false, now: Self.at(ms: 2))
        #expect(cut == .fail(nil, UpstreamErrorCause(layer: .truncated, reason: "the upstream closed the connection mid-response")))
    }

    @Test func retryRulesHoldEveryListedStatusAndNoOther() {
        let rules = RetryRules(.init(statuses: [429, 500, 563, 599]))
        #expect([429, 500, 563, 599].allSatisfy { rules.retries(status: $0) })
        #expect(![400, 404, 428, 502, 600, 200].contains { rules.retries(status: $0) })
        #expect(RetryRules().retries(status: 503) && !RetryRules().retries(status: 500))
    }

    @Test func oneTryMeansNoFailover() {
        var state = Self.state(tries: 1)
        #expect(
            state.leaseFailed(Self.refused, error: .upstreamUnreachable, now: Self.at(ms: 1)) == .fail(.upstreamUnreachable, Self.refused))
    }
}
