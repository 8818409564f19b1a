import Common
import Logging
import NIOCore
import NIOPosix

/// What the control channel asks of the data plane. `WorkerListeners` implements it; the control
/// code knows nothing about HTTP.
protocol DataPlane: AnyObject, Sendable {
    /// Begin accepting (a worker started with `--standby` waits for the master's word).
    func startAccepting() async throws
    /// Swap the configuration snapshot for new requests (in-flight ones keep theirs).
    func apply(_ configuration: Configuration)
    /// Stop accepting (`stopped` completes when every listener is closed), let in-flight requests
    /// finish until the deadline (`done`).
    func drainReportingStop(deadlineMs: UInt64) -> (stopped: EventLoopFuture<Void>, done: EventLoopFuture<Void>)
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

/// Master → worker messages on the worker's event loop, replies back, a heartbeat every second.
/// EOF on the channel means the master is gone: drain and exit (lifecycle.md).
final class ControlChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var decoder = ControlFrameDecoder()
    private let dataPlane: DataPlane
    private let logger: Logger
    private let exit: @Sendable (Int32) -> Void
    private var sequence: UInt64 = 1
    private var generation: UInt64
    private var draining = false
    private var heartbeat: RepeatedTask?
    /// Drain deadline when the master vanishes without saying anything.
    static let orphanDrainMs: UInt64 = 30_000
    static let heartbeatInterval: TimeAmount = .seconds(1)

    init(dataPlane: DataPlane, generation: UInt64, logger: Logger, exit: @escaping @Sendable (Int32) -> Void) {
        self.dataPlane = dataPlane
        self.generation = generation
        self.logger = logger
        self.exit = exit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        heartbeat = context.eventLoop.scheduleRepeatedTask(initialDelay: Self.heartbeatInterval, delay: Self.heartbeatInterval) { _ in
            let (handler, context) = loopBound.value
            handler.send(.heartbeat, ack: nil, gen: handler.generation, context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        heartbeat?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        decoder.feed(bytes.readableBytesView)
        do {
            while let message = try decoder.next() { handle(message, context: context) }
        } catch {
            logger.error("Control channel protocol error; closing", metadata: ["error": .quoted("\(error)")])
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        heartbeat?.cancel()
        guard !draining else { return }
        logger.warning("Master is gone (control channel closed); draining and exiting")
        drain(deadlineMs: Self.orphanDrainMs, request: nil, context: context)
    }

    private func handle(_ message: ControlMessage, context: ChannelHandlerContext) {
        switch message.type {
        case .applyConfig:
            guard let configuration = message.body.config else {
                send(.configRejected, ack: message.seq, gen: message.gen, body: .init(error: "applyConfig without a configuration"), context: context)
                return
            }
            dataPlane.apply(configuration)
            generation = message.gen
            send(.configApplied, ack: message.seq, gen: message.gen, context: context)
        case .startAccepting:
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let dataPlane = self.dataPlane
            context.eventLoop.makeFutureWithTask { try await dataPlane.startAccepting() }.whenFailure { error in
                let (handler, _) = loopBound.value
                handler.logger.error("Worker failed to start accepting", metadata: ["error": .quoted("\(error)")])
                handler.exit(FluxgateExit.failure.rawValue)
            }
        case .drain:
            drain(deadlineMs: message.body.deadlineMs ?? Self.orphanDrainMs, request: message, context: context)
        case .stop:
            exit(FluxgateExit.success.rawValue)
        case .reopenLogs:
            break  // stdout is inherited; nothing to reopen yet
        case .hello, .ready, .configApplied, .configRejected, .heartbeat, .drained, .stoppedAccepting:
            logger.warning("Unexpected control message from the master", metadata: ["type": "\(message.type.rawValue)"])
        }
    }

    private func drain(deadlineMs: UInt64, request: ControlMessage?, context: ChannelHandlerContext) {
        guard !draining else { return }
        draining = true
        let exit = self.exit
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let (stopped, done) = dataPlane.drainReportingStop(deadlineMs: deadlineMs)
        stopped.hop(to: context.eventLoop).whenComplete { _ in
            guard let request else { return }
            let (handler, context) = loopBound.value
            handler.send(.stoppedAccepting, ack: request.seq, gen: handler.generation, context: context)
        }
        done.hop(to: context.eventLoop).whenComplete { _ in
            if let request {
                let (handler, context) = loopBound.value
                handler.send(.drained, ack: request.seq, gen: handler.generation, context: context)
            }
            exit(FluxgateExit.success.rawValue)
        }
    }

    func send(_ kind: ControlMessage.Kind, ack: UInt64?, gen: UInt64, body: ControlMessage.Body = .init(),
              context: ChannelHandlerContext) {
        sequence += 1
        let message = ControlMessage(type: kind, seq: sequence, ack: ack, gen: gen, body: body)
        guard context.channel.isActive, let frame = try? ControlFrame.encode(message) else { return }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: frame)), promise: nil)
    }
}
