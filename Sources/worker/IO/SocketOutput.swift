import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The outgoing bytes of one connection: queued by the handler, then sent at its flush with one
/// `send` (or `sendmsg` for several buffers) straight on the socket while NIO holds none of the
/// connection's bytes.
///
/// A write and a flush through the pipeline cost ~3,200 instructions: NIO's pending-write
/// bookkeeping, a lifecycle check at every step (each copying the channel's lifecycle manager),
/// `writev` through its generic path. A proxied request does both on each of its two connections:
/// a fifth of its instructions. Here a flush is a system call and a little arithmetic.
///
/// Whatever the socket does not take at once (a full send buffer, any error) goes through the
/// pipeline as before, and so does everything after it until NIO has written all of it: bytes
/// never overtake each other, and NIO's backpressure (writability) and error handling apply
/// unchanged. The descriptor is reached only through NIO's `withUnsafeTransport`, which refuses
/// once the socket is closed, so a descriptor number reused by another connection is never
/// written. With TLS below the handler the transport is not the handler's to write: every byte
/// goes through the pipeline (`isDirect` false).
struct SocketOutput {
    /// Not `any NIOTransportAccessibleChannelCore<NIOBSDSocket.Handle>`: a cast to that
    /// constrained existential cost ~13,500 instructions per connection (the runtime checks the
    /// associated type every time); the plain one is a cached conformance lookup, and the
    /// transport's type is compared when it is used.
    typealias Transport = any NIOTransportAccessibleChannelCore

    private let transport: Transport?
    /// Queued bytes, oldest first: `first`, then `more` (usually empty: most flushes send one
    /// buffer, and an optional is cheaper than an array).
    private var first: ByteBuffer?
    private var more: [ByteBuffer] = []
    /// Flushes handed to the pipeline whose bytes NIO has not finished writing.
    private var pipelineOwed = 0

    /// The most buffers one `sendmsg` takes; a flush with more (rare) goes through the pipeline.
    private static let maxBuffersPerSend = 64

    /// Made by the channel initializer that adds the handler. `direct`: nothing below the handler
    /// transforms its bytes (no TLS). `_channelCore` is what
    /// NIO's own `syncOperations.withUnsafeTransportIfAvailable` reads; that function makes the
    /// constrained cast on every call, so the core is looked up here once per connection.
    ///
    /// `_channelCore` is not NIO's public API: its docs/public-api.md names exactly
    /// `channel._channelCore` as an underscored property no user should touch, with no promise
    /// across releases. This is the only underscored access in fluxgate; it was checked
    /// against swift-nio 2.101.3, which Package.swift pins with `exact:`. Should a NIO update make
    /// the cast fail or the transport unreachable, everything still works through the pipeline,
    /// only slower: WorkerTests' DirectWriteProcessTests fails then.
    init(channel: Channel, direct: Bool) {
        transport = direct ? channel._channelCore as? Transport : nil
    }

    /// False: the handler writes and flushes through the pipeline itself, as if this did not exist.
    var isDirect: Bool { transport != nil }

    mutating func enqueue(_ bytes: ByteBuffer) {
        if first == nil {
            first = bytes
        } else {
            more.append(bytes)
        }
    }

    /// Sends what is queued. Returns what must go through the pipeline instead (the caller writes
    /// it there, flushes, and calls `pipelineDrained` once NIO has written it), or nil when the
    /// socket took everything or nothing was queued.
    mutating func sendQueued() -> [ByteBuffer]? {
        guard var head = first.take() else { return nil }
        guard let transport, pipelineOwed == 0 else { return owe(head) }
        if more.isEmpty {
            let sent = Self.send(head, on: transport)
            if sent == head.readableBytes { return nil }
            head.moveReaderIndex(forwardBy: sent)
            return owe(head)
        }
        guard more.count < Self.maxBuffersPerSend else { return owe(head) }
        var sent = Self.send(head, more, on: transport)
        var rest: [ByteBuffer] = []
        if sent < head.readableBytes {
            head.moveReaderIndex(forwardBy: sent)
            rest.append(head)
            sent = 0
        } else {
            sent -= head.readableBytes
        }
        for var buffer in more {
            if sent >= buffer.readableBytes {
                sent -= buffer.readableBytes
                continue
            }
            buffer.moveReaderIndex(forwardBy: sent)
            sent = 0
            rest.append(buffer)
        }
        more.removeAll(keepingCapacity: true)
        if rest.isEmpty { return nil }
        pipelineOwed += 1
        return rest
    }

    /// NIO has written (or failed) the bytes of one flush handed to it.
    mutating func pipelineDrained() {
        pipelineOwed -= 1
    }

    /// `head` and the rest of the queue, for the pipeline.
    private mutating func owe(_ head: ByteBuffer) -> [ByteBuffer] {
        var rest = [head]
        rest.append(contentsOf: more)
        more.removeAll(keepingCapacity: true)
        if transport != nil { pipelineOwed += 1 }
        return rest
    }

    /// Bytes the socket took: 0 when it would block or failed (the pipeline then meets the same
    /// condition and handles it as it always has).
    private static func send(_ buffer: ByteBuffer, on transport: Transport) -> Int {
        let sent = withDescriptor(of: transport) { fd in
            buffer.withUnsafeReadableBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        return max(sent ?? 0, 0)
    }

    /// Calls `body` with the socket's descriptor; nil when the socket is closed (or the channel's
    /// transport is not a socket).
    private static func withDescriptor(of transport: Transport, _ body: (NIOBSDSocket.Handle) -> Int) -> Int? {
        func open<Core: NIOTransportAccessibleChannelCore>(_ core: Core) -> Int? {
            guard Core.Transport.self == NIOBSDSocket.Handle.self else { return nil }
            return try? core.withUnsafeTransport { body(unsafeBitCast($0, to: NIOBSDSocket.Handle.self)) }
        }
        return open(transport)
    }

    private static func send(_ head: ByteBuffer, _ more: [ByteBuffer], on transport: Transport) -> Int {
        let count = 1 + more.count
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { vectors -> Int in
            // The buffers' storage stays alive for the call: `head` and `more` hold it (NIO's own
            // vector writes rely on the same).
            func vector(_ buffer: ByteBuffer) -> iovec {
                buffer.withUnsafeReadableBytes { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
            }
            vectors[0] = vector(head)
            for (i, buffer) in more.enumerated() { vectors[i + 1] = vector(buffer) }
            let sent = withDescriptor(of: transport) { fd -> Int in
                var message = msghdr()
                message.msg_iov = vectors.baseAddress
                message.msg_iovlen = count
                return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
            }
            return max(sent ?? 0, 0)
        }
    }
}

/// A handler that owns its connection's outgoing bytes through a `SocketOutput`.
protocol SocketOutputOwner: AnyObject {
    var output: SocketOutput { get set }
}

extension SocketOutputOwner {
    /// Queues `bytes` (direct), or writes them to the pipeline.
    func writeOutput(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        if output.isDirect {
            output.enqueue(bytes)
        } else {
            context.write(NIOAny(bytes), promise: nil)
        }
    }

    /// Sends what is queued; what the socket did not take goes through the pipeline, flushed.
    /// NIO calls are made outside any access to `output` (they can call back into the handler).
    func flushOutput(context: ChannelHandlerContext) {
        guard output.isDirect else { return context.flush() }
        guard let rest = output.sendQueued() else { return }
        for buffer in rest.dropLast() { context.write(NIOAny(buffer), promise: nil) }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.write(NIOAny(rest.last!), promise: written)
        context.flush()
        written.futureResult.assumeIsolated().whenComplete { _ in self.output.pipelineDrained() }
    }
}
