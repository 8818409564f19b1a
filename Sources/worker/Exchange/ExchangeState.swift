import Common
import NIOCore

/// The rules of one forwarded request, as a value: attempts, replay, deadlines and whether the
/// upstream connection may be reused. Events and instants in, decisions out; `ProxyExchange` is
/// the shell that leases connections, moves bytes and performs the decisions. Tested with
/// explicit instants in `ExchangeStateTests`.
///
/// An exchange is a sequence of **attempts**, each on one upstream connection. Today a second
/// attempt is made in two cases only, both before any response byte: the connection taken from
/// the pool turned out closed before a byte was written on it (any method), or a reused
/// connection closed before answering, which most likely means the upstream closed it while idle
/// just as the request went out (replayed for idempotent methods only, RFC 9110 §9.2.2, as nginx
/// and Go's transport do: a POST to an LLM is never sent twice). Each attempt records why it
/// ended.
///
/// **Failover** (docs/routing-and-forwarding.md "Retries and failover"): when the upstream allows
/// more than one try (`maxTries`), a try that fails by `retryOn` (no connection, a reset or a
/// timeout before the response head, a listed status) ends in `tryNext`, and the shell sends the
/// request again to the next target. Only before any response byte reached the client, and only
/// while the request body can be sent whole again (no body byte sent yet, or every byte sent
/// still in the replay copy).
struct ExchangeState {
    struct Settings: Equatable {
        /// From the start to the upstream's response head, all attempts together.
        var requestTimeout: TimeAmount
        /// From an attempt's start to its response head.
        var attemptTimeout: TimeAmount
        /// The longest gap between response bytes once the head arrived.
        var streamIdleTimeout: TimeAmount
        /// Request bytes kept for a replay, at most.
        var replayBufferBytes: Int
        /// The request's method may be sent twice (RFC 9110 §9.2.2).
        var idempotent: Bool
        /// Tries on targets in all (`retry.attempts`); 1 = no failover.
        var maxTries = 1
        /// What fails a try (`retry.on`), read only when `maxTries` > 1.
        var retryOn = RetryRules()
    }

    /// Why a try failed and another follows (the attempt counts for `fluxgate_upstream_attempts_total`).
    enum TryFailure: Equatable {
        case connect, timeout, reset
        case status(UInt)
    }

    /// What a response head means.
    enum HeadDecision: Equatable {
        /// Relay it: this try answers the request.
        case relay
        /// Drop it (never relayed) and send the request to the next target.
        case tryNext
    }

    /// Why an attempt ended.
    enum AttemptEnd: Equatable {
        /// The upstream's response head arrived: this attempt answers the request.
        case responded
        /// The pooled connection was closed before anything was written on it.
        case staleConnection
        /// A reused connection closed before any response byte (replayed when possible).
        case closedBeforeResponse
        /// No connection could be made (refused, DNS, TLS handshake, connect timeout); the cause
        /// goes to the request's facts. (No payload: an attempt stays a plain value that copies
        /// without reference counting.)
        case connectFailed
        /// No response head before the deadline.
        case timedOut
        /// The connection failed or closed before the response head (not replayable).
        case failedBeforeResponse
        /// The client went away first.
        case cancelled
        /// It failed by `retry.on`; the next try goes to another target.
        case failedOver(TryFailure)
    }

    struct Attempt: Equatable {
        var number: Int
        var startedAt: NIODeadline
        /// The connection came from the pool (it carried a request before).
        var reusedConnection = false
        var end: AttemptEnd?
    }

    enum Phase: Equatable {
        /// Waiting for a connection for the current attempt.
        case leasing
        /// Connected: the request is going out, the response head is awaited.
        case awaitingHead
        /// The response head arrived: the body is relayed.
        case relaying
        case done
    }

    /// What to do with the connection a lease produced.
    enum LeaseDecision: Equatable {
        /// Send the request on it; keep a copy of what is sent for a replay when `keepReplayCopy`.
        case send(keepReplayCopy: Bool)
        /// It is already closed and nothing was written: give it back (not reusable) and lease a
        /// fresh one.
        case leaseFresh
        /// The exchange ended meanwhile: give it back, reusable (nothing was written on it).
        case giveBack
    }

    /// What the upstream connection closing means.
    enum CloseDecision: Equatable {
        /// The body was delimited by the close: the response is complete.
        case complete
        /// Send the request again on a fresh connection (the copy kept for it).
        case replay
        /// The try failed (by `retry.on`): send the request again, to the next target.
        case tryNext(TryFailure, UpstreamErrorCause)
        /// The exchange failed: with this error for the client when nothing was sent to it yet,
        /// else (nil) the client connection is cut.
        case fail(ProxyErrorResponse?, UpstreamErrorCause)
    }

    /// What the deadline passing means.
    enum Expiry: Equatable {
        case fail(ProxyErrorResponse?, UpstreamErrorCause)
        /// The try's `attempt_timeout_ms` passed: the next target.
        case tryNext(TryFailure, UpstreamErrorCause)
        /// Not yet: bytes arrived since; the timer is set again to `deadline`.
        case rearm(NIODeadline)
        case none
    }

    let settings: Settings
    private(set) var phase = Phase.leasing
    private(set) var current: Attempt
    /// The attempts before the current one, oldest first (empty for nearly every request).
    private(set) var earlierAttempts: [Attempt] = []
    /// A copy of the request is kept for a replay (see `LeaseDecision.send`).
    private(set) var keepsReplayCopy = false
    private var replayBytes = 0
    /// Body bytes written on the current attempt's connection.
    private var bodyBytesSent = 0
    /// Tries on targets made (this one included); attempts also count fresh connections.
    private(set) var tries = 1
    private(set) var requestEndReceived = false
    private(set) var requestEndSent = false
    private(set) var upstreamKeepAlive = true
    /// An error was reported on the connection: nothing after it is believed.
    private(set) var upstreamErrored = false
    /// The whole exchange's deadline for the response head.
    let headDeadline: NIODeadline
    private var lastResponseActivity: NIODeadline

    init(settings: Settings, now: NIODeadline) {
        self.settings = settings
        self.current = Attempt(number: 1, startedAt: now)
        self.headDeadline = now + settings.requestTimeout
        self.lastResponseActivity = now
    }

    var attempts: Int { current.number }
    var responseStarted: Bool { phase == .relaying }
    var isDone: Bool { phase == .done }

    /// The deadline the exchange's timer must run to now.
    var deadline: NIODeadline? {
        switch phase {
        case .leasing, .awaitingHead: return min(headDeadline, current.startedAt + settings.attemptTimeout)
        case .relaying: return lastResponseActivity + settings.streamIdleTimeout
        case .done: return nil
        }
    }

    // MARK: Connections

    /// The lease gave a connection: `active` false when it is already closed, `reused` when it
    /// comes from the pool. (`now` is read only when another attempt starts.)
    mutating func leased(active: Bool, reused: Bool, now: @autoclosure () -> NIODeadline) -> LeaseDecision {
        guard phase == .leasing else { return .giveBack }
        // One stale pooled connection is retried, any method: nothing was written on it.
        if !active && current.number == 1 {
            nextAttempt(ending: .staleConnection, now: now())
            return .leaseFresh
        }
        phase = .awaitingHead
        current.reusedConnection = reused
        // Once bytes are written the upstream may have acted on them, so a replay is only for
        // idempotent methods. Idle closes are seen before reuse (the pool keeps a read pending
        // on idle connections), which leaves only a microsecond race for a POST to lose to.
        keepsReplayCopy = (reused && current.number == 1 && settings.idempotent) || tries < settings.maxTries
        replayBytes = 0
        bodyBytesSent = 0
        requestEndSent = false
        return .send(keepReplayCopy: keepsReplayCopy)
    }

    /// No connection could be made for the current attempt.
    mutating func leaseFailed(_ cause: UpstreamErrorCause, error: ProxyErrorResponse, now: NIODeadline) -> CloseDecision? {
        guard phase == .leasing else { return nil }
        if let next = tryNext(.connect, cause, now: now) { return next }
        current.end = .connectFailed
        phase = .done
        return .fail(error, cause)
    }

    // MARK: The request

    /// Body bytes went out on the current connection; false when the copy for a replay is
    /// dropped (too large to keep).
    mutating func bodySent(bytes: Int) {
        bodyBytesSent &+= bytes
        guard keepsReplayCopy else { return }
        replayBytes += bytes
        if replayBytes > settings.replayBufferBytes { keepsReplayCopy = false }
    }

    mutating func clientEnded() { requestEndReceived = true }
    mutating func endSent() { requestEndSent = true }

    // MARK: The response

    /// The final response head arrived; `tryNext` when its status fails the try and another may
    /// follow (the head is then never relayed).
    @discardableResult
    mutating func responseHead(status: UInt, keepAlive: Bool, now: NIODeadline) -> HeadDecision {
        guard phase == .awaitingHead else { return .relay }
        if tries < settings.maxTries, settings.retryOn.retries(status: status), mayTryNext(now: now) {
            startNextTry(ending: .status(status), now: now)
            return .tryNext
        }
        phase = .relaying
        current.end = .responded
        keepsReplayCopy = false
        upstreamKeepAlive = keepAlive
        lastResponseActivity = now
        return .relay
    }

    mutating func responseBytes(now: NIODeadline) { lastResponseActivity = now }

    /// The response ended; whether its connection can carry another request (only if the
    /// upstream saw our whole request too, and keeps the connection).
    mutating func responseEnded(clean: Bool) -> Bool {
        phase = .done
        return clean && upstreamKeepAlive && requestEndSent
    }

    mutating func errorReported() { upstreamErrored = true }

    /// The upstream connection closed. `bodyEndsAtClose`: the response's body is delimited by
    /// the close (and the reader accepted it as complete).
    mutating func connectionClosed(bodyEndsAtClose: Bool, now: NIODeadline) -> CloseDecision? {
        switch phase {
        case .leasing, .done:
            return nil
        case .relaying:
            phase = .done
            if bodyEndsAtClose && !upstreamErrored { return .complete }
            // Never passed off as complete (docs/routing-and-forwarding.md "Truncated responses").
            return .fail(nil, UpstreamErrorCause(layer: .truncated, reason: "the upstream closed the connection mid-response"))
        case .awaitingHead:
            if current.reusedConnection, current.number == 1, keepsReplayCopy, settings.idempotent {
                // It most likely closed the kept-alive connection while it was idle, before our
                // request arrived.
                nextAttempt(ending: .closedBeforeResponse, now: now)
                return .replay
            }
            let cause = UpstreamErrorCause(layer: .reset, reason: "the upstream closed the connection before responding")
            if let next = tryNext(.reset, cause, now: now) { return next }
            current.end = .failedBeforeResponse
            phase = .done
            return .fail(.upstreamFailed, UpstreamErrorCause(layer: .reset, reason: "the upstream closed the connection before responding"))
        }
    }

    /// The response could not be read (a malformed head, bytes past its end…).
    mutating func protocolError(_ reason: String) -> CloseDecision? {
        guard phase == .awaitingHead || phase == .relaying else { return nil }
        let started = phase == .relaying
        if !started { current.end = .failedBeforeResponse }
        phase = .done
        upstreamErrored = true
        return .fail(started ? nil : .upstreamFailed, UpstreamErrorCause(layer: .protocol, reason: reason))
    }

    // MARK: Deadlines and the client

    /// The timer fired at `now`.
    mutating func deadlinePassed(now: NIODeadline) -> Expiry {
        guard let deadline else { return .none }
        guard deadline <= now else { return .rearm(deadline) }
        switch phase {
        case .leasing, .awaitingHead:
            if now < headDeadline {
                // This try's attempt_timeout_ms passed, not the request's: a connection that is
                // still being made is a connect failure (nothing left), a silent upstream a timeout.
                let failure: TryFailure = phase == .leasing ? .connect : .timeout
                let cause = UpstreamErrorCause(layer: .timeout, reason: "no response head within attempt_timeout_ms")
                if case .tryNext(let failure, let cause)? = tryNext(failure, cause, now: now) { return .tryNext(failure, cause) }
            }
            current.end = .timedOut
            phase = .done
            return .fail(.upstreamTimeout, UpstreamErrorCause(layer: .timeout, reason: "no response head in time"))
        case .relaying:
            phase = .done
            return .fail(nil, UpstreamErrorCause(layer: .timeout, reason: "no response bytes within stream_idle_timeout_ms"))
        case .done:
            return .none
        }
    }

    /// The client went away: the exchange ends, its connection is not reused.
    mutating func clientClosed() {
        if current.end == nil { current.end = .cancelled }
        phase = .done
    }

    // MARK: Failover

    /// Another try may follow: tries are left, the request deadline has not passed, and the body
    /// can be sent whole again.
    private func mayTryNext(now: NIODeadline) -> Bool {
        tries < settings.maxTries && now < headDeadline && (bodyBytesSent == 0 || keepsReplayCopy)
    }

    /// `tryNext` when `failure` is in `retry.on` and another try may follow.
    private mutating func tryNext(_ failure: TryFailure, _ cause: UpstreamErrorCause, now: NIODeadline) -> CloseDecision? {
        guard settings.maxTries > 1 else { return nil }
        let listed: Bool
        switch failure {
        case .connect: listed = settings.retryOn.connect
        case .timeout: listed = settings.retryOn.timeout
        case .reset: listed = settings.retryOn.reset
        case .status: listed = true
        }
        guard listed, mayTryNext(now: now) else { return nil }
        startNextTry(ending: failure, now: now)
        return .tryNext(failure, cause)
    }

    private mutating func startNextTry(ending failure: TryFailure, now: NIODeadline) {
        let keep = keepsReplayCopy
        nextAttempt(ending: .failedOver(failure), now: now)
        tries += 1
        // The copy is what the next try sends; it is kept again while tries remain.
        keepsReplayCopy = keep
    }

    private mutating func nextAttempt(ending end: AttemptEnd, now: NIODeadline) {
        current.end = end
        earlierAttempts.append(current)
        current = Attempt(number: current.number + 1, startedAt: now)
        phase = .leasing
        keepsReplayCopy = false
    }
}
