import Common
import Logging
import NIOCore
import NIOPosix

/// What the control channel asks of the data plane. `WorkerListeners` implements it; the control
/// code knows nothing about HTTP.
protocol DataPlane: AnyObject, Sendable {
    /// Begin accepting (a worker started with `--standby` waits for the master's word).
    func startAccepting() async throws
    /// Swap the configuration snapshot for new requests (in-flight ones keep theirs). The future
    /// succeeds once every request whose head arrives from then on uses it, and fails (changing
    /// nothing) when the configuration cannot be applied, e.g. an unusable listener certificate.
    func apply(_ configuration: Configuration) -> EventLoopFuture<Void>
    /// Stop accepting (`stopped` completes when every listener is closed, lent ones included), let
    /// in-flight requests finish until the deadline (`done`).
    func drainReportingStop(deadlineMs: UInt64) -> (stopped: EventLoopFuture<Void>, done: EventLoopFuture<Void>)
    /// Accept on a socket the master lent (`listener` is its number), with the current
    /// configuration. Throws when it cannot; the descriptor is then closed.
    func adopt(borrowed listener: Int, descriptor: CInt) async throws
    /// Stop accepting on a lent socket; the connections accepted on it go on. Completes once the
    /// socket is closed (at once when it is not held).
    func release(borrowed listener: Int) -> EventLoopFuture<Void>
}

/// The first `applyConfig`, read with blocking reads before the event loop starts: a worker has
/// nothing to serve until it knows its configuration. Reads exactly one frame (length, then
/// payload), so a message the master sent right after it stays in the socket for the event loop.
enum InitialConfiguration {
    enum Failure: Error, CustomStringConvertible {
        case channelClosed
        case unexpected(ControlMessage.Kind)

        var description: String {
            switch self {
            case .channelClosed: return "the master closed the control channel before sending a configuration"
            case .unexpected(let kind): return "expected applyConfig as the first control message, got \(kind.rawValue)"
            }
        }
    }

    static func receive(from control: Common.FileDescriptor) throws -> (message: ControlMessage, configuration: Configuration) {
        var decoder = ControlFrameDecoder()
        let header = try readExactly(4, from: control)
        let length = header.reduce(0) { $0 << 8 | Int($1) }
        guard length <= ControlFrame.maxPayload else { throw ControlProtocolError.frameTooLarge(length) }
        decoder.feed(header)
        decoder.feed(try readExactly(length, from: control))
        guard let message = try decoder.next() else { throw Failure.channelClosed }
        guard message.type == .applyConfig, let configuration = message.body.config else {
            throw Failure.unexpected(message.type)
        }
        return (message, configuration)
    }

    private static func readExactly(_ count: Int, from fd: Common.FileDescriptor) throws -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        var buffer = [UInt8](repeating: 0, count: min(max(count, 1), 64 * 1024))
        while result.count < count {
            var chunk = [UInt8](repeating: 0, count: min(buffer.count, count - result.count))
            let n = try fd.read(into: &chunk)
            guard n > 0 else { throw Failure.channelClosed }
            result += chunk[0..<n]
            buffer = chunk
        }
        return result
    }
}

/// The shell around `WorkerControlState`: master → worker messages, the heartbeat timer and the
/// data plane's completions go in as events; the actions come out as writes, data-plane calls,
/// log lines and the exit. Everything runs on the control channel's event loop.
final class ControlChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var decoder = ControlFrameDecoder()
    private var state: WorkerControlState
    private let dataPlane: DataPlane
    /// The hand-over channel (fd 6), where lent sockets arrive before their `adoptListener`.
    private let handover: Common.FileDescriptor
    private let logger: Logger
    private let exit: @Sendable (Int32) -> Void
    private var heartbeat: RepeatedTask?

    init(
        dataPlane: DataPlane, standby: Bool, handover: Common.FileDescriptor, logger: Logger,
        exit: @escaping @Sendable (Int32) -> Void
    ) {
        self.state = WorkerControlState(standby: standby, startedAt: .now())
        self.dataPlane = dataPlane
        self.handover = handover
        self.logger = logger
        self.exit = exit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Scheduled after `state` read its start instant, and NIO reschedules a full interval after
        // each run: every tick lands at or after the heartbeat the state has due.
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let interval = WorkerControlState.heartbeatInterval
        heartbeat = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let (handler, context) = loopBound.value
            handler.receive(.tick, context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        heartbeat?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        decoder.feed(bytes.readableBytesView)
        do {
            while let message = try decoder.next() { receive(.messageReceived(message), context: context) }
        } catch {
            receive(.protocolError("\(error)"), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        heartbeat?.cancel()
        receive(.channelClosed, context: context)
    }

    private func receive(_ event: WorkerControlEvent, context: ChannelHandlerContext) {
        for action in state.handle(event, now: .now()) { perform(action, context: context) }
    }

    private func perform(_ action: WorkerControlAction, context: ChannelHandlerContext) {
        switch action {
        case .apply(let configuration, let generation): apply(configuration, generation: generation, context: context)
        case .send(let message): send(message, context: context)
        case .startAccepting: startAccepting(context: context)
        case .drain(let deadlineMs): drain(deadlineMs: deadlineMs, context: context)
        case .adoptListener(let listener): adopt(listener, context: context)
        case .discardListener(let listener): (try? Sockets.receiveDescriptor(tag: listener, from: handover))?.close()
        case .releaseListener(let listener): release(listener, context: context)
        case .closeChannel: context.close(promise: nil)
        case .log(let entry): log(entry)
        case .exit(let code): exit(code.rawValue)
        }
    }

    private func apply(_ configuration: Configuration, generation: UInt64, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        dataPlane.apply(configuration).hop(to: context.eventLoop).whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success: handler.receive(.configurationApplied(generation: generation), context: context)
            case .failure(let error):
                handler.receive(.configurationFailed(generation: generation, reason: "\(error)"), context: context)
            }
        }
    }

    private func startAccepting(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let dataPlane = self.dataPlane
        context.eventLoop.makeFutureWithTask { try await dataPlane.startAccepting() }.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success: handler.receive(.listenerAdopted, context: context)
            case .failure(let error): handler.receive(.listenerAdoptionFailed("\(error)"), context: context)
            }
        }
    }

    private func adopt(_ listener: Int, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let descriptor: Common.FileDescriptor
        do {
            descriptor = try Sockets.receiveDescriptor(tag: listener, from: handover)
        } catch {
            receive(.borrowedListenerFailed(listener: listener, reason: "\(error)"), context: context)
            return
        }
        let dataPlane = self.dataPlane
        context.eventLoop.makeFutureWithTask { try await dataPlane.adopt(borrowed: listener, descriptor: descriptor.rawValue) }
            .whenFailure { error in
                let (handler, context) = loopBound.value
                handler.receive(.borrowedListenerFailed(listener: listener, reason: "\(error)"), context: context)
            }
    }

    private func release(_ listener: Int, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        dataPlane.release(borrowed: listener).hop(to: context.eventLoop).whenComplete { _ in
            let (handler, context) = loopBound.value
            handler.receive(.borrowedListenerReleased(listener: listener), context: context)
        }
    }

    private func drain(deadlineMs: UInt64, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let (stopped, done) = dataPlane.drainReportingStop(deadlineMs: deadlineMs)
        stopped.hop(to: context.eventLoop).whenComplete { _ in
            let (handler, context) = loopBound.value
            handler.receive(.listenersClosed, context: context)
        }
        done.hop(to: context.eventLoop).whenComplete { _ in
            let (handler, context) = loopBound.value
            handler.receive(.drainFinished, context: context)
        }
    }

    private func send(_ message: ControlMessage, context: ChannelHandlerContext) {
        guard context.channel.isActive, let frame = try? ControlFrame.encode(message) else { return }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: frame)), promise: nil)
    }

    private func log(_ entry: WorkerControlLog) {
        switch entry {
        case .unexpectedMessage(let kind):
            logger.warning("Unexpected control message from the master", metadata: ["type": "\(kind.rawValue)"])
        case .masterGone:
            logger.warning("Master is gone (control channel closed); draining and exiting")
        case .protocolError(let description):
            logger.error("Control channel protocol error; closing", metadata: ["error": "\(description)"])
        case .startAcceptingFailed(let description):
            logger.error("Worker failed to start accepting", metadata: ["error": "\(description)"])
        case .borrowedListenerFailed(let description):
            logger.error("Worker could not accept on a lent socket", metadata: ["error": "\(description)"])
        }
    }
}
