import NIOCore

/// The rules of one client connection, as a value: events and instants in, decisions out, no I/O
/// and no clock (the house style of `SupervisorState`; NIO's `HTTPServerPipelineHandler` keeps a
/// private `ConnectionState` for the same reason). `ClientConnectionHandler` is the shell that
/// feeds it what the socket, the parser, the pipeline and the exchange report, and performs what
/// it answers. Tested with explicit instants in `ConnectionStateTests`.
///
/// What it decides:
/// * **Pipelining**: a request's parts are handled only once every earlier response has ended;
///   parts that arrive sooner (or while a pipeline stage waits for an answer) are queued, in
///   order, and reading stops while any are queued (`readRequested`).
/// * **Keep-alive and close**: the connection closes after a response when the request asked
///   (`Connection: close`, HTTP/1.0 without keep-alive), when it cannot carry another request
///   (an upgrade, a malformed request), or when the worker drains; the response's head says so
///   when it still can.
/// * **Its own deadline** (`deadline`): the header timeout from acceptance and from a request's
///   first byte, the keep-alive timeout between requests, the body discard time after a response
///   that did not wait for the request's body, the drain grace of an idle connection. During a
///   request `deadline` is nil: the exchange's deadlines run on the same timer.
/// * **Reads** (`readRequested`, `resumeReads`): held while parts are queued or the exchange
///   cannot take more body; one held read is re-issued when that changes.
struct ConnectionState {
    struct Timeouts: Sendable, Equatable {
        var header: TimeAmount
        var keepAlive: TimeAmount
        var bodyDiscard: TimeAmount
        /// How long an idle keep-alive connection of a draining worker may still start a request.
        var drainIdleGrace: TimeAmount
    }

    enum Phase: Equatable {
        /// Waiting for the first byte of the next request: the keep-alive timeout runs (or the
        /// header timeout, from acceptance, or the drain grace).
        case idle
        /// Bytes of a request head have arrived, not the whole head: the header timeout runs.
        case readingHead
        /// From a complete head until the response has ended and the request has been read:
        /// the exchange's deadlines run (request timeout, idle gap between response chunks).
        case inRequest
        /// The response has ended before the request body did; the rest of the body is read and
        /// dropped until the body discard time.
        case discardingBody
        /// The last response is complete and the connection closes once it is written: nothing
        /// more is read or handled.
        case closing
    }

    /// What follows the end of a response.
    enum AfterResponse: Equatable {
        /// Flush, resume reading, hand on the next queued request.
        case keepAlive
        /// Flush, then close: the head said `connection: close` (or the connection cannot go on).
        case closeWhenFlushed
        /// The drain began after this response's head went out, so the client was not told and
        /// may already be sending its next request: serve one more (its head will say
        /// `connection: close`), or close when the drain grace passes with none.
        case serveOneMoreThenClose
    }

    /// What the connection's deadline passing means.
    enum Expiry: Equatable {
        /// Keep-alive, header, body discard or drain grace: close without a response (nginx does
        /// the same).
        case close
        /// The exchange's deadline (it set the shared timer): the exchange decides.
        case exchange
    }

    let timeouts: Timeouts
    private(set) var phase = Phase.idle
    /// When the connection's own deadline passes; nil during a request (see the type's comment).
    private(set) var deadline: NIODeadline?
    /// From a request's head until both it and its response have ended.
    private(set) var requestInProgress = false
    /// The current request has been received whole; its response has not ended yet.
    private(set) var awaitingResponse = false
    /// A pipeline stage is waiting for an answer: the request's later parts are queued.
    private(set) var holding = false
    /// The response to the current request is complete (or was refused before any exchange):
    /// request parts are dropped until its `.end`.
    private(set) var discardingRequest = false
    private(set) var quiescing = false
    /// The connection closes after the current response.
    private(set) var closeAfterResponse = false
    /// The current response's head said `connection: close`.
    private(set) var closeAnnounced = false
    private var readPending = false
    /// A stage began to wait and no read was held since: the next one goes on (see `hold`).
    private var readWhileHolding = false
    /// Parts that arrived while earlier ones wait (pipelined requests, or the parts after a head
    /// whose stage waits), oldest first.
    private var queue = FIFO<RequestEvent>()

    /// A connection accepted at `now`: the client has the header timeout to send a complete head.
    init(timeouts: Timeouts, acceptedAt now: NIODeadline) {
        self.timeouts = timeouts
        self.deadline = now + timeouts.header
    }

    var hasQueued: Bool { !queue.isEmpty }

    // MARK: Bytes and parts

    /// A read delivered bytes. Returns true when `deadline` changed (the first byte of a request:
    /// the header timeout runs from here).
    mutating func bytesArrived(now: NIODeadline) -> Bool {
        guard case .idle = phase else { return false }
        phase = .readingHead
        deadline = now + timeouts.header
        return true
    }

    /// A part the parser produces now is to be handled at once (nothing earlier is unfinished
    /// and the connection is not closing): what `received` answers true for, asked without the
    /// part (the shell then takes a head out of the parser only when it must be queued).
    var handlesNow: Bool {
        if case .closing = phase { return false }
        return !awaitingResponse && !holding && !hasQueued
    }

    /// A part the parser produced: true when it is to be handled now, false when it was queued
    /// behind an unfinished response or a waiting stage (or dropped: the connection is closing).
    /// (A Bool, not the part handed back: passing a head through would copy it.)
    mutating func received(_ event: RequestEvent) -> Bool {
        if case .closing = phase { return false }
        if handlesNow { return true }
        queue.append(event)
        return false
    }

    /// The next queued part to handle now, if nothing has to be waited for any more.
    mutating func nextQueued() -> RequestEvent? {
        guard hasQueued, !awaitingResponse, !holding, phase != .closing else { return nil }
        return queue.popFirst()
    }

    // MARK: The request

    /// A request's head is complete: its checks run and the exchange's deadlines take over.
    mutating func requestStarted(keepAlive: Bool) {
        phase = .inRequest
        deadline = nil
        requestInProgress = true
        closeAfterResponse = !keepAlive || quiescing
        closeAnnounced = false
        // Until an exchange takes the body, what arrives of it is dropped.
        discardingRequest = true
    }

    /// Bytes that cannot be read as a request (they start a new one when none is in progress):
    /// the proxy's answer closes the connection.
    mutating func malformed() {
        if !requestInProgress {
            phase = .inRequest
            deadline = nil
            requestInProgress = true
            closeAnnounced = false
        }
        closeAfterResponse = true
    }

    /// The request cannot be followed by another on this connection (CONNECT, an upgrade).
    mutating func closeAfterThisResponse() { closeAfterResponse = true }

    /// A stage waits for an answer: hold the request's later parts. One more read still goes on
    /// while they are queued (memory stays bounded by that read, as when a stage collects a
    /// body): holding that read back made NIO take the socket out of epoll and put it back once
    /// the stage answered, two `epoll_ctl`s per request behind a Redis-backed limit, the first
    /// before its check went out.
    mutating func hold() {
        holding = true
        readWhileHolding = true
    }

    /// The stage answered: queued parts may be handled again.
    mutating func release() {
        holding = false
        readWhileHolding = false
    }

    /// An exchange takes the request's body from here on.
    mutating func forwarding() { discardingRequest = false }

    /// The request's `.end` went to an exchange (or to a stage that collected the body): the
    /// response is now awaited.
    mutating func requestReceived() {
        awaitingResponse = true
    }

    /// The request's `.end` arrived with nobody to take it: after a response that ended early
    /// (or a rejection), the request is done too.
    mutating func requestDiscarded(now: NIODeadline) {
        guard discardingRequest else { return }
        discardingRequest = false
        requestFinished(now: now)
    }

    // MARK: The response

    /// The response's head was written; `announcesClose` when it says `connection: close`.
    mutating func responseHeadWritten(announcesClose: Bool) {
        closeAnnounced = announcesClose
    }

    /// The response ended (written, not necessarily flushed). `requestComplete`: the request was
    /// received whole; otherwise its rest is read and dropped for the body discard time.
    mutating func responseEnded(requestComplete: Bool, now: NIODeadline) -> AfterResponse {
        discardingRequest = !requestComplete
        awaitingResponse = false
        holding = false
        readWhileHolding = false
        if requestComplete {
            requestFinished(now: now)
        } else {
            // A client that stops sending the body it announced must not hold the connection.
            phase = .discardingBody
            deadline = now + timeouts.bodyDiscard
        }
        if closeAfterResponse && !closeAnnounced && requestComplete && quiescing {
            closeIfIdle(now: now)
            return .serveOneMoreThenClose
        }
        if closeAfterResponse {
            // The keep-alive (or discard) deadline stays: a client that never reads the last
            // response must not hold the connection for ever.
            phase = .closing
            queue.removeAll()
            return .closeWhenFlushed
        }
        return .keepAlive
    }

    /// Both the request and its response are complete: the connection is idle again.
    private mutating func requestFinished(now: NIODeadline) {
        requestInProgress = false
        phase = .idle
        deadline = now + timeouts.keepAlive
    }

    // MARK: Drain, deadlines, reads

    /// The worker drains: a busy connection closes after its response (which says so if it has
    /// not started); an idle one closes after the drain grace unless a request starts in it (a
    /// keep-alive client under load sends its next one within milliseconds, and closing under it
    /// would fail that request; answered with `connection: close`, it is not).
    mutating func quiesce(now: NIODeadline) {
        quiescing = true
        closeAfterResponse = true
        if !requestInProgress && !hasQueued { closeIfIdle(now: now) }
    }

    private mutating func closeIfIdle(now: NIODeadline) {
        guard case .idle = phase else { return }
        deadline = now + timeouts.drainIdleGrace
    }

    /// The connection's timer fired at `now` (it fires only at or after the deadline it was set
    /// to, see `LazyTimer`).
    func expired() -> Expiry {
        switch phase {
        case .idle, .readingHead, .discardingBody, .closing: return .close
        case .inRequest: return .exchange
        }
    }

    /// NIO asks to read. True: read now. False: held until `resumeReads` says so (parts are
    /// queued, or the exchange cannot take more of the body).
    mutating func readRequested(exchangeTakesMore: Bool) -> Bool {
        if hasQueued || !exchangeTakesMore {
            if readWhileHolding, holding, exchangeTakesMore {
                readWhileHolding = false
                return true
            }
            readPending = true
            return false
        }
        return true
    }

    /// Whatever held reads back may have changed: true when a held read is to be issued now.
    mutating func resumeReads() -> Bool {
        guard readPending, !hasQueued else { return false }
        readPending = false
        return true
    }
}
