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
    /// A proxy-made error in place of the upstream's response (nothing was sent to the client yet).
    func exchangeFailedBeforeResponse(_ error: ProxyErrorResponse)
    /// The upstream's response is complete (and written). The exchange has already let go of
    /// its upstream connection.
    func exchangeCompleted()
    /// The response was cut after its head: the client connection must be closed.
    func exchangeAborted()
}

/// One forwarded request: leases an upstream connection, streams the request body up and the
/// response down with backpressure on both sides, enforces the header deadline and the idle gap
/// between response chunks, and hands the connection back to the pool only when the exchange
/// ended cleanly. Lives on the worker's event loop only.
final class ProxyExchange: UpstreamConnectionDelegate {
    struct Parameters {
        /// The matched route (the upstream, its origin and `Host` value) and the pieces of the
        /// upstream request-target.
        var match: Router.Match
        /// The client's request head, as received (its framing is the upstream's too).
        var head: RequestHead
        var requestTimeout: TimeAmount
        var streamIdleTimeout: TimeAmount
        var replayBufferBytes: Int
    }

    private enum State {
        case connecting
        case connected(UpstreamConnection)
        case done
    }

    private let eventLoop: EventLoop
    private let pool: UpstreamPool
    private let parameters: Parameters
    /// Strong: the client side drops its exchange when the exchange ends, which ends the cycle.
    /// (A weak reference would give every exchange a side table, and every retain and release
    /// of it the slow path.)
    private var client: ClientSide?
    private var state = State.connecting

    /// Request parts received from the client while no connection is ready yet.
    private var pending: [RequestPart] = []
    /// Request parts already sent on a reused connection, kept until the first response byte so
    /// the request can be replayed on a fresh connection if the upstream had closed the reused one
    /// while it sat idle. nil once replay is impossible (too large, response started, retried).
    private var replay: [RequestPart]?
    private var replayBytes = 0
    private var retried = false
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
    private var reader: UpstreamResponseReader
    private var upstreamErrored = false
    private(set) var requestEndReceived = false
    private var requestEndSent = false
    private var responseHeadReceived = false
    private var upstreamKeepAlive = true
    private var lastResponseActivity = NIODeadline.now()
    /// The client connection's exchange timer (one per connection, re-armed lazily): the response
    /// head deadline, then the idle gap between response chunks. The client side calls
    /// `deadlinePassed` when it expires.
    private let timer: LazyTimer

    init(eventLoop: EventLoop, pool: UpstreamPool, client: ClientSide, timer: LazyTimer, parameters: Parameters) {
        self.eventLoop = eventLoop
        self.pool = pool
        self.client = client
        self.timer = timer
        self.parameters = parameters
        self.reader = UpstreamResponseReader(requestMethodIsHEAD: parameters.head.method == .HEAD)
        self.requestFraming = parameters.head.facts.framing
    }

    // MARK: Client side

    func start() {
        timer.set(in: parameters.requestTimeout)
        lease(fresh: false)
    }

    /// Backpressure toward the client: read more only when the upstream can take it.
    var mayReadClient: Bool {
        guard case .connected(let connection) = state else { return pending.isEmpty }
        return connection.channel.isWritable
    }

    func clientBody(_ buffer: ByteBuffer) {
        requestBodyBytes += buffer.readableBytes
        send(.body(buffer))
    }

    func clientEnd() {
        requestEndReceived = true
        send(.end)
    }

    func clientReadComplete() {
        guard case .connected(let connection) = state else { return }
        sendHeldHead(on: connection)
        connection.handler.flush()
    }

    func clientWritabilityChanged(isWritable: Bool) {
        if isWritable, case .connected(let connection) = state { connection.handler.resumeReading() }
    }

    /// The client went away: cancel the upstream exchange and never reuse its connection.
    func clientClosed() {
        finish(reusable: false)
    }

    // MARK: Upstream side

    var upstreamMayRead: Bool { client?.clientIsWritable ?? true }

    func upstreamRead(_ bytes: ByteBuffer) {
        guard case .connected(let connection) = state, let client else { return }
        lastResponseActivity = .now()
        // The client head, held during this read so body bytes of the same read are appended to
        // it (the reader made room): one write to the client instead of two for a small response.
        // Two plain variables, not an optional tuple: the tuple's copies and destroys went
        // through generic value witnesses (~450 instructions per response).
        var held: ByteBuffer?
        var heldAnnouncesClose = false
        func writeHeld() {
            guard let head = held else { return }
            held = nil
            client.writeResponseHead(head, announcesClose: heldAnnouncesClose)
        }
        do {
            reader.announcesClose = client.closesAfterResponse
            // The handler below must not touch `reader` (exclusive access while it reads).
            try reader.read(bytes, allocator: connection.allocator) { event in
                switch event {
                case .head(let head):
                    responseHeadReceived = true
                    replay = nil
                    upstreamKeepAlive = head.keepAlive
                    responseStatus = head.status
                    held = head.clientHead
                    heldAnnouncesClose = head.announcesClose
                    timer.set(lastResponseActivity + parameters.streamIdleTimeout)
                case .body(let body, let payload):
                    responseBodyBytes += payload
                    if held == nil || !Self.append(body, to: &held!, upTo: UpstreamResponseReader.maxBodyRoom) {
                        writeHeld()
                        client.writeResponseBody(body)
                    }
                case .end(let clean):
                    writeHeld()
                    // The connection is clean only if the upstream saw our whole request too.
                    finish(reusable: clean && upstreamKeepAlive && requestEndSent)
                    client.exchangeCompleted()
                }
            }
            writeHeld()
        } catch {
            writeHeld()
            upstreamErrored = true
            fail(responseHeadReceived ? nil : .upstreamFailed)
        }
    }

    func upstreamReadComplete() {
        client?.flushResponse()
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { client?.resumeClientReads() }
    }

    func upstreamFailed(_ error: Error) {
        // The channel closes right after; `upstreamClosed` decides what the client sees. Nothing
        // after an error is believed: a body that ends at the close must not complete when TLS
        // reported a truncation just before it.
        upstreamErrored = true
    }

    func upstreamClosed() {
        guard case .connected(let connection) = state else { return }
        if responseHeadReceived, reader.endsAtClose, !upstreamErrored, reader.closed(), let client {
            // A body delimited by the close is complete: end the chunked body this side made.
            client.writeResponseBody(ByteBuffer(staticString: UpstreamResponseReader.lastChunk))
            finish(reusable: false)
            client.exchangeCompleted()
            return
        }
        if !responseHeadReceived, connection.hasBeenUsed, !retried, let parts = replay {
            // The upstream closed a kept-alive connection before answering: it most likely did so
            // while the connection was idle, before our request arrived. Replay on a fresh one.
            retried = true
            reader = UpstreamResponseReader(requestMethodIsHEAD: parameters.head.method == .HEAD)
            pending = parts + pending
            replay = nil
            state = .connecting
            lease(fresh: true)
            return
        }
        fail(responseHeadReceived ? nil : .upstreamFailed)
    }

    // MARK: Internals

    private func lease(fresh: Bool) {
        let route = parameters.match.route
        if !fresh, let connection = pool.idleConnection(for: route) {
            // Called while the client's read is being delivered (head first, then any body bytes
            // of the same read): the client side's read-complete flushes head and body together,
            // one write to the upstream instead of two.
            connected(connection, flushNow: !(client?.clientReadInProgress ?? false))
            return
        }
        pool.connect(for: route).assumeIsolated().whenComplete { [weak self] result in
            guard let self else {
                if case .success(let connection) = result { connection.channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let connection):
                self.connected(connection, flushNow: true)
            case .failure(let error):
                // A TLS failure says what failed (expired, untrusted, wrong host); the rest is
                // "unreachable" (refused, DNS, connect timeout).
                self.fail((error as? TLSError).map(ProxyErrorResponse.upstreamTLS) ?? .upstreamUnreachable)
            }
        }
    }

    private func connected(_ connection: UpstreamConnection, flushNow: Bool) {
        guard case .connecting = state else {
            // Finished while connecting (client gone, deadline passed): the connection is clean.
            pool.release(connection, reusable: true)
            return
        }
        guard connection.channel.isActive || retried else {
            // The upstream closed this pooled connection before we wrote a byte on it: take a
            // fresh one. Nothing was sent, so this is safe for any method.
            retried = true
            pool.release(connection, reusable: false)
            lease(fresh: true)
            return
        }
        state = .connected(connection)
        connection.handler.delegate = self
        // Once bytes are written the upstream may have acted on them, so a replay is only for
        // idempotent methods (RFC 9110 §9.2.2), as nginx and Go's transport do: a POST to an LLM
        // is never sent twice. Idle closes are seen before reuse (the pool keeps a read pending on
        // idle connections), which leaves only a microsecond race for a POST to lose to.
        replay = connection.hasBeenUsed && !retried && Self.isIdempotent(parameters.head.method) ? [] : nil
        replayBytes = 0
        // Room for a small body too (see `heldHead`).
        let length = parameters.head.facts.contentLength
        let bodyRoom = requestFraming == .contentLength && length <= Self.maxHeldBodyBytes ? length : 0
        var head = connection.allocator.buffer(capacity: 512 + bodyRoom)
        ForwardingHeaders.writeUpstreamRequestHead(
            method: parameters.head.method, match: parameters.match, client: parameters.head,
            framing: requestFraming, into: &head)
        let buffered = pending
        pending = []
        requestEndSent = false
        // The head is not kept for a replay: a replay writes a fresh one.
        if flushNow {
            connection.handler.send(head)
        } else {
            heldHead = head
        }
        for part in buffered { write(part, on: connection) }
        if flushNow {
            sendHeldHead(on: connection)
            connection.handler.flush()
        }
        client?.resumeClientReads()
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
        switch state {
        case .connecting: pending.append(part)
        case .connected(let connection): write(part, on: connection)
        case .done: break
        }
    }

    private func write(_ part: RequestPart, on connection: UpstreamConnection) {
        if replay != nil {
            if case .body(let buffer) = part { replayBytes += buffer.readableBytes }
            if replayBytes > parameters.replayBufferBytes { replay = nil } else { replay!.append(part) }
        }
        switch part {
        case .body(let buffer):
            guard buffer.readableBytes > 0 else { return }
            if heldHead != nil, requestFraming == .contentLength,
               Self.append(buffer, to: &heldHead!, upTo: Self.maxHeldBodyBytes) {
                return
            }
            sendHeldHead(on: connection)
            if requestFraming == .chunked {
                // The decoder removed the client's chunk framing; the upstream gets it again.
                var size = connection.allocator.buffer(capacity: 12)
                size.writeString(String(buffer.readableBytes, radix: 16))
                size.writeStaticString("\r\n")
                connection.handler.send(size)
                connection.handler.send(buffer)
                connection.handler.send(Self.crlf)
            } else {
                connection.handler.send(buffer)
            }
        case .end:
            requestEndSent = true
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
        guard let head = heldHead else { return }
        heldHead = nil
        connection.handler.send(head)
    }

    private static let crlf = ByteBuffer(staticString: "\r\n")
    private static let lastChunk = ByteBuffer(staticString: "0\r\n\r\n")

    /// The timer's deadline passed: before the response head it is the request timeout; after
    /// it, the stream idle timeout, unless a chunk arrived since the timer was set.
    func deadlinePassed() {
        guard case .connected = state else {
            if case .connecting = state { fail(.upstreamTimeout) }
            return
        }
        guard responseHeadReceived else { return fail(.upstreamTimeout) }
        let idleUntil = lastResponseActivity + parameters.streamIdleTimeout
        if idleUntil <= .now() {
            fail(nil)
        } else {
            timer.set(idleUntil)
        }
    }

    /// `error` is what the client gets when nothing of the response was sent yet; nil when the
    /// response had started (the client connection is then cut).
    private func fail(_ error: ProxyErrorResponse?) {
        guard !isDone else { return }
        let started = responseHeadReceived
        finish(reusable: false)
        if started || error == nil {
            client?.exchangeAborted()
        } else if let error {
            client?.exchangeFailedBeforeResponse(error)
        }
    }

    private var isDone: Bool { if case .done = state { return true } else { return false } }

    private func finish(reusable: Bool) {
        let previous = state
        state = .done
        timer.set(nil)
        pending = []
        replay = nil
        if case .connected(let connection) = previous {
            connection.handler.delegate = nil
            pool.release(connection, reusable: reusable)
        }
    }
}
