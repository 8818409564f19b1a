import NIOCore

/// TLS for one connection, client or server side: the first handler of the pipeline (nearest the
/// socket), ciphertext below, plaintext above, so the HTTP codecs above it are the same as on a
/// plain connection.
///
/// Backpressure is the plain connection's: this handler never reads the socket on its own once
/// the handshake is done (a `read` from above is passed down unchanged), every socket read is
/// decrypted completely before the next, and ciphertext is written out as soon as OpenSSL
/// produces it. So neither memory BIO holds more than one socket read or one write, and channel
/// writability reflects the ciphertext waiting for the socket.
final class TLSHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case idle
        case handshaking
        case active
        /// No more TLS traffic: closed by us or the peer, or failed.
        case closed
    }

    let connection: TLSConnection
    private let handshakeTimeout: TimeAmount
    private var state = State.idle
    private let handshakePromise: EventLoopPromise<Void>
    private var handshakeTimer: Scheduled<Void>?
    /// Plaintext written from above before the handshake completed (sent once it has).
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var pendingFlush = false

    /// Succeeds when the handshake (with verification) completes; fails with a `TLSError`.
    var handshakeFuture: EventLoopFuture<Void> { handshakePromise.futureResult }

    init(connection: TLSConnection, eventLoop: EventLoop, handshakeTimeout: TimeAmount) {
        self.connection = connection
        self.handshakeTimeout = handshakeTimeout
        self.handshakePromise = eventLoop.makePromise()
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startHandshake(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        handshakePromise.fail(TLSError.closedDuringHandshake)  // no-op if already completed
        failPendingWrites(ChannelError.ioOnClosedChannel)
    }

    func channelActive(context: ChannelHandlerContext) {
        startHandshake(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        let previous = state
        state = .closed
        failPendingWrites(ChannelError.ioOnClosedChannel)
        switch previous {
        case .idle, .handshaking:
            handshakePromise.fail(TLSError.closedDuringHandshake)
        case .active:
            // The socket ended and no close_notify came first (that would have moved us to
            // .closed). Reported before channelInactive so that the layer above can tell a cut
            // stream from a response that ends at connection close (RFC 9112 §6.3 item 8).
            context.fireErrorCaught(TLSError.truncated)
        case .closed:
            break
        }
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let ciphertext = unwrapInboundIn(data)
        switch state {
        case .idle, .handshaking:
            connection.feed(ciphertext)
            state = .handshaking
            driveHandshake(context: context)
        case .active:
            connection.feed(ciphertext)
            deliverPlaintext(context: context)
        case .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // During the handshake nothing was passed up, so there is nothing to complete.
        if case .active = state { context.fireChannelReadComplete() }
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let plaintext = unwrapOutboundIn(data)
        switch state {
        case .idle, .handshaking:
            pendingWrites.append((plaintext, promise))
        case .active:
            encrypt(plaintext, promise: promise, context: context)
        case .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    func flush(context: ChannelHandlerContext) {
        switch state {
        case .idle, .handshaking: pendingFlush = true
        case .active, .closed: context.flush()
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if case .active = state, mode != .input {
            // close_notify tells the peer the stream ended here and was not cut. It is written
            // and flushed before the close: NIO writes a flushed buffer at once when the socket
            // can take it, which it can unless the peer stopped reading (then it is dropped,
            // which the peer sees as a truncation: correct, we are cutting it off).
            state = .closed
            connection.shutdown()
            writeCiphertext(context: context, promise: nil)
            context.flush()
        }
        if mode == .all { state = .closed }
        failPendingWrites(ChannelError.ioOnClosedChannel)
        context.close(mode: mode, promise: promise)
    }

    // MARK: Internals

    private func startHandshake(context: ChannelHandlerContext) {
        guard case .idle = state else { return }
        state = .handshaking
        handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: handshakeTimeout) { [weak self] in
            guard let self, case .handshaking = self.state else { return }
            self.fail(.handshakeTimeout, context: context)
        }
        // A client speaks first (ClientHello); a server's first call just says WANT_READ.
        driveHandshake(context: context)
    }

    private func driveHandshake(context: ChannelHandlerContext) {
        let step = connection.handshake()
        // Whatever the step, OpenSSL may have produced records: the next flight, or an alert
        // telling the peer why we fail.
        writeCiphertext(context: context, promise: nil)
        context.flush()
        switch step {
        case .wantRead:
            // We need the peer's next flight whatever the layer above wants.
            context.read()
        case .failed(let error):
            fail(error, context: context)
        case .done:
            state = .active
            handshakeTimer?.cancel()
            handshakeTimer = nil
            handshakePromise.succeed(())
            let writes = pendingWrites
            pendingWrites = []
            for (buffer, promise) in writes { encrypt(buffer, promise: promise, context: context) }
            if pendingFlush {
                pendingFlush = false
                context.flush()
            }
            // Application data may have arrived with the peer's last handshake flight.
            if case .active = state { deliverPlaintext(context: context) }
        }
    }

    /// Decrypts everything fed so far and passes it up in one buffer.
    private func deliverPlaintext(context: ChannelHandlerContext) {
        var plaintext = context.channel.allocator.buffer(capacity: 0)
        let result = connection.readPlaintext(into: &plaintext)
        // SSL_read can produce records too (a TLS 1.3 KeyUpdate answer).
        writeCiphertext(context: context, promise: nil)
        if plaintext.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(plaintext)) }
        guard case .active = state else { return }  // the layer above may have closed meanwhile
        switch result {
        case .wantRead:
            break
        case .closeNotify:
            // A clean end of stream: answer with ours and close (we do not support half-close
            // over TLS; neither do the HTTP/1.1 codecs above).
            state = .closed
            connection.shutdown()
            writeCiphertext(context: context, promise: nil)
            context.flush()
            context.close(promise: nil)
        case .failed(let error):
            fail(error, context: context)
        }
    }

    private func encrypt(_ plaintext: ByteBuffer, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext) {
        guard plaintext.readableBytes > 0 else {
            // Nothing to encrypt; keep write ordering by riding on the next ciphertext write.
            writeCiphertext(context: context, promise: promise)
            return
        }
        if let error = connection.write(plaintext) {
            promise?.fail(error)
            fail(error, context: context)
            return
        }
        writeCiphertext(context: context, promise: promise)
    }

    private func writeCiphertext(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        if let ciphertext = connection.takeCiphertext(allocator: context.channel.allocator) {
            context.write(wrapOutboundOut(ciphertext), promise: promise)
        } else if let promise {
            // An empty write from above: complete it after anything already queued.
            context.write(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
        }
    }

    private func fail(_ error: TLSError, context: ChannelHandlerContext) {
        state = .closed
        handshakeTimer?.cancel()
        handshakeTimer = nil
        handshakePromise.fail(error)
        failPendingWrites(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func failPendingWrites(_ error: Error) {
        let writes = pendingWrites
        pendingWrites = []
        for (_, promise) in writes { promise?.fail(error) }
    }
}
