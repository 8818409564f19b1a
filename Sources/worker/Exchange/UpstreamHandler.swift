import NIOCore
import NIOHTTP1

/// What an upstream connection reports to the request currently using it. All calls happen on the
/// worker's event loop.
protocol UpstreamConnectionDelegate: AnyObject {
    /// Raw bytes of the response (`UpstreamResponseReader` frames them).
    func upstreamRead(_ bytes: consuming ByteBuffer)
    /// One socket read has been delivered: the moment to flush toward the client (SSE latency).
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    func upstreamFailed(_ error: Error)
    func upstreamClosed()
    /// Backpressure: false while the client side cannot take more response bytes.
    var upstreamMayRead: Bool { get }
}

/// The only handler of an upstream connection's pipeline (after TLS for https): requests go out
/// as bytes the exchange wrote (on http straight to the socket, see `SocketOutput`), responses
/// come in as raw bytes for its `UpstreamResponseReader`.
/// Idle in the pool it has no delegate: any byte then is a protocol violation and closes it.
final class UpstreamHandler: ChannelDuplexHandler, SocketOutputOwner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Strong (no side table on the exchange): the exchange clears it when it ends, and the pool
    /// when it takes the connection back.
    var delegate: UpstreamConnectionDelegate?
    /// Called once with this handler when the channel goes inactive, so the pool forgets the
    /// connection.
    var onClose: ((UpstreamHandler) -> Void)?
    private var context: ChannelHandlerContext?
    private var readPending = false
    /// After an error nothing more from this connection is believed: in particular a response
    /// that "ends at connection close" must not complete when TLS reported a truncation just
    /// before the close (TLSHandler fires `.truncated` ahead of channelInactive).
    private var failed = false
    /// The channel's writability as its last `channelWritabilityChanged` reported it (NIO
    /// changes it only with that event; writes that go straight to the socket do not count):
    /// asking the channel is a call through the `Channel` existential (~25 instructions a request).
    private(set) var isWritable = true
    var output: SocketOutput

    init(output: SocketOutput) {
        self.output = output
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        isWritable = context.channel.isWritable
    }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard !failed else { return }
        guard let delegate else {
            // Unsolicited bytes on an idle connection: the stream is desynchronised.
            context.close(promise: nil)
            return
        }
        delegate.upstreamRead(part)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        // The next read asked for now rather than by NIO's autoRead after this event, which then
        // skips its `read()` through the pipeline (as `ClientConnectionHandler` does).
        read(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        isWritable = context.channel.isWritable
        delegate?.upstreamWritabilityChanged(isWritable: isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failed = true
        delegate?.upstreamFailed(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let delegate = self.delegate
        self.delegate = nil
        onClose?(self)
        onClose = nil
        delegate?.upstreamClosed()
    }

    func read(context: ChannelHandlerContext) {
        if let delegate, !delegate.upstreamMayRead {
            readPending = true
            return
        }
        output.read(context: context)
    }

    /// The client drained its buffer: resume reading the response.
    func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        output.read(context: context)
    }

    func send(_ part: ByteBuffer) {
        if let context { writeOutput(part, context: context) }
    }

    func flush() {
        if let context { flushOutput(context: context) }
    }
}
