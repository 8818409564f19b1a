import Common
import Logging
import NIOCore
import NIOHTTP1

/// The last handler of a client connection: the shell around `ConnectionState`. It reads
/// requests from the connection's bytes with `RequestParser`, passes each head through the
/// worker's `RequestPipeline` (the order of checks), hands a request that passes to a
/// `ProxyExchange`, and performs what the connection state decides (queue, read, close, which
/// deadline runs). Response bytes go out through a `SocketOutput` (on http straight to the
/// socket). Every request ends in `WorkerContext.requestEnded` with its `RequestFacts`.
///
/// Pipelined requests are answered in order: parts of a request that arrive while the previous
/// response is still going out are queued (and reading stops) until that response ends. This
/// replaces NIO's `HTTPServerPipelineHandler`, which withholds `read()` for the whole wait on
/// every request, so the socket's read interest was dropped and re-added around each response:
/// two `epoll_ctl` calls per request. Here the read interest stays while nothing is queued.
final class ClientConnectionHandler: ChannelDuplexHandler, ClientSide, SocketOutputOwner, PipelineBodySource {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long an idle keep-alive connection of a draining worker may still start a request.
    static let drainIdleGrace: TimeAmount = .seconds(1)

    private let worker: WorkerContext
    /// The connections of the listener that accepted this one.
    private let registry: ConnectionRegistry
    var output: SocketOutput
    private var state: ConnectionState
    private var context: ChannelHandlerContext?
    /// The channel's writability as its last `channelWritabilityChanged` reported it (NIO
    /// changes it only with that event; writes that go straight to the socket do not count).
    private var isWritable = true
    /// The peer's address, kept at acceptance (NIO forgets it at close); its text is made the
    /// first time a request line needs it (~3,000 instructions, a tenth of an accept).
    private var remoteAddress: SocketAddress?
    private lazy var clientIP: String? = remoteAddress?.ipAddress
    private var parser: RequestParser

    private var exchange: ProxyExchange?
    /// The usage reader of this connection's exchanges (docs/usage.md), made for the first
    /// request whose upstream reads usage and reused after it.
    private var usage: UsageObserver?
    /// `usage`, unretained, for the request's end (`finishedUsage`).
    private var usageRef: Unmanaged<UsageObserver>?
    /// `stream_usage: inject`'s filter of the usage-only chunk, reused request after request.
    private var usageChunks: UsageChunkFilter?
    /// A request still in the pipeline: a stage waits for an answer or for body bytes.
    private var waiting: WaitingRequest?
    /// The current request's facts, from its head to `requestEnded`.
    private var facts = RequestFacts(startedAt: .now())
    private var permitHeld = false
    /// The current request's `max_in_flight` places (docs/rate-limits.md), given back with the permit.
    private var rateLimitHold: RateLimitHold?
    /// The client was sent `100 Continue` for the current request.
    private var continueSent = false
    /// Counts requests, so a stage's late answer for an earlier request is recognised.
    private var serial = 0
    /// Re-entrancy guard of `deliverQueued`.
    private var delivering = false
    /// Set from a read's delivery until its read-complete (see `ClientSide.clientReadInProgress`).
    private(set) var clientReadInProgress = false
    /// The connection's one deadline: the connection state's between requests, the exchange's
    /// during one (the exchange sets it). On expiry the former closes the connection, the latter
    /// goes to the exchange.
    private var timer: LazyTimer?
    /// The current request as the pipeline's stages see it (one per connection, reset per
    /// request; it keeps the connection's last authentication).
    private var request: PipelineRequest?

    /// The last body wait's `WaitingRequest`, kept for the next one on this connection.
    private var spareWaiting: WaitingRequest?

    /// The request is between two stages: the stage `stage` waits for an answer (`suspension`)
    /// or for `wantedBytes` of the body (collected in the pipeline request's `bodyParts`). A
    /// class, reused from one body wait to the next (`spareWaiting`): looking at it is one
    /// retain, where a struct with the head in it was copied whole each time, and no allocation
    /// is made per model-routed request (~1,000 instructions together, docs/performance.md).
    private final class WaitingRequest {
        var stage: Int
        /// The request's head, kept while it waits (the pipeline request does not keep one);
        /// taken out (`take()`, a move, not a copy) when the wait ends.
        var head: RequestHead?
        var suspension: StageSuspension?
        var wantedBytes: Int
        var collectedBytes: Int

        init(stage: Int, head: RequestHead, suspension: StageSuspension?, wantedBytes: Int, collectedBytes: Int) {
            self.stage = stage
            self.head = head
            self.suspension = suspension
            self.wantedBytes = wantedBytes
            self.collectedBytes = collectedBytes
        }
    }

    /// Makes `waiting` (from the spare one when there is one).
    private func startWaiting(
        stage: Int, head: consuming RequestHead, suspension: StageSuspension? = nil, wantedBytes: Int = 0,
        collectedBytes: Int = 0
    ) {
        guard let spare = spareWaiting else {
            waiting = WaitingRequest(
                stage: stage, head: head, suspension: suspension, wantedBytes: wantedBytes, collectedBytes: collectedBytes)
            return
        }
        spareWaiting = nil
        spare.stage = stage
        spare.head = head
        spare.suspension = suspension
        spare.wantedBytes = wantedBytes
        spare.collectedBytes = collectedBytes
        waiting = spare
    }

    init(worker: WorkerContext, registry: ConnectionRegistry, output: SocketOutput) {
        self.worker = worker
        self.registry = registry
        self.output = output
        self.parser = RequestParser(limits: worker.limits.parser)
        let limits = worker.limits
        self.state = ConnectionState(
            timeouts: .init(
                header: .milliseconds(limits.headerReadTimeoutMs), keepAlive: .milliseconds(limits.idleKeepAliveTimeoutMs),
                bodyDiscard: .milliseconds(limits.bodyDiscardTimeoutMs), drainIdleGrace: Self.drainIdleGrace),
            acceptedAt: .now())
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        isWritable = context.channel.isWritable
        let timer = LazyTimer(eventLoop: context.eventLoop)
        // Unowned: the timer is invalidated in handlerRemoved, before this handler can go away.
        timer.onExpiry = { [unowned self] in self.deadlinePassed() }
        self.timer = timer
        // From acceptance the client has the header timeout to send a complete head.
        timer.set(state.deadline)
        remoteAddress = context.channel.remoteAddress
        registry.channels[ObjectIdentifier(context.channel)] = context.channel
        worker.metrics?.region.connectionOpened()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.invalidate()
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        clientReadInProgress = true
        // The clock is read only when the bytes start a request (the header timeout starts).
        if state.phase == .idle, state.bytesArrived(now: .now()) { timer?.set(state.deadline) }
        parser.append(unwrapInboundIn(data))
        // A head stays in the parser until it is handled (`takeHead`) or queued behind an
        // unfinished response (`event`): it is moved once, not copied with every event.
        while state.phase != .closing, let part = parser.nextPart() {
            if state.handlesNow {
                handle(part, context: context)
            } else {
                _ = state.received(parser.event(part))
            }
        }
    }

    private func handle(_ part: RequestParser.Part, context: ChannelHandlerContext) {
        switch part {
        case .head: requestHead(parser.takeHead(), context: context)
        case .body(let buffer): requestBody(buffer, context: context)
        case .end: requestEnd(context: context)
        case .malformed(let error): requestMalformed(ProxyErrorResponse(error), context: context)
        }
    }

    /// A queued part (`deliverQueued`).
    private func handle(_ event: RequestEvent, context: ChannelHandlerContext) {
        switch event {
        case .head(let head): requestHead(head, context: context)
        case .body(let buffer): requestBody(buffer, context: context)
        case .end: requestEnd(context: context)
        case .malformed(let error): requestMalformed(ProxyErrorResponse(error), context: context)
        }
    }

    private func requestBody(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        if let exchange {
            exchange.clientBody(buffer)
        } else if waiting != nil {
            bodyCollected(buffer, end: false, context: context)
        }
    }

    private func requestEnd(context: ChannelHandlerContext) {
        if let exchange {
            state.requestReceived()
            exchange.clientEnd()
        } else if waiting != nil {
            state.requestReceived()
            bodyCollected(nil, end: true, context: context)
        } else if state.discardingRequest {
            state.requestDiscarded(now: .now())
            timer?.set(state.deadline)
        }
    }

    /// The previous response ended (or a stage answered): hand queued parts on, in order, until
    /// one of them starts a request that has to wait again (or the connection is closing).
    private func deliverQueued(context: ChannelHandlerContext) {
        guard !delivering, state.hasQueued else { return }
        delivering = true
        clientReadInProgress = true
        while context.channel.isActive, let event = state.nextQueued() {
            handle(event, context: context)
        }
        delivering = false
        clientReadInProgress = false
        exchange?.clientReadComplete()
        flushOutput(context: context)
        if !state.hasQueued { resumeClientReads() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        state.quiesce(now: .now())
        if state.phase == .idle { timer?.set(state.deadline) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        clientReadInProgress = false
        // Flushes toward the upstream. Nothing toward the client: whatever is written to it in a
        // read (proxy-made responses, 100 Continue) is flushed where it is written.
        exchange?.clientReadComplete()
        // The next read is asked for here, where NIO's autoRead would ask right after this event
        // (`readIfNeeded0`): with one pending, NIO skips its `read()` through the whole pipeline
        // from the tail (~250 instructions a read, docs/performance.md). Held, it asks anyway and
        // is held the same way again (`readRequested` is idempotent while held).
        read(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        isWritable = context.channel.isWritable
        exchange?.clientWritabilityChanged(isWritable: isWritable)
    }

    func channelInactive(context: ChannelHandlerContext) {
        registry.channels[ObjectIdentifier(context.channel)] = nil
        worker.metrics?.region.connectionClosed()
        timer?.invalidate()
        if let exchange {
            self.exchange = nil
            exchange.clientClosed()
            // nginx's 499: the client closed before the response was complete.
            if exchange.responseStatus == nil { facts.outcome = .clientClosed }
            requestEnded(status: exchange.responseStatus ?? 499, exchange: exchange)
        } else if let waiting {
            self.waiting = nil
            waiting.suspension?.onResume = nil
            facts.outcome = .clientClosed
            facts.status = 499
            facts.requestBodyBytes = request?.framing == .none ? nil : waiting.collectedBytes
            endRequest()
        }
        releasePermit()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// Bytes that are not a request (or not within the parser's limits): 400 (414, 431) and close
    /// (docs/routing-and-forwarding.md, "What the parser refuses").
    private func requestMalformed(_ response: ProxyErrorResponse, context: ChannelHandlerContext) {
        let inProgress = state.requestInProgress
        if !inProgress {
            // The bytes that failed to parse are a new request: log it as one, not with the
            // previous request's fields.
            facts.reset(startedAt: .now())
        }
        state.malformed()
        if let exchange {
            self.exchange = nil
            exchange.clientClosed()
            requestEnded(status: exchange.responseStatus ?? 400, exchange: exchange)
            if exchange.responseStatus != nil {
                context.close(promise: nil)
                return
            }
        } else if let waiting {
            // A stage was waiting for this request's body: the request ends with the parser's answer.
            waiting.suspension?.onResume = nil
            self.waiting = nil
        } else if inProgress {
            // A response is already on its way for this request: just stop.
            context.close(promise: nil)
            return
        }
        writeError(response, requestComplete: true, context: context)
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if state.readRequested(exchangeTakesMore: exchange?.mayReadClient ?? true) { output.read(context: context) }
    }

    // MARK: ClientSide

    func writeResponseHead(_ head: ByteBuffer, announcesClose: Bool) {
        state.responseHeadWritten(announcesClose: announcesClose)
        if let context { writeOutput(head, context: context) }
    }

    var closesAfterResponse: Bool { state.closeAfterResponse }

    func writeResponseBody(_ bytes: ByteBuffer) {
        if let context { writeOutput(bytes, context: context) }
    }

    func flushResponse() {
        if let context { flushOutput(context: context) }
    }

    /// As last reported (`channelWritabilityChanged`): the upstream side asks before each of
    /// its reads, and asking the channel cost a retain and release of it and a witness call.
    var clientIsWritable: Bool { context != nil && isWritable }

    func resumeClientReads() {
        guard let context, state.resumeReads() else { return }
        output.read(context: context)
    }

    func exchangeFailedBeforeResponse(_ error: ProxyErrorResponse, cause: UpstreamErrorCause?) {
        guard let context, let exchange else { return }
        self.exchange = nil
        _ = finishedUsage()
        facts.requestBodyBytes = bodyLength(exchange)
        facts.upstreamError = cause
        facts.attempts = exchange.attempts
        if exchange.plan != nil { facts.target = exchange.target }
        facts.upstreamSentNs = exchange.upstreamSentNs
        writeError(error, requestComplete: exchange.requestEndReceived, context: context)
    }

    func exchangeCompleted() {
        guard let context, let exchange else { return }
        self.exchange = nil
        requestEnded(status: exchange.responseStatus ?? 502, exchange: exchange)
        endResponse(requestComplete: exchange.requestEndReceived, context: context)
    }

    func exchangeAborted(cause: UpstreamErrorCause?) {
        guard let exchange else { return }
        self.exchange = nil
        facts.outcome = .upstreamCut
        facts.upstreamError = cause
        requestEnded(status: exchange.responseStatus ?? 502, exchange: exchange)
        context?.close(promise: nil)
    }

    // MARK: Request handling

    /// A complete head: the request goes through the pipeline's stages from the first.
    /// (Each `consuming` head below is moved on, from the parser to the exchange that keeps it:
    /// passed borrowed, it was copied into the exchange and the parser's destroyed, ~250
    /// instructions per request.)
    private func requestHead(_ head: consuming RequestHead, context: ChannelHandlerContext) {
        state.requestStarted(keepAlive: head.keepAlive)
        // The exchange's deadlines take over; this one is cleared without a cancellation.
        timer?.set(nil)
        serial &+= 1
        // The method and target are kept for the request line only when lines are written.
        facts.reset(startedAt: .now())
        if worker.logsRequests {
            facts.method = head.method
            facts.requestTarget = head.targetBytes
            // docs/observability.md "Request ids": the client's, when valid (else made at the end).
            if head.facts.requestIDValue != nil { facts.requestID = head.clientRequestID }
        }
        // With propagation every response carries the id, the proxy's own answers too
        // (docs/observability.md "Request ids").
        if worker.snapshot.configuration.observability.propagateRequestID, facts.requestID == nil {
            facts.requestID = worker.requestIDs.id(for: copy head)
        }
        continueSent = false
        let request: PipelineRequest
        if let current = self.request {
            current.reset(framing: head.facts.framing, snapshot: worker.snapshot)
            request = current
        } else {
            request = PipelineRequest(framing: head.facts.framing, snapshot: worker.snapshot)
            self.request = request
        }
        runPipeline(request, head: head, from: 0, context: context)
    }

    /// Runs the stages from `index` and acts on the verdict of the one that does not proceed
    /// (or forwards the request when every stage proceeded).
    /// `head` is the request's head.
    private func runPipeline(
        _ request: PipelineRequest, head: consuming RequestHead, from index: Int, context: ChannelHandlerContext
    ) {
        var index = index
        var verdict = worker.pipeline.run(request, head: head, from: &index, worker: worker, bodySource: self)
        // A body already at hand (or none) goes to the stage that asked at once.
        while case .needBody(let bytes) = verdict, bodyAtHand(request, head: head, bytes: bytes, context: context) {
            verdict = worker.pipeline.run(request, head: head, from: &index, worker: worker, bodySource: self)
        }
        permitHeld = request.holdsPermit
        if let hold = request.rateLimitHold {
            rateLimitHold = hold
            request.rateLimitHold = nil
        }
        facts.rateLimited = request.rateLimited
        facts.keyID = request.keyID
        facts.keyMetric = request.keyMetric
        facts.route = request.match?.route
        if worker.logsRequests { facts.match = request.match }
        if let model = request.model {
            facts.requestModel = model.name
            facts.unknownModel = model.notFound
        }
        if request.closesConnection { state.closeAfterThisResponse() }
        switch verdict {
        case .proceed:
            forward(request, head: head, context: context)
        case .reject(let error):
            writeError(error, requestComplete: request.receivedWhole, context: context)
        case .needBody(let bytes):
            collectBody(request, head: head, stage: index, bytes: bytes, context: context)
        case .suspend(let suspension):
            suspend(request, head: head, stage: index, on: suspension, context: context)
        }
    }

    private func suspend(
        _ request: PipelineRequest, head: consuming RequestHead, stage: Int, on suspension: StageSuspension,
        context: ChannelHandlerContext
    ) {
        if let verdict = suspension.verdict {
            // Answered before it was returned: go on at once.
            return resumed(request, head: head, stage: stage, verdict: verdict, context: context)
        }
        state.hold()
        startWaiting(stage: stage, head: head, suspension: suspension)
        let serial = self.serial
        suspension.onResume = { [self] verdict in
            guard serial == self.serial, let context = self.context, let waiting = self.waiting else { return }
            self.waiting = nil
            state.release()
            // As in a read's delivery: what the resumed request writes upstream (its head, the
            // body a stage collected) goes out in one flush. Without it a request with nothing
            // queued behind it (a model-routed body, taken whole before a Redis-backed limit
            // suspended) left its body unflushed for ~200 ms (docs/performance.md).
            // The body that arrived while the stage waited (queued) is delivered in the same
            // flush: head and body in one write to the upstream, not two.
            clientReadInProgress = true
            resumed(request, head: waiting.head.take()!, stage: waiting.stage, verdict: verdict, context: context)
            guard state.hasQueued, !delivering else {
                clientReadInProgress = false
                exchange?.clientReadComplete()
                return
            }
            deliverQueued(context: context)
        }
    }

    private func resumed(
        _ request: PipelineRequest, head: consuming RequestHead, stage: Int, verdict: StageVerdict,
        context: ChannelHandlerContext
    ) {
        facts.rateLimited = request.rateLimited
        switch verdict {
        case .proceed:
            runPipeline(request, head: head, from: stage + 1, context: context)
        case .reject(let error):
            writeError(error, requestComplete: request.receivedWhole, context: context)
        case .needBody(let bytes):
            collectBody(request, head: head, stage: stage, bytes: bytes, context: context)
        case .suspend:
            preconditionFailure("StageSuspension.resume refuses a suspension")
        }
    }

    /// A stage asked for the body's first `bytes`: collect them (reads go on: the parts are
    /// bounded by what was asked plus one read), then run that stage again.
    private func collectBody(
        _ request: PipelineRequest, head: consuming RequestHead, stage: Int, bytes: Int, context: ChannelHandlerContext
    ) {
        if bodyAtHand(request, head: head, bytes: bytes, context: context) {
            return runPipeline(request, head: head, from: stage, context: context)
        }
        sendContinueIfExpected(head, context: context)
        let wanted = min(bytes, RequestPipeline.maxBodyPeekBytes)
        if let waiting, waiting.stage == stage {
            waiting.wantedBytes = wanted
        } else {
            // A stage that asks again for more keeps what it was given (`bodyParts`), first.
            startWaiting(stage: stage, head: head, wantedBytes: wanted, collectedBytes: request.body?.readableBytes ?? 0)
        }
        resumeClientReads()
    }

    /// Whether the request's body holds what a stage asked for (`bytes`) without waiting: there
    /// is none, it was collected already, or it came whole with its head and the parser still has
    /// it (`takeFixedBody`: its `.body` and `.end` taken at once, as `bodyCollected` would have
    /// had them, with no wait and no event per part).
    private func bodyAtHand(_ request: PipelineRequest, head: RequestHead, bytes: Int, context: ChannelHandlerContext) -> Bool {
        if request.framing == .none {
            request.bodyComplete = true
            request.body = request.body ?? ByteBuffer()
            return true
        }
        if request.bodyComplete || (request.body?.readableBytes ?? 0) >= min(bytes, RequestPipeline.maxBodyPeekBytes) {
            return true
        }
        guard waiting == nil, request.bodyParts.isEmpty, request.framing == .contentLength, !state.hasQueued,
            let whole = parser.takeFixedBody(length: head.facts.contentLength)
        else { return false }
        // The test here, the call only for a client that waits for `100 Continue` (~18 a request).
        if head.facts.expectsContinue, !continueSent { sendContinueIfExpected(head, context: context) }
        state.requestReceived()
        request.body = whole
        request.bodyComplete = true
        request.bodyTakenWhole = true
        return true
    }

    /// `PipelineBodySource`: the model stage takes a body at hand in the pass that routed the
    /// request (no `.needBody` verdict, no second pass).
    func bodyAtHand(_ request: PipelineRequest, head: RequestHead, bytes: Int) -> Bool {
        // Not retained around the call: the handler keeps its context while it is in the pipeline.
        guard let context = context.map(Unmanaged.passUnretained) else { return false }
        return context._withUnsafeGuaranteedRef { bodyAtHand(request, head: head, bytes: bytes, context: $0) }
    }

    /// Body bytes (or the body's end) for a stage that asked for them.
    private func bodyCollected(_ buffer: ByteBuffer?, end: Bool, context: ChannelHandlerContext) {
        guard let waiting, let request else { return }
        if let buffer {
            request.bodyParts.append(buffer)
            waiting.collectedBytes += buffer.readableBytes
        }
        guard end || waiting.collectedBytes >= waiting.wantedBytes else { return }
        self.waiting = nil
        spareWaiting = waiting
        request.body = Self.joined(request.bodyParts, bytes: waiting.collectedBytes, allocator: context.channel.allocator)
        request.bodyComplete = end
        runPipeline(request, head: waiting.head.take()!, from: waiting.stage, context: context)
    }

    /// The collected parts as one buffer for the stage: the part itself when there is one (the
    /// usual case, a body that came with its head or in one read), so it is not copied.
    private static func joined(_ parts: [ByteBuffer], bytes: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        if parts.count == 1 { return parts[0] }
        var body = allocator.buffer(capacity: bytes)
        for part in parts { body.writeImmutableBuffer(part) }
        return body
    }

    private func sendContinueIfExpected(_ head: RequestHead, context: ChannelHandlerContext) {
        guard head.facts.expectsContinue, !continueSent else { return }
        continueSent = true
        // The client holds its body back until told to send it (curl does for bodies over
        // 1 KiB, waiting a second otherwise): the request is accepted, so say so now.
        writeOutput(ByteBuffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n"), context: context)
        flushOutput(context: context)
    }

    /// Every stage proceeded: the request goes upstream.
    private func forward(_ request: PipelineRequest, head: consuming RequestHead, context: ChannelHandlerContext) {
        guard let match = request.match, let timer else { return writeError(.noRoute, requestComplete: false, context: context) }
        sendContinueIfExpected(head, context: context)
        if let length = request.forwardedLength {
            // A stage changed the body's length (`BodySplice`); the head is copied
            // only then (a copy on every request cost ~60 instructions).
            var renamed = head
            renamed.facts.contentLength = length
            renamed.facts.contentLengthRewritten = true
            return startExchange(request, head: renamed, match: match, timer: timer, context: context)
        }
        startExchange(request, head: head, match: match, timer: timer, context: context)
    }

    private func startExchange(
        _ request: PipelineRequest, head: consuming RequestHead, match: consuming Router.Match, timer: LazyTimer,
        context: ChannelHandlerContext
    ) {
        var settings = request.snapshot.exchangeSettings
        settings.replayBufferBytes = worker.limits.replayBufferBytes
        settings.idempotent = ProxyExchange.isIdempotent(head.method)
        // docs/observability.md "Request ids": made here only when it goes upstream.
        let propagates = request.snapshot.configuration.observability.propagateRequestID
        if propagates, facts.requestID == nil { facts.requestID = worker.requestIDs.id(for: copy head) }
        let route = match.route
        let usage = route.upstream.usage == .off ? nil : usageObserver()
        if let attemptTimeout = route.attemptTimeout { settings.attemptTimeout = attemptTimeout }
        if route.failover {
            // docs/routing-and-forwarding.md "Retries and failover".
            settings.maxTries = route.maxTries
            settings.retryOn = route.retryRules
            settings.replayBufferBytes = route.upstream.retry.replayBufferBytes
        }
        let observer = ResponseObserverPair.combining(usage, worker.responseObservers?(head))
        let exchange = ProxyExchange(
            pool: worker.pool, client: self, timer: timer, match: match, head: head, settings: settings,
            health: route.failover ? worker.health : nil, observer: observer,
            requestID: propagates ? facts.requestID : nil, capturesUpstreamRequestID: worker.logsRequests,
            bodyFilter: request.injectedStreamUsage ? usageChunkFilter() : nil)
        exchange.attemptMetrics = worker.metrics?.region
        self.exchange = exchange
        state.forwarding()
        exchange.start()
        // Body bytes a stage collected go first, as they arrived.
        if request.bodyTakenWhole {
            // The one part, moved out of the request (the channel has its buffer back sooner).
            request.bodyTakenWhole = false
            exchange.clientBody(request.body.take()!)
        } else if !request.bodyParts.isEmpty {
            for part in request.bodyParts { exchange.clientBody(part) }
            // Its storage is kept for the next request's parts.
            request.emptyBodyParts()
            // The stage's view may be a slice of the read buffer (`joined`): let the channel
            // have that buffer back now, not at the next request.
            request.body = nil
        }
        if request.receivedWhole { exchange.clientEnd() }
    }

    /// The connection's usage reader, ready for the response of the request being forwarded.
    /// (Inlined: the reader goes on to the exchange as it was loaded, one retain.)
    @inline(__always)
    private func usageObserver() -> UsageObserver {
        // Not `usage ?? UsageObserver()` stored back: that retained it twice and released it once.
        if let usage {
            usage.begin()
            return usage
        }
        let observer = UsageObserver(names: worker.usageModelNames)
        usage = observer
        usageRef = Unmanaged.passUnretained(observer)
        observer.begin()
        return observer
    }

    /// The usage of the request that ends (`UsageObserver.finish`), nil without a reader. The
    /// reader is called unretained (`usage` holds it while the connection lives, and nothing in
    /// `finish` lets it go): `usage?.finish()` retained and released it, ~40 instructions a
    /// request, and so did an `unowned(unsafe)` binding of it.
    @inline(__always)
    private func finishedUsage() -> UsageResult? {
        guard let usageRef else { return nil }
        return usageRef._withUnsafeGuaranteedRef { $0.finish() }
    }

    /// The connection's filter for `stream_usage: inject` (docs/usage.md), made on first use.
    private func usageChunkFilter() -> UsageChunkFilter {
        let filter = usageChunks ?? UsageChunkFilter()
        usageChunks = filter
        return filter
    }

    /// Writes a proxy-made response for the current request and ends it.
    private func writeError(_ error: ProxyErrorResponse, requestComplete: Bool, context: ChannelHandlerContext) {
        var error = error
        if let id = facts.requestID, worker.snapshot.configuration.observability.propagateRequestID {
            error.headers.append(ProxyErrorResponse.Header(name: "x-request-id", value: id))
        }
        let (bytes, bodyLength) = error.wire(closeConnection: state.closeAfterResponse, allocator: context.channel.allocator)
        state.responseHeadWritten(announcesClose: state.closeAfterResponse)
        writeOutput(bytes, context: context)
        facts.status = error.status.code
        facts.responseBodyBytes = bodyLength
        if facts.outcome == .responded { facts.outcome = .proxyError }
        endRequest()
        releasePermit()
        endResponse(requestComplete: requestComplete, context: context)
    }

    /// Writes the response's `.end` and does what the connection state says follows, which may
    /// hand on a queued pipelined request whose own response may end re-entrantly: every state
    /// change happens before.
    private func endResponse(requestComplete: Bool, context: ChannelHandlerContext) {
        let next = state.responseEnded(requestComplete: requestComplete, now: .now())
        timer?.set(state.deadline)
        switch next {
        case .keepAlive, .serveOneMoreThenClose:
            flushOutput(context: context)
            resumeClientReads()
            deliverQueued(context: context)
        case .closeWhenFlushed:
            // Close once everything written so far has gone out.
            flushOutput(context: context)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    /// The request's exchange has ended: its numbers go into the facts, and the request ends.
    private func requestEnded(status: UInt, exchange: ProxyExchange) {
        facts.requestBodyBytes = bodyLength(exchange)
        facts.status = status
        facts.responseBodyBytes = exchange.responseBodyBytes
        facts.attempts = exchange.attempts
        if exchange.plan != nil { facts.target = exchange.target }
        facts.upstreamSentNs = exchange.upstreamSentNs
        facts.upstreamHeadNs = exchange.upstreamHeadNs
        facts.clientHeadNs = exchange.clientHeadNs
        facts.usage = finishedUsage()
        if let id = exchange.upstreamRequestID { facts.upstreamRequestID = id }
        endRequest()
        releasePermit()
    }

    /// The one place a request ends.
    private func endRequest() {
        worker.requestEnded(&facts) { [self] in clientIP }
    }

    /// Bytes of request body received; absent (as Fluxgate logs it) for a request without a body.
    private func bodyLength(_ exchange: ProxyExchange) -> Int? {
        exchange.requestBodyBytes > 0 || exchange.requestHadBody ? exchange.requestBodyBytes : nil
    }

    private func deadlinePassed() {
        switch state.expired() {
        case .close: context?.close(promise: nil)
        case .exchange: exchange?.deadlinePassed()
        }
    }

    private func releasePermit() {
        if let hold = rateLimitHold {
            rateLimitHold = nil
            hold.release()
            hold.settle(facts.usage)
        }
        guard permitHeld else { return }
        permitHeld = false
        worker.limiter.release()
    }
}
