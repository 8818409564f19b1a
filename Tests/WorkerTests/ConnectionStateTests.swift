import NIOCore
import Testing
@testable import FluxgateWorker

/// `ConnectionState` as a value, with explicit instants: what a client connection does with
/// pipelined requests, a drain, its deadlines and its reads. No socket, no sleep.
@Suite struct ConnectionStateTests {
    static let timeouts = ConnectionState.Timeouts(
        header: .seconds(30), keepAlive: .seconds(75), bodyDiscard: .seconds(20), drainIdleGrace: .seconds(1))
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    static func at(ms: Int64) -> NIODeadline { t0 + .milliseconds(ms) }

    /// The events of a request's bytes, as the connection's parser makes them.
    static func events(_ text: String) -> [RequestEvent] {
        var parser = RequestParser(limits: WorkerLimits().parser)
        parser.append(ByteBuffer(string: text))
        var events: [RequestEvent] = []
        while let event = parser.next() { events.append(event) }
        return events
    }

    static func isHead(_ event: RequestEvent?, _ uri: String) -> Bool {
        if case .head(let head) = event { return head.uri == uri }
        return false
    }

    static func isEnd(_ event: RequestEvent?) -> Bool {
        if case .end = event { return true }
        return false
    }

    /// What the shell does with a head it is handed: the request starts and an exchange takes it.
    static func start(_ state: inout ConnectionState, _ event: RequestEvent?) {
        guard case .head(let head) = event else { Issue.record("expected a head"); return }
        state.requestStarted(keepAlive: head.keepAlive)
        state.forwarding()
    }

    @Test func pipelinedRequestsAreHandledInOrderOneResponseAtATime() {
        var state = ConnectionState(timeouts: Self.timeouts, acceptedAt: Self.t0)
        let parts = Self.events("GET /a HTTP/1.1\r\nHost: p\r\n\r\nGET /b HTTP/1.1\r\nHost: p\r\n\r\n")
        #expect(parts.count == 4)
        _ = state.bytesArrived(now: Self.at(ms: 1))

        // What the shell asks before taking a head out of the parser (`handlesNow`) agrees
        // with what `received` does with the part.
        #expect(state.handlesNow)
        let first = state.take(parts[0])
        #expect(Self.isHead(first, "/a"))
        Self.start(&state, first)
        let r1 = state.take(parts[1])
        #expect(Self.isEnd(r1))
        state.requestReceived()
        // The second request waits until the first response has ended, and reading stops.
        #expect(!state.handlesNow)
        let r2 = state.take(parts[2])
        #expect(r2 == nil)
        let r3 = state.take(parts[3])
        #expect(r3 == nil)
        let r4 = state.nextQueued()
        #expect(r4 == nil)
        let r5 = state.readRequested(exchangeTakesMore: true)
        #expect(!r5)

        let r6 = state.responseEnded(requestComplete: true, now: Self.at(ms: 5))
        #expect(r6 == .keepAlive)
        // Parts still queued go first: a new one would queue behind them.
        #expect(!state.handlesNow)
        let second = state.nextQueued()
        #expect(Self.isHead(second, "/b"))
        Self.start(&state, second)
        let r7 = state.nextQueued()
        #expect(Self.isEnd(r7))
        state.requestReceived()
        let r8 = state.nextQueued()
        #expect(r8 == nil)
        // The queue is empty: the held read goes out now, once.
        let r9 = state.resumeReads()
        #expect(r9)
        let r10 = state.resumeReads()
        #expect(!r10)
        let r11 = state.responseEnded(requestComplete: true, now: Self.at(ms: 9))
        #expect(r11 == .keepAlive)
        #expect(state.handlesNow)
        #expect(state.phase == .idle)
        #expect(state.deadline == Self.at(ms: 9) + Self.timeouts.keepAlive)
    }

    @Test func aDrainBeforeTheFirstRequestLetsItInWithinTheGraceAndClosesAfterItsResponse() {
        var state = ConnectionState(timeouts: Self.timeouts, acceptedAt: Self.t0)
        state.quiesce(now: Self.at(ms: 10))
        #expect(state.deadline == Self.at(ms: 10) + Self.timeouts.drainIdleGrace)
        #expect(state.expired() == .close)

        // The request's bytes arrive within the grace: it is served, and its head says close.
        let r12 = state.bytesArrived(now: Self.at(ms: 20))
        #expect(r12)
        #expect(state.deadline == Self.at(ms: 20) + Self.timeouts.header)
        let parts = Self.events("GET /a HTTP/1.1\r\nHost: p\r\n\r\n")
        Self.start(&state, state.take(parts[0]))
        #expect(state.closeAfterResponse)
        #expect(state.deadline == nil)
        state.requestReceived()
        state.responseHeadWritten(announcesClose: state.closeAfterResponse)
        let r13 = state.responseEnded(requestComplete: true, now: Self.at(ms: 30))
        #expect(r13 == .closeWhenFlushed)
        #expect(state.phase == .closing)
        let r14 = state.take(.end)
        #expect(r14 == nil)
    }

    @Test func aDrainAfterAResponseHeadWasSentServesOneMoreRequest() {
        var state = ConnectionState(timeouts: Self.timeouts, acceptedAt: Self.t0)
        let parts = Self.events("GET /a HTTP/1.1\r\nHost: p\r\n\r\n")
        _ = state.bytesArrived(now: Self.at(ms: 1))
        Self.start(&state, state.take(parts[0]))
        state.requestReceived()
        state.responseHeadWritten(announcesClose: false)
        // The head went out without `connection: close`: the client may already be sending more.
        state.quiesce(now: Self.at(ms: 2))
        let r15 = state.responseEnded(requestComplete: true, now: Self.at(ms: 3))
        #expect(r15 == .serveOneMoreThenClose)
        #expect(state.deadline == Self.at(ms: 3) + Self.timeouts.drainIdleGrace)
        // The next request is answered with close.
        Self.start(&state, state.take(Self.events("GET /b HTTP/1.1\r\nHost: p\r\n\r\n")[0]))
        #expect(state.closeAfterResponse)
    }

    @Test func everyDeadlineOfTheConnection() {
        var state = ConnectionState(timeouts: Self.timeouts, acceptedAt: Self.t0)
        // Header timeout from acceptance; a first byte restarts it.
        #expect(state.deadline == Self.t0 + Self.timeouts.header)
        let r16 = state.bytesArrived(now: Self.at(ms: 100))
        #expect(r16)
        #expect(state.deadline == Self.at(ms: 100) + Self.timeouts.header)
        let r17 = state.bytesArrived(now: Self.at(ms: 200))
        #expect(!r17)
        #expect(state.deadline == Self.at(ms: 100) + Self.timeouts.header)
        #expect(state.expired() == .close)

        // During a request only the exchange's deadlines run.
        let parts = Self.events("POST /a HTTP/1.1\r\nHost: p\r\nContent-Length: 10\r\n\r\n")
        Self.start(&state, state.take(parts[0]))
        #expect(state.deadline == nil)
        #expect(state.expired() == .exchange)

        // The response ended before the body: the rest is discarded for at most bodyDiscard.
        let r18 = state.responseEnded(requestComplete: false, now: Self.at(ms: 500))
        #expect(r18 == .keepAlive)
        #expect(state.phase == .discardingBody)
        #expect(state.deadline == Self.at(ms: 500) + Self.timeouts.bodyDiscard)
        #expect(state.expired() == .close)
        // The body's end arrives: idle, keep-alive timeout from then.
        state.requestDiscarded(now: Self.at(ms: 700))
        #expect(state.phase == .idle)
        #expect(state.deadline == Self.at(ms: 700) + Self.timeouts.keepAlive)
        #expect(state.expired() == .close)
        // The next request's first byte: the header timeout again.
        let r19 = state.bytesArrived(now: Self.at(ms: 900))
        #expect(r19)
        #expect(state.deadline == Self.at(ms: 900) + Self.timeouts.header)
    }

    @Test func aRequestWithoutKeepAliveClosesTheConnectionAfterItsResponse() {
        var state = ConnectionState(timeouts: Self.timeouts, acceptedAt: Self.t0)
        let parts = Self.events("GET /a HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: p\r\n\r\n")
        Self.start(&state, state.take(parts[0]))
        #expect(state.closeAfterResponse)
        _ = state.take(parts[1])
        state.requestReceived()
        let r20 = state.take(parts[2])
        #expect(r20 == nil)
        state.responseHeadWritten(announcesClose: true)
        let r21 = state.responseEnded(requestComplete: true, now: Self.at(ms: 2))
        #expect(r21 == .closeWhenFlushed)
        // What was pipelined behind it is never handled.
        let r22 = state.nextQueued()
        #expect(r22 == nil)
        // A client that never reads the last response does not hold the connection for ever.
        #expect(state.deadline != nil)
        #expect(state.expired() == .close)
    }

    @Test func malformedBytesCloseAfterTheAnswer() {
        var state = ConnectionState(timeouts: Self.timeouts, acceptedAt: Self.t0)
        state.malformed()
        #expect(state.requestInProgress)
        #expect(state.closeAfterResponse)
        let r23 = state.responseEnded(requestComplete: true, now: Self.at(ms: 1))
        #expect(r23 == .closeWhenFlushed)
    }

    @Test func aWaitingStageHoldsTheRequestsLaterPartsUntilItAnswers() {
        var state = ConnectionState(timeouts: Self.timeouts, acceptedAt: Self.t0)
        let parts = Self.events("POST /a HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\n\r\nabc")
        #expect(parts.count == 3)
        let head = state.take(parts[0])
        guard case .head(let h) = head else { Issue.record("no head"); return }
        state.requestStarted(keepAlive: h.keepAlive)
        state.hold()
        let r24 = state.take(parts[1])
        #expect(r24 == nil)
        let r25 = state.take(parts[2])
        #expect(r25 == nil)
        // One read still goes on (NIO keeps the socket in epoll: no epoll_ctl out and back in
        // per suspended request); the next is held until the parts are handled.
        let r26 = state.readRequested(exchangeTakesMore: true)
        #expect(r26)
        let r26a = state.readRequested(exchangeTakesMore: true)
        #expect(!r26a)
        let r27 = state.nextQueued()
        #expect(r27 == nil)
        state.release()
        state.forwarding()
        if case .body(let body) = state.nextQueued() {
            #expect(String(buffer: body) == "abc")
        } else {
            Issue.record("expected the body")
        }
        let r28 = state.nextQueued()
        #expect(Self.isEnd(r28))
        let r29 = state.resumeReads()
        #expect(r29)
    }

    @Test func aStageAnsweredBeforeAnyReadLeavesQueuedPartsHoldingReads() {
        var state = ConnectionState(timeouts: Self.timeouts, acceptedAt: Self.t0)
        let parts = Self.events("POST /a HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\n\r\nabc")
        let head = state.take(parts[0])
        guard case .head(let h) = head else { Issue.record("no head"); return }
        state.requestStarted(keepAlive: h.keepAlive)
        state.hold()
        let body = state.take(parts[1])
        #expect(body == nil)
        state.release()
        // The parts are still queued (not yet handed on): a read waits for them, as without a stage.
        let held = state.readRequested(exchangeTakesMore: true)
        #expect(!held)
    }

    @Test func readsWaitWhileTheExchangeCannotTakeMoreBody() {
        var state = ConnectionState(timeouts: Self.timeouts, acceptedAt: Self.t0)
        let r30 = state.readRequested(exchangeTakesMore: true)
        #expect(r30)
        let r31 = state.resumeReads()
        #expect(!r31)
        // The upstream is not writable: the read is held, and issued once when it is again.
        let r32 = state.readRequested(exchangeTakesMore: false)
        #expect(!r32)
        let r33 = state.resumeReads()
        #expect(r33)
        let r34 = state.resumeReads()
        #expect(!r34)
    }

    /// The handler asks at a read's end and NIO's autoRead may ask again right after: a held
    /// read asked for twice is still one read, issued once when reads resume.
    @Test func aHeldReadAskedForTwiceIsIssuedOnce() {
        var state = ConnectionState(timeouts: Self.timeouts, acceptedAt: Self.t0)
        let first = state.readRequested(exchangeTakesMore: false)
        let second = state.readRequested(exchangeTakesMore: false)
        #expect(!first && !second)
        let resumed = state.resumeReads()
        #expect(resumed)
        let again = state.resumeReads()
        #expect(!again)
    }
}

extension ConnectionState {
    /// What the shell does with a part: handles it now (returned here), or it waits (nil).
    mutating func take(_ event: RequestEvent) -> RequestEvent? { received(event) ? event : nil }
}
