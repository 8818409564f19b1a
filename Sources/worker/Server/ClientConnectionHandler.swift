import Common
import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// The last handler of a client connection: reads requests from the connection's bytes with
/// `RequestParser`, runs the checks of behaviour §5 in order, then hands each request to a
/// `ProxyExchange`. Response bytes go out through a `SocketOutput` (on http straight to the socket).
///
/// Pipelined requests are answered in order: parts of a request that arrive while the previous
/// response is still going out are queued (and reading stops) until that response ends. This
/// replaces NIO's `HTTPServerPipelineHandler`, which withholds `read()` for the whole wait on
/// every request, so the socket's read interest was dropped and re-added around each response:
/// two `epoll_ctl` calls per request. Here the read interest stays while nothing is queued.
final class ClientConnectionHandler: ChannelDuplexHandler, ClientSide, SocketOutputOwner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let worker: WorkerLoopState
    var output: SocketOutput
    /// Where the connection is between requests, for its deadlines (see `timer`).
    private var phase = Phase.idle

    private enum Phase {
        /// Waiting for the first byte of the next request: the keep-alive timeout runs (or the
        /// header timeout, from acceptance).
        case idle
        /// Bytes of a request head have arrived, not the whole head: the header timeout runs.
        case readingHead
        /// From a complete head until the response has ended and the request has been read:
        /// the exchange's deadlines run (request timeout, idle gap between response chunks).
        case inRequest
        /// The response has ended before the request body did; the rest of the body is read and
        /// dropped until the body discard timeout.
        case discardingBody
    }
    private var context: ChannelHandlerContext?
    /// The peer's address, kept at acceptance (NIO forgets it at close); its text is made the
    /// first time a request line needs it (~3,000 instructions, a tenth of an accept).
    private var remoteAddress: SocketAddress?
    private lazy var clientIP: String? = remoteAddress?.ipAddress
    private var parser: RequestParser

    private var exchange: ProxyExchange?
    /// The response of the current request is complete; drop request parts until its `.end`.
    private var discardingRequest = false
    private var requestInProgress = false
    /// The current request has been received whole; its response has not ended yet.
    private var awaitingResponse = false
    /// Parts of pipelined requests that arrived while `awaitingResponse`, delivered in order once
    /// the response ends. Reading stops while any are queued.
    private var queued: [RequestEvent] = []
    /// The last response said `connection: close` and is complete: nothing more is read.
    private var closing = false
    private var draining = false
    /// Shutting down: close once the current response (if any) is complete.
    private var quiescing = false
    /// How long an idle keep-alive connection of a draining worker may still start a request.
    static let drainIdleGrace: TimeAmount = .seconds(1)
    private var closeAfterResponse = false
    /// The current response's head said `connection: close`.
    private var closeAnnounced = false
    private var permitHeld = false
    private var readPending = false
    private var record = RequestLogRecord()
    /// The current request's route and upstream target, for the record's `target_url` (joined
    /// only when the line is written).
    private var match: Router.Match?
    private var started = NIODeadline.now()
    /// Set from a read's delivery until its read-complete (see `ClientSide.clientReadInProgress`).
    private(set) var clientReadInProgress = false
    /// The connection's one deadline: the keep-alive or header timeout between requests, the
    /// exchange's deadlines during one (the exchange sets it). On expiry the former closes the
    /// connection, the latter goes to the exchange.
    private var timer: LazyTimer?
    /// The credentials of this connection's last request and their outcome (see `authenticate`).
    private var lastAuthentication: CachedAuthentication?

    /// A class, so looking at it is one retain, not a copy of two strings and an outcome.
    private final class CachedAuthentication {
        let snapshot: WorkerSnapshot
        let authorization: String?
        let xAPIKey: String?
        let outcome: AuthOutcome

        init(snapshot: WorkerSnapshot, authorization: String?, xAPIKey: String?, outcome: AuthOutcome) {
            self.snapshot = snapshot
            self.authorization = authorization
            self.xAPIKey = xAPIKey
            self.outcome = outcome
        }
    }

    init(worker: WorkerLoopState, output: SocketOutput) {
        self.worker = worker
        self.output = output
        self.parser = RequestParser(limits: worker.limits.parser)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let timer = LazyTimer(eventLoop: context.eventLoop)
        // Unowned: the timer is invalidated in handlerRemoved, before this handler can go away.
        timer.onExpiry = { [unowned self] in self.deadlinePassed() }
        self.timer = timer
        // From acceptance the client has the header timeout to send a complete head.
        timer.set(in: .milliseconds(worker.limits.headerReadTimeoutMs))
        remoteAddress = context.channel.remoteAddress
        worker.clientConnections[ObjectIdentifier(context.channel)] = context.channel
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.invalidate()
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        clientReadInProgress = true
        if case .idle = phase {
            phase = .readingHead
            timer?.set(in: .milliseconds(worker.limits.headerReadTimeoutMs))
        }
        parser.append(unwrapInboundIn(data))
        while !closing, let event = parser.next() {
            if awaitingResponse || !queued.isEmpty {
                queued.append(event)
            } else {
                handle(event, context: context)
            }
        }
    }

    private func handle(_ event: RequestEvent, context: ChannelHandlerContext) {
        switch event {
        case .head(let head):
            requestHead(head, context: context)
        case .body(let buffer):
            if let exchange { exchange.clientBody(buffer) }
        case .end:
            if let exchange {
                awaitingResponse = true
                exchange.clientEnd()
            } else if discardingRequest {
                discardingRequest = false
                requestFinished()
            }
        case .malformed(let error):
            requestMalformed(ProxyErrorResponse(error), context: context)
        }
    }

    /// The previous response ended: hand queued pipelined parts on, in order, until one of them
    /// starts a request that has to wait again (or the connection is closing).
    private func deliverQueued(context: ChannelHandlerContext) {
        guard !draining, !queued.isEmpty else { return }
        draining = true
        clientReadInProgress = true
        while !queued.isEmpty, !awaitingResponse, !closing, context.channel.isActive {
            handle(queued.removeFirst(), context: context)
        }
        draining = false
        clientReadInProgress = false
        exchange?.clientReadComplete()
        flushOutput(context: context)
        if queued.isEmpty { resumeClientReads() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        // Graceful shutdown: a busy connection closes after its response, which says
        // `Connection: close`. An idle one is closed after a short grace unless a request starts
        // in it: a keep-alive client under load sends its next request within milliseconds, and
        // closing under it would fail that request; answered with `Connection: close`, it is not.
        quiescing = true
        closeAfterResponse = true
        if !requestInProgress && queued.isEmpty { closeIfIdle(after: Self.drainIdleGrace) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        clientReadInProgress = false
        // Flushes toward the upstream. Nothing toward the client: whatever is written to it in a
        // read (proxy-made responses, 100 Continue) is flushed where it is written.
        exchange?.clientReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        exchange?.clientWritabilityChanged(isWritable: context.channel.isWritable)
    }

    func channelInactive(context: ChannelHandlerContext) {
        worker.clientConnections[ObjectIdentifier(context.channel)] = nil
        timer?.invalidate()
        if let exchange {
            self.exchange = nil
            exchange.clientClosed()
            // nginx's 499: the client closed before the response was complete.
            logAndRelease(status: exchange.responseStatus ?? 499, exchange: exchange)
        }
        releasePermit()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// Bytes that are not a request (or not within the parser's limits): 400 (414, 431) and close
    /// (behaviour §5).
    private func requestMalformed(_ response: ProxyErrorResponse, context: ChannelHandlerContext) {
        if !requestInProgress {
            // The bytes that failed to parse are a new request: log it as one, not with the
            // previous request's fields.
            record = RequestLogRecord(clientIP: clientIP)
            match = nil
            started = .now()
        }
        if let exchange {
            self.exchange = nil
            exchange.clientClosed()
            logAndRelease(status: exchange.responseStatus ?? 400, exchange: exchange)
            if exchange.responseStatus != nil {
                context.close(promise: nil)
                return
            }
        } else if requestInProgress {
            // A response is already on its way for this request: just stop.
            context.close(promise: nil)
            return
        }
        closeAfterResponse = true
        writeError(response, requestComplete: true, context: context)
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if !queued.isEmpty {
            readPending = true
            return
        }
        if let exchange, !exchange.mayReadClient {
            readPending = true
            return
        }
        context.read()
    }

    // MARK: ClientSide

    func writeResponseHead(_ head: ByteBuffer, announcesClose: Bool) {
        closeAnnounced = announcesClose
        if let context { writeOutput(head, context: context) }
    }

    var closesAfterResponse: Bool { closeAfterResponse }

    func writeResponseBody(_ bytes: ByteBuffer) {
        if let context { writeOutput(bytes, context: context) }
    }

    func flushResponse() {
        if let context { flushOutput(context: context) }
    }

    var clientIsWritable: Bool { context?.channel.isWritable ?? false }

    func resumeClientReads() {
        guard readPending, queued.isEmpty, let context else { return }
        readPending = false
        context.read()
    }

    func exchangeFailedBeforeResponse(_ error: ProxyErrorResponse) {
        guard let context, let exchange else { return }
        self.exchange = nil
        record.requestBodyLength = bodyLength(exchange)
        writeError(error, requestComplete: exchange.requestEndReceived, context: context)
    }

    func exchangeCompleted() {
        guard let context, let exchange else { return }
        self.exchange = nil
        logAndRelease(status: exchange.responseStatus ?? 502, exchange: exchange)
        endResponse( requestComplete: exchange.requestEndReceived, context: context)
    }

    func exchangeAborted() {
        guard let exchange else { return }
        self.exchange = nil
        logAndRelease(status: exchange.responseStatus ?? 502, exchange: exchange)
        context?.close(promise: nil)
    }

    // MARK: Request handling

    /// Behaviour §5 "order of checks", one deliberate transaction: each rejection returns early.
    private func requestHead(_ request: RequestHead, context: ChannelHandlerContext) {
        phase = .inRequest
        // The exchange's deadlines take over; this one is cleared without a cancellation.
        timer?.set(nil)
        requestInProgress = true
        started = .now()
        // The record's strings are filled only when its line is written (without request lines,
        // making and dropping them cost ~5% of a proxied request's instructions).
        let logs = worker.logsRequests
        record = logs ? RequestLogRecord(clientIP: clientIP, method: request.method.rawValue, requestURL: request.uri)
            : RequestLogRecord()
        self.match = nil
        closeAfterResponse = !request.keepAlive || quiescing
        closeAnnounced = false
        discardingRequest = true

        if let rejection = RequestPreflight.check(request, limits: worker.limits) {
            if rejection == .notImplemented {
                // What follows an upgrade or CONNECT request is not HTTP/1.1: the connection
                // cannot carry another request.
                closeAfterResponse = true
            }
            return reject(rejection, context: context)
        }
        guard worker.limiter.tryAcquire() else { return reject(.overloaded, context: context) }
        permitHeld = true

        let snapshot = worker.snapshot
        guard case .allowed(let caller) = authenticate(request, snapshot: snapshot) else {
            return reject(.unauthorized, context: context)
        }
        if logs { record.apiKeyID = caller.keyID }
        if !snapshot.authenticator.required && snapshot.router.isEmpty {
            return reject(.noUpstreams, context: context)
        }
        let match: Router.Match
        switch snapshot.router.route(request, permitted: caller.permitted) {
        case .matched(let m): match = m
        case .noRoute: return reject(.noRoute, context: context)
        case .invalidPath: return reject(.invalidPath, context: context)
        }
        self.match = match
        if logs { record.upstream = match.route.upstream.name }

        if request.facts.expectsContinue {
            // The client holds its body back until told to send it (curl does for bodies over
            // 1 KiB, waiting a second otherwise): the request is accepted, so say so now.
            writeOutput(ByteBuffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n"), context: context)
            flushOutput(context: context)
        }
        guard let timer else { return }
        let exchange = ProxyExchange(
            eventLoop: context.eventLoop, pool: worker.pool, client: self, timer: timer,
            parameters: .init(
                match: match, head: request,
                requestTimeout: .milliseconds(Int64(clamping: snapshot.configuration.upstreams.requestTimeoutMs)),
                streamIdleTimeout: .milliseconds(Int64(clamping: snapshot.configuration.upstreams.streamIdleTimeoutMs)),
                replayBufferBytes: worker.limits.replayBufferBytes))
        self.exchange = exchange
        discardingRequest = false
        exchange.start()
    }

    /// Behaviour §3 for this request. A keep-alive client sends the same credentials with every
    /// request: when the outcome depends on the headers alone (no JWT keys) and this connection
    /// authenticated the very same headers under the same configuration, that outcome is reused
    /// instead of hashing the key again (SHA-256 through libcrypto: about 5% of the worker's
    /// instructions per request). The comparison is with what this client itself sent before,
    /// so its timing reveals nothing about the configured keys.
    private func authenticate(_ request: RequestHead, snapshot: WorkerSnapshot) -> AuthOutcome {
        let facts = request.facts
        // X-Api-Key counts only without Authorization.
        let xAPIKeyValue = facts.authorizationValue == nil ? facts.xAPIKeyValue : nil
        if let cached = lastAuthentication, cached.snapshot === snapshot,
           request.bytes(at: facts.authorizationValue, equal: cached.authorization),
           request.bytes(at: xAPIKeyValue, equal: cached.xAPIKey) {
            return cached.outcome
        }
        let authorization = request.authorization
        let xAPIKey = facts.authorizationValue == nil ? request.xAPIKey : nil
        let outcome = snapshot.authenticator.authenticate(
            authorizationHeader: authorization, xAPIKeyHeader: xAPIKey, now: Int64(time(nil)))
        lastAuthentication = snapshot.authenticator.outcomeDependsOnlyOnHeaders
            ? CachedAuthentication(snapshot: snapshot, authorization: authorization, xAPIKey: xAPIKey, outcome: outcome) : nil
        return outcome
    }

    private func reject(_ error: ProxyErrorResponse, context: ChannelHandlerContext) {
        writeError(error, requestComplete: false, context: context)
    }

    /// Writes a proxy-made response for the current request and logs it.
    private func writeError(_ error: ProxyErrorResponse, requestComplete: Bool, context: ChannelHandlerContext) {
        let (bytes, bodyLength) = error.wire(closeConnection: closeAfterResponse, allocator: context.channel.allocator)
        closeAnnounced = closeAfterResponse
        writeOutput(bytes, context: context)
        record.status = error.status.code
        record.responseBodyLength = bodyLength
        record.durationMs = durationMs()
        writeRequestLine()
        releasePermit()
        endResponse(requestComplete: requestComplete, context: context)
    }

    /// Writes the response's `.end`, then hands on a queued pipelined request, whose own
    /// response may end re-entrantly: every state change happens before.
    private func endResponse(requestComplete: Bool, context: ChannelHandlerContext) {
        discardingRequest = !requestComplete
        awaitingResponse = false
        if requestComplete {
            requestFinished()
        } else {
            // A client that stops sending the body it announced must not hold the connection.
            phase = .discardingBody
            timer?.set(in: .milliseconds(worker.limits.bodyDiscardTimeoutMs))
        }
        if closeAfterResponse && !closeAnnounced && requestComplete && quiescing {
            // The drain began after this response's head went out, so the client was not told
            // and may already be sending its next request: serve one more (it will say
            // `connection: close`), or close once the grace has passed with none.
            flushOutput(context: context)
            resumeClientReads()
            closeIfIdle(after: Self.drainIdleGrace)
            deliverQueued(context: context)
            return
        }
        if closeAfterResponse {
            queued = []
            closing = true
            // Close once everything written so far has gone out.
            flushOutput(context: context)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        flushOutput(context: context)
        resumeClientReads()
        deliverQueued(context: context)
    }

    private func logAndRelease(status: UInt, exchange: ProxyExchange) {
        record.requestBodyLength = bodyLength(exchange)
        record.status = status
        record.responseBodyLength = exchange.responseBodyBytes
        record.durationMs = durationMs()
        writeRequestLine()
        releasePermit()
    }

    private func writeRequestLine() {
        guard worker.logsRequests else { return }
        if let match, let uri = record.requestURL { record.targetURL = match.targetURL(uri: uri) }
        worker.log(record)
    }

    /// Bytes of request body received; absent (as Fluxgate logs it) for a request without a body.
    private func bodyLength(_ exchange: ProxyExchange) -> Int? {
        exchange.requestBodyBytes > 0 || exchange.requestHadBody ? exchange.requestBodyBytes : nil
    }

    /// Both the request and its response are complete: the connection is idle again.
    private func requestFinished() {
        requestInProgress = false
        phase = .idle
        timer?.set(in: .milliseconds(worker.limits.idleKeepAliveTimeoutMs))
    }

    /// Closes the connection after `grace` if it is still waiting for a request then (a request
    /// that starts in time gets the header timeout, and the connection closes after its response).
    private func closeIfIdle(after grace: TimeAmount) {
        guard case .idle = phase else { return }
        timer?.set(in: grace)
    }

    private func deadlinePassed() {
        switch phase {
        case .idle, .readingHead, .discardingBody:
            // Keep-alive, header or body discard timeout: close without a response (nginx does
            // the same).
            context?.close(promise: nil)
        case .inRequest:
            exchange?.deadlinePassed()
        }
    }

    private func releasePermit() {
        guard permitHeld else { return }
        permitHeld = false
        worker.limiter.release()
    }

    private func durationMs() -> Int64 {
        (NIODeadline.now() - started).nanoseconds / 1_000_000
    }
}
