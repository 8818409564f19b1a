import NIOCore

/// Sits in front of the HTTP decoder of a client connection and closes it when it is idle too
/// long: `idleKeepAliveTimeoutMs` with no request in progress, or `headerReadTimeoutMs` from the
/// first byte of a request head (or from acceptance) until the head is decoded (slowloris guard).
/// It only sees raw bytes, so `ClientConnectionHandler` tells it when a head arrived and when a
/// response ended.
final class ClientIdleHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum State {
        /// Waiting for the first byte of the next request.
        case idle
        /// Bytes of a request head have arrived; the head is not complete yet.
        case readingHead
        case inRequest
    }

    private let limits: WorkerLimits
    private var state = State.idle
    private var timer: LazyTimer?
    private var context: ChannelHandlerContext?

    init(limits: WorkerLimits) { self.limits = limits }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let timer = LazyTimer(eventLoop: context.eventLoop)
        // Unowned: the timer is invalidated in handlerRemoved, before this handler can go away.
        timer.onExpiry = { [unowned self] in self.expired() }
        self.timer = timer
        // From acceptance the client has the header timeout to send a complete head.
        arm(limits.headerReadTimeoutMs)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.invalidate()
        timer = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .idle = state {
            state = .readingHead
            arm(limits.headerReadTimeoutMs)
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.invalidate()
        context.fireChannelInactive()
    }

    func requestHeadReceived() {
        state = .inRequest
        // The exchange's own deadlines take over; this one is cleared without a cancellation.
        timer?.set(nil)
    }

    /// Closes the connection after `grace` if it is still waiting for a request then (a request
    /// that starts in time gets the header timeout, and the connection closes after its response).
    func closeIfIdle(after grace: TimeAmount) {
        guard case .idle = state else { return }
        timer?.set(in: grace)
    }

    func exchangeFinished() {
        state = .idle
        arm(limits.idleKeepAliveTimeoutMs)
    }

    private func arm(_ milliseconds: Int64) {
        timer?.set(in: .milliseconds(milliseconds))
    }

    private func expired() {
        guard let context else { return }
        if case .inRequest = state { return }
        context.close(promise: nil)
    }
}
