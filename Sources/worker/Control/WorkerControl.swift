import Common
import Logging
import NIOCore
import NIOPosix

/// What the control channel asks of the data plane. The server implements it; the control code
/// knows nothing about HTTP.
protocol DataPlane: AnyObject, Sendable {
    /// Swap the configuration snapshot for new requests (in-flight ones keep theirs).
    func apply(_ configuration: Configuration)
    /// Stop accepting, let in-flight requests finish (closing keep-alive connections as they go
    /// idle) until the deadline, then complete.
    func drain(deadlineMs: UInt64) -> EventLoopFuture<Void>
}

extension WorkerServer: DataPlane {
    func drain(deadlineMs: UInt64) -> EventLoopFuture<Void> {
        eventLoop.makeFutureWithTask { await self.shutdown(gracePeriod: .milliseconds(Int64(deadlineMs))) }
    }
}

/// The first `applyConfig`, read with blocking reads before the event loop starts: a worker has
/// nothing to serve until it knows its configuration.
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
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let message = try decoder.next() {
                guard message.type == .applyConfig, let configuration = message.body.config else {
                    throw Failure.unexpected(message.type)
                }
                return (message, configuration)
            }
            let n = try control.read(into: &buffer)
            guard n > 0 else { throw Failure.channelClosed }
            decoder.feed(buffer[0..<n])
        }
    }
}

/// Master → worker messages on the worker's event loop, replies back. EOF on the channel means
/// the master is gone: drain and exit (lifecycle.md).
final class ControlChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var decoder = ControlFrameDecoder()
    private let dataPlane: DataPlane
    private let logger: Logger
    private let exit: (Int32) -> Void
    private var sequence: UInt64 = 0
    private var draining = false
    /// Drain deadline when the master vanishes without saying anything.
    static let orphanDrainMs: UInt64 = 30_000

    init(dataPlane: DataPlane, logger: Logger, exit: @escaping (Int32) -> Void) {
        self.dataPlane = dataPlane
        self.logger = logger
        self.exit = exit
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
        guard !draining else { return }
        logger.warning("Master is gone (control channel closed); draining and exiting")
        drain(deadlineMs: Self.orphanDrainMs, context: nil)
    }

    private func handle(_ message: ControlMessage, context: ChannelHandlerContext) {
        switch message.type {
        case .applyConfig:
            guard let configuration = message.body.config else {
                reply(.configRejected, to: message, body: .init(error: "applyConfig without a configuration"), context: context)
                return
            }
            dataPlane.apply(configuration)
            reply(.configApplied, to: message, context: context)
        case .drain:
            drain(deadlineMs: message.body.deadlineMs ?? Self.orphanDrainMs, context: context, request: message)
        case .stop:
            exit(FluxgateExit.success.rawValue)
        case .reopenLogs:
            break  // stdout is inherited; nothing to reopen yet
        case .hello, .ready, .configApplied, .configRejected, .heartbeat, .drained:
            logger.warning("Unexpected control message from the master", metadata: ["type": "\(message.type.rawValue)"])
        }
    }

    private func drain(deadlineMs: UInt64, context: ChannelHandlerContext?, request: ControlMessage? = nil) {
        guard !draining else { return }
        draining = true
        let exit = self.exit
        dataPlane.drain(deadlineMs: deadlineMs).whenComplete { _ in
            if let context, let request { self.reply(.drained, to: request, context: context) }
            exit(FluxgateExit.success.rawValue)
        }
    }

    func reply(_ kind: ControlMessage.Kind, to request: ControlMessage?, body: ControlMessage.Body = .init(),
               context: ChannelHandlerContext) {
        sequence += 1
        let message = ControlMessage(type: kind, seq: sequence, ack: request?.seq, gen: request?.gen ?? 0, body: body)
        guard let frame = try? ControlFrame.encode(message) else { return }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: frame)), promise: nil)
    }
}
