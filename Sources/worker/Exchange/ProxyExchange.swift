import Common
import NIOCore
import NIOHTTP1

/// What an exchange needs from the client connection it serves (implemented by
/// `ClientConnectionHandler`). All calls happen on the worker's event loop.
protocol ClientSide: AnyObject {
    /// The complete response head for the client; `announcesClose` when it says
    /// `connection: close` (as asked by `closesAfterResponse` when it was made).
    func writeResponseHead(_ head: ByteBuffer, announcesClose: Bool)
    /// The connection closes after this response: its head must say so.
    var closesAfterResponse: Bool { get }
    /// Response bytes as they go on the wire (body, with chunk framing when chunked).
    func writeResponseBody(_ bytes: ByteBuffer)
    func flushResponse()
    var clientIsWritable: Bool { get }
    /// True between a client read's delivery and its read-complete, which flushes toward the upstream.
    var clientReadInProgress: Bool { get }
    func resumeClientReads()
    /// A proxy-made error in place of the upstream's response (nothing was sent to the client
    /// yet), and why the upstream could not answer.
    func exchangeFailedBeforeResponse(_ error: ProxyErrorResponse, cause: UpstreamErrorCause?)
    /// The upstream's response is complete (and written). The exchange has already let go of
    /// its upstream connection.
    func exchangeCompleted()
    /// The response was cut after its head: the client connection must be closed.
    func exchangeAborted(cause: UpstreamErrorCause?)
}

/// One forwarded request: the shell around `ExchangeState`. It leases upstream connections,
/// streams the request body up and the response down with backpressure on both sides, and
/// performs what the state decides (send, replay on a fresh connection, fail, give the connection
/// back). Lives on the worker's event loop only.
final class ProxyExchange: UpstreamConnectionDelegate {
    /// Unretained, as is `timer`, and used as guaranteed references (`withPool`, `setTimer`):
    /// the exchange is made per request, and a strong reference costs a retain when it is made
    /// and a release when it goes, where `unowned(unsafe)` costs both at every use (~35
    /// instructions a reference per request, docs/performance.md). Both live at least as long as
    /// the exchange: the pool is the worker's (`WorkerContext`, which the client connection's
    /// handler holds), the timer the handler's, and the exchange holds the handler (`client`).
    private let pool: Unmanaged<UpstreamPool>
    /// The matched route (the upstream, its target) and the pieces of the upstream
    /// request-target.
    let match: Router.Match
    /// The client's request head, as received (its framing is the upstream's too).
    private let head: RequestHead
    /// Strong: the client side drops its exchange when the exchange ends, which ends the cycle.
    /// (A weak reference would give every exchange a side table, and every retain and release
    /// of it the slow path.)
    private let client: ClientSide
    private var state: ExchangeState
    private var connection: UpstreamConnection?
    /// The current try's target: the route's own unless the route has `failover`. Unowned: the
    /// route, which the exchange holds through `match` for its whole life, holds every target it
    /// may choose (its own and its fallbacks'), and a retain and release per request is saved.
    /// Held as `Unmanaged` and used guaranteed (`withTarget`): an `unowned(unsafe)` one copied into
    /// a local for a call was retained and released there.
    private var targetRef: Unmanaged<UpstreamTarget>
    var target: UpstreamTarget {
        get { targetRef.takeUnretainedValue() }
        set { targetRef = .passUnretained(newValue) }
    }
    /// Which targets were tried, for a route with `failover` only (nil keeps the one-target
    /// path free of it).
    var plan: FailoverPlan?
    /// The host's target health, given only to an exchange whose route has `failover` (nil
    /// costs the one-target path no retain).
    let health: TargetHealthBoard?
    /// The worker's metrics region, for `fluxgate_upstream_attempts_total` (nil: not counted).
    var attemptMetrics: MetricsRegion?
    /// The status of a response head that failed the current try (`HeadDecision.tryNext`): the
    /// rest of that response is dropped.
    private var droppedStatus: UInt?
    /// The dropped response of a failed try, whole (head and body in one read, small), or the
    /// last one that was: what the client gets if no later try answers
    /// (docs/routing-and-forwarding.md "Retries and failover").
    private var failedResponse: FailedResponse?
    private var dropping: FailedResponse?

    /// Request parts received from the client while no connection is ready yet.
    private var pending: [RequestPart] = []
    /// Request body parts already sent, kept while the state keeps a replay copy: the first
    /// apart (a body that came whole is one part: no array is made for it per request), the end
    /// as a flag (a bodiless request's only part).
    private var replayFirst: ByteBuffer?
    private var replay: [RequestPart] = []
    private var replayEnded = false
    /// The upstream request head, held while the client read that carried the request is still
    /// being delivered: a `Content-Length` body arriving in the same read is appended to it, so
    /// head and body are one buffer and one `send` instead of two. Sent before anything
    /// else is, and at the read's end.
    private var heldHead: ByteBuffer?

    private(set) var requestBodyBytes = 0
    /// The request announced a body (`Content-Length` or `Transfer-Encoding`), even an empty one.
    var requestHadBody: Bool { requestFraming != .none }
    /// How the client framed its body; the upstream gets the same framing.
    private let requestFraming: BodyFraming
    /// Response body bytes relayed (payload, without chunk framing), for the log.
    private(set) var responseBodyBytes = 0
    /// The upstream's final status, once its head arrived.
    private(set) var responseStatus: UInt?
    /// Instants (`NIODeadline.uptimeNanoseconds`, 0 = not yet) for the request's facts and
    /// docs/observability.md's histograms: the upstream request head handed to the upstream
    /// connection (the last attempt's), the upstream's final head read, the client head written.
    private(set) var upstreamSentNs: UInt64 = 0
    private(set) var upstreamHeadNs: UInt64 = 0
    private(set) var clientHeadNs: UInt64 = 0
    /// `propagate_request_id`: the id sent upstream and back to the client as `x-request-id`.
    private let requestID: String?
    /// The upstream's own request id, when the reader was asked to keep it (request lines on).
    private(set) var upstreamRequestID: String?
    private var reader: UpstreamResponseReader
    /// Watches the response (the tap, `ResponseObserver`): the reader reports the head, the
    /// payload and a complete end; the exchange reports a cut.
    private let observer: ResponseObserver?
    var requestEndReceived: Bool { state.requestEndReceived }
    /// Tries made (the first included), for the request's facts.
    var attempts: Int { state.attempts }
    /// The client connection's exchange timer (one per connection, re-armed lazily): the response
    /// head deadline, then the idle gap between response chunks. The client side calls
    /// `deadlinePassed` when it expires.
    private let timer: Unmanaged<LazyTimer>

    /// `pool` and `timer` are passed borrowed: owned, the caller retained each and this released it.
    init(
        pool: __shared UpstreamPool, client: ClientSide, timer: __shared LazyTimer, match: Router.Match,
        head: RequestHead, settings: ExchangeState.Settings, health: TargetHealthBoard?,
        observer: ResponseObserver? = nil, requestID: String? = nil, capturesUpstreamRequestID: Bool = false,
        bodyFilter: ResponseBodyFilter? = nil
    ) {
        self.requestID = requestID
        self.pool = Unmanaged.passUnretained(pool)
        self.health = health
        self.targetRef = .passUnretained(match.route.target)
        self.client = client
        self.timer = Unmanaged.passUnretained(timer)
        self.match = match
        self.reader = UpstreamResponseReader(requestMethodIsHEAD: Self.isHEAD(head.method))
        self.reader.observer = observer
        // Only when there is one (`stream_usage: inject`): the reader keeps it across a resend.
        if let bodyFilter { self.reader.bodyFilter = bodyFilter }
        self.reader.requestIDForClient = requestID
        self.reader.capturesUpstreamRequestID = capturesUpstreamRequestID
        self.observer = observer
        self.requestFraming = head.facts.framing
        self.state = ExchangeState(settings: settings, now: .now())
        // Last: the head is moved in, not copied.
        self.head = head
    }

    // MARK: Client side

    /// `body` on the pool, not retained around it.
    @inline(__always)
    private func withPool<R>(_ body: (UpstreamPool) -> R) -> R { pool._withUnsafeGuaranteedRef(body) }

    /// `body` on the current try's target, not retained around it.
    @inline(__always)
    private func withTarget<R>(_ body: (UpstreamTarget) -> R) -> R { targetRef._withUnsafeGuaranteedRef(body) }

    /// Sets the exchange timer, not retained around the call.
    @inline(__always)
    private func setTimer(_ deadline: NIODeadline?) { timer._withUnsafeGuaranteedRef { $0.set(deadline) } }

    func start() {
        setTimer(state.deadline)
        if match.route.failover { chooseTarget() }
        lease(fresh: false)
    }

    /// Backpressure toward the client: read more only when the upstream can take it. (Its
    /// writability as last reported: asking the channel on every read of the client retained
    /// and released the connection and its channel, ~100 instructions a read.)
    var mayReadClient: Bool { connection == nil ? pending.isEmpty : upstreamWritable }
    /// The current connection's writability: read when it is leased, then as it changes.
    private var upstreamWritable = true

    /// Inlined, as `clientEnd`: a body taken whole with its head goes on from `startExchange`,
    /// where the calls cost ~15 instructions each (docs/performance.md "session 16, gateway2").
    @inline(__always)
    func clientBody(_ buffer: ByteBuffer) {
        requestBodyBytes += buffer.readableBytes
        send(.body(buffer))
    }

    @inline(__always)
    func clientEnd() {
        state.clientEnded()
        send(.end)
    }

    func clientReadComplete() {
        guard let connection else { return }
        sendHeldHead(on: connection)
        connection.handler.flush()
    }

    func clientWritabilityChanged(isWritable: Bool) {
        if isWritable, let connection { connection.handler.resumeReading() }
    }

    /// The client went away: cancel the upstream exchange and never reuse its connection.
    func clientClosed() {
        let cut = state.responseStarted
        state.clientClosed()
        finish(reusable: false)
        if cut { observer?.responseEnded(complete: false) }
    }

    // MARK: Upstream side

    var upstreamMayRead: Bool { client.clientIsWritable }

    /// `bytes` consumed: the reader reads it in place, where a borrowed one was copied (retained
    /// and released) for the read.
    func upstreamRead(_ bytes: consuming ByteBuffer) {
        guard let connection else { return }
        // `client` is read from the exchange (a `let`) wherever it is used: a local copy was
        // retained once more for the closures below.
        let now = NIODeadline.now()
        state.responseBytes(now: now)
        var turn = ReadTurn(connection: Unmanaged.passUnretained(connection), now: now)
        do {
            reader.announcesClose = client.closesAfterResponse
            // Taken out for the read: `writeHeld` gives the connection its next one.
            var spare = connection.spareResponseHead.take()
            defer { if spare != nil { connection.spareResponseHead = spare } }
            // The handler must not touch `reader` (exclusive access while it reads). It captures
            // the exchange unretained (the caller, the upstream handler, holds it for the call)
            // and the turn by address: capturing `self` and `connection`, the specialised
            // readers took them owned, a retain and a release around each of their calls.
            let exchange = Unmanaged.passUnretained(self)
            try reader.read(bytes, allocator: connection.allocator, reusing: &spare) { event in
                exchange._withUnsafeGuaranteedRef { $0.responseEvent(event, turn: &turn) }
            }
            writeHeld(&turn)
        } catch {
            writeHeld(&turn)
            if droppedStatus == nil { perform(state.protocolError(error.reason)) }
        }
        if let status = droppedStatus {
            droppedStatus = nil
            if let dropping, dropping.complete { failedResponse = dropping }
            dropping = nil
            perform(.tryNext(.status(status), UpstreamErrorCause(layer: .protocol, reason: "status \(status)")))
        }
    }

    /// One upstream read's own state. `held`: the client head, held during the read so body
    /// bytes of the same read are appended to it (the reader made room): one write to the client
    /// instead of two for a small response. Two plain fields, not an optional tuple: the tuple's
    /// copies and destroys went through generic value witnesses (~450 instructions per response).
    private struct ReadTurn {
        /// Held strongly by `upstreamRead` for the read.
        let connection: Unmanaged<UpstreamConnection>
        let now: NIODeadline
        var held: ByteBuffer?
        var heldAnnouncesClose = false
    }

    private func writeHeld(_ turn: inout ReadTurn) {
        // Taken (a move): no retain of the copy and release of the cleared variable.
        guard let head = turn.held.take() else { return }
        client.writeResponseHead(head, announcesClose: turn.heldAnnouncesClose)
        turn.connection._withUnsafeGuaranteedRef { $0.sent(responseHead: head) }
        if clientHeadNs == 0 { clientHeadNs = NIODeadline.now().uptimeNanoseconds }
    }

    /// An event of the reader's, during `upstreamRead`.
    private func responseEvent(_ event: UpstreamResponseReader.Event, turn: inout ReadTurn) {
        guard droppedStatus == nil else { return keepDropped(event) }
        let now = turn.now
        switch event {
        case .head(let head):
            if state.responseHead(status: head.status, keepAlive: head.keepAlive, now: now) == .tryNext {
                // Never relayed: the next target answers instead.
                droppedStatus = head.status
                dropping = FailedResponse(bytes: head.clientHead, announcesClose: head.announcesClose, status: head.status)
                return
            }
            if plan != nil { tryAnswered(status: head.status, retryOn: state.settings.retryOn, now: now) }
            countAttempt(match.route.retryRules.retries(status: head.status) ? .status : .ok)
            dropReplay()
            responseStatus = head.status
            upstreamHeadNs = now.uptimeNanoseconds
            if head.upstreamRequestID != nil { upstreamRequestID = head.upstreamRequestID }
            turn.held = head.clientHead
            turn.heldAnnouncesClose = head.announcesClose
            setTimer(state.deadline)
        case .body(let body, let payload):
            responseBodyBytes += payload
            if turn.held == nil || !Self.append(body, to: &turn.held!, upTo: UpstreamResponseReader.maxBodyRoom) {
                writeHeld(&turn)
                client.writeResponseBody(body)
            }
        case .end(let clean):
            writeHeld(&turn)
            finish(reusable: state.responseEnded(clean: clean))
            client.exchangeCompleted()
        }
    }

    func upstreamReadComplete() {
        client.flushResponse()
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        upstreamWritable = isWritable
        if isWritable { client.resumeClientReads() }
    }

    func upstreamFailed(_ error: Error) {
        // The channel closes right after; `upstreamClosed` decides what the client sees. Nothing
        // after an error is believed: a body that ends at the close must not complete when TLS
        // reported a truncation just before it.
        state.errorReported()
    }

    func upstreamClosed() {
        guard connection != nil else { return }
        let endsAtClose = reader.endsAtClose && !state.upstreamErrored && reader.closed()
        perform(state.connectionClosed(bodyEndsAtClose: endsAtClose, now: .now()))
    }

    /// Does what the state decided about a closed or failed connection.
    private func perform(_ decision: ExchangeState.CloseDecision?) {
        guard let decision else { return }
        switch decision {
        case .complete:
            // A body delimited by the close is complete: end the chunked body this side made.
            if let tail = reader.filteredTail(allocator: connection?.allocator ?? ByteBufferAllocator()) {
                client.writeResponseBody(tail)
            }
            client.writeResponseBody(ByteBuffer(staticString: UpstreamResponseReader.lastChunk))
            finish(reusable: false)
            client.exchangeCompleted()
        case .replay:
            resend()
            lease(fresh: true)
        case .tryNext(let failure, _):
            let now = NIODeadline.now()
            tryFailed(failure, now: now)
            countFailedAttempt(failure)
            resend()
            chooseTarget(now: now)
            lease(fresh: false)
        case .fail(let error, let cause):
            if plan != nil, error != nil { targetFailed(now: .now()) }
            if error != nil { countLastAttempt(failedBy: cause) }
            finish(reusable: false)
            if error != nil, let failed = failedResponse {
                // An earlier try's answer beats the proxy's own error.
                failedResponse = nil
                responseStatus = failed.status
                responseBodyBytes = failed.payload
                client.writeResponseHead(failed.bytes, announcesClose: failed.announcesClose)
                client.exchangeCompleted()
                return
            }
            if let error {
                client.exchangeFailedBeforeResponse(error, cause: cause)
            } else {
                observer?.responseEnded(complete: false)
                client.exchangeAborted(cause: cause)
            }
        }
    }

    /// A dropped response as the client would have got it, kept while it stays small.
    struct FailedResponse {
        var bytes: ByteBuffer
        var announcesClose: Bool
        var status: UInt
        var payload = 0
        var complete = false
        static let maxBytes = 64 * 1024
    }

    /// A body or end event of a dropped response.
    private func keepDropped(_ event: UpstreamResponseReader.Event) {
        guard var kept = dropping else { return }
        switch event {
        case .head:
            return
        case .body(let body, let payload):
            guard kept.bytes.readableBytes + body.readableBytes <= FailedResponse.maxBytes else {
                dropping = nil
                return
            }
            kept.bytes.writeImmutableBuffer(body)
            kept.payload += payload
        case .end:
            kept.complete = true
        }
        dropping = kept
    }

    /// The request goes out again from the start: a fresh reader, the parts sent so far before
    /// those still waiting, the old connection closed.
    private func resend() {
        let previous = reader
        reader = UpstreamResponseReader(requestMethodIsHEAD: Self.isHEAD(head.method))
        reader.observer = observer
        reader.bodyFilter = previous.bodyFilter
        // The answering try's head carries the request id too (docs/observability.md).
        reader.requestIDForClient = previous.requestIDForClient
        reader.capturesUpstreamRequestID = previous.capturesUpstreamRequestID
        pending = (replayFirst.map { [.body($0)] } ?? []) + replay + (replayEnded ? [.end] : []) + pending
        dropReplay()
        heldHead = nil
        release(reusable: false)
        setTimer(state.deadline)
    }

    // MARK: Internals

    private func lease(fresh: Bool) {
        if !fresh, let connection = withPool({ pool in withTarget { pool.idleConnection(to: $0) } }) {
            // Called while the client's read is being delivered (head first, then any body bytes
            // of the same read): the client side's read-complete flushes head and body together,
            // one write to the upstream instead of two.
            connected(connection, reused: true, flushNow: !client.clientReadInProgress)
            return
        }
        let attempt = state.attempts
        withPool { pool in withTarget { pool.connect(to: $0) } }.assumeIsolated().whenComplete { [weak self] result in
            guard let self, self.state.attempts == attempt else {
                // The exchange is gone, or this try ended meanwhile (its attempt_timeout_ms):
                // the connection carried nothing.
                if case .success(let connection) = result {
                    if let self { self.withPool { $0.release(connection, reusable: true) } } else { connection.channel.close(promise: nil) }
                }
                return
            }
            switch result {
            case .success(let connection):
                self.connected(connection, reused: false, flushNow: true)
            case .failure(let error):
                // A TLS failure says what failed (expired, untrusted, wrong host); the rest is
                // "unreachable" (refused, DNS, connect timeout).
                let response = (error as? TLSError).map(ProxyErrorResponse.upstreamTLS) ?? .upstreamUnreachable
                self.perform(self.state.leaseFailed(UpstreamErrorCause(connectError: error), error: response, now: .now()))
            }
        }
    }

    private func connected(_ connection: UpstreamConnection, reused: Bool, flushNow: Bool) {
        // A pooled connection was found active by `idleConnection` just before, with nothing run
        // in between: asked again only for a new one (through the `Channel` existential, ~60
        // instructions with its retain and release).
        switch state.leased(active: reused || connection.channel.isActive, reused: reused, now: .now()) {
        case .giveBack:
            // Finished while connecting (client gone, deadline passed): the connection is clean.
            withPool { $0.release(connection, reusable: true) }
            return
        case .leaseFresh:
            // The upstream closed this pooled connection before we wrote a byte on it: take a
            // fresh one. Nothing was sent, so this is safe for any method.
            withPool { $0.release(connection, reusable: false) }
            lease(fresh: true)
            return
        case .send:
            break
        }
        self.connection = connection
        upstreamWritable = connection.handler.isWritable
        connection.handler.delegate = self
        // Room for a small body too (see `heldHead`).
        let length = head.facts.contentLength
        let bodyRoom = requestFraming == .contentLength && length <= Self.maxHeldBodyBytes ? length : 0
        let bound = withTarget { target in
            ForwardingHeaders.upstreamRequestHeadBound(
                method: self.head.method, match: match, target: target, client: self.head, requestID: requestID)
        }
        var head = connection.requestHeadBuffer(capacity: bound + bodyRoom)
        withTarget { target in
            ForwardingHeaders.writeUpstreamRequestHead(
                method: self.head.method, match: match, target: target,
                client: self.head, framing: requestFraming, requestID: requestID, bound: bound, into: &head)
        }
        // The head is not kept for a replay: a replay writes a fresh one.
        if flushNow {
            connection.handler.send(head)
            connection.sent(requestHead: consume head)
            upstreamSentNs = NIODeadline.now().uptimeNanoseconds
        } else {
            heldHead = consume head
        }
        // Parts are pending only when the connection took a while: the usual request skips the
        // array's copy and its release.
        if !pending.isEmpty {
            let buffered = pending
            pending = []
            for part in buffered { write(part, on: connection) }
        }
        if flushNow {
            sendHeldHead(on: connection)
            connection.handler.flush()
        }
        client.resumeClientReads()
    }

    /// A case pattern, not `== .HEAD`: HTTPMethod's `==` is RawRepresentable's, which builds and
    /// compares both raw-value strings.
    private static func isHEAD(_ method: HTTPMethod) -> Bool {
        if case .HEAD = method { return true }
        return false
    }

    static func isIdempotent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: return true
        default: return false
        }
    }

    /// A piece of the request body as the client sent it (de-chunked by the decoder), or its end.
    private enum RequestPart {
        case body(ByteBuffer)
        case end
    }

    private func send(_ part: RequestPart) {
        if let connection {
            write(part, on: connection)
        } else if !state.isDone {
            pending.append(part)
        }
    }

    private func write(_ part: RequestPart, on connection: UpstreamConnection) {
        if case .body(let buffer) = part { state.bodySent(bytes: buffer.readableBytes) }
        if state.keepsReplayCopy {
            if case .body(let buffer) = part {
                if replayFirst == nil { replayFirst = buffer } else { replay.append(part) }
            } else {
                replayEnded = true
            }
        } else if replayEnded || replayFirst != nil {
            dropReplay()
        }
        switch part {
        case .body(let buffer):
            guard buffer.readableBytes > 0 else { return }
            if heldHead != nil, requestFraming == .contentLength,
                Self.append(buffer, to: &heldHead!, upTo: Self.maxHeldBodyBytes)
            {
                return
            }
            sendHeldHead(on: connection)
            if requestFraming == .chunked {
                // The decoder removed the client's chunk framing; the upstream gets it again
                // (the codec's encoding half, as for a response this side chunks).
                var size = connection.allocator.buffer(capacity: 18)
                ChunkedFraming.writeSizeLine(buffer.readableBytes, into: &size)
                connection.handler.send(size)
                connection.handler.send(buffer)
                connection.handler.send(ChunkedFraming.crlf)
            } else {
                connection.handler.send(buffer)
            }
        case .end:
            state.endSent()
            if requestFraming == .chunked {
                sendHeldHead(on: connection)
                connection.handler.send(Self.lastChunk)
            }
        }
    }

    /// A body up to this size goes out in the same write as the head (copied into it).
    private static let maxHeldBodyBytes = 8 * 1024

    /// Appends a body of at most `limit` bytes to a held head when its buffer has the room
    /// (reserved when the head was made), in place; false leaves both as they were.
    private static func append(_ body: ByteBuffer, to head: inout ByteBuffer, upTo limit: Int) -> Bool {
        guard body.readableBytes <= limit, head.writableBytes >= body.readableBytes else { return false }
        head.writeImmutableBuffer(body)
        return true
    }

    private func sendHeldHead(on connection: UpstreamConnection) {
        guard let head = heldHead.take() else { return }
        connection.handler.send(head)
        connection.sent(requestHead: head)
        upstreamSentNs = NIODeadline.now().uptimeNanoseconds
    }

    private static let lastChunk = ByteBuffer(staticString: ChunkedFraming.lastChunk)

    /// The timer's deadline passed (the client side calls this).
    func deadlinePassed() {
        switch state.deadlinePassed(now: .now()) {
        case .none: break
        case .rearm(let deadline): setTimer(deadline)
        case .fail(let error, let cause): perform(.fail(error, cause))
        case .tryNext(let failure, let cause): perform(.tryNext(failure, cause))
        }
    }

    /// The exchange is over: the connection goes back to the pool (`reusable`) or is closed.
    private func finish(reusable: Bool) {
        setTimer(nil)
        if !pending.isEmpty { pending = [] }
        dropReplay()
        release(reusable: reusable)
    }

    private func dropReplay() {
        replayFirst = nil
        if !replay.isEmpty { replay = [] }
        replayEnded = false
    }

    private func release(reusable: Bool) {
        // Taken (a move), and the delegate cleared by the pool's `release` (its first step).
        guard let connection = connection.take() else { return }
        withPool { $0.release(connection, reusable: reusable) }
    }
}
