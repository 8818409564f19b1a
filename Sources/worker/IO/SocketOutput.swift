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
/// unchanged. With TLS below the handler the transport is not the handler's to write: every byte
/// goes through the pipeline (`isDirect` false).
///
/// The descriptor is taken once, through NIO's `withUnsafeTransport`, when the handler is made;
/// before each send the channel must still be active. That is what keeps a closed connection's
/// number, reused by another connection, from being written: NIO's `close0` closes the socket
/// and marks the channel inactive with no user code run between the two ("No user callouts" in
/// BaseSocketChannel.close0, swift-nio 2.101.3), and a stream channel never becomes active
/// again. Asking `withUnsafeTransport` on every send instead cost ~150 instructions a send (an
/// existential opened, its associated type looked up, three closures), ~300 a proxied request
/// (docs/performance.md, session 16).
struct SocketOutput {
    /// Not `any NIOTransportAccessibleChannelCore<NIOBSDSocket.Handle>`: a cast to that
    /// constrained existential cost ~13,500 instructions per connection (the runtime checks the
    /// associated type every time); the plain one is a cached conformance lookup, and the
    /// transport's type is compared when it is used.
    typealias Transport = any NIOTransportAccessibleChannelCore

    /// The channel, asked `isActive` before each send; nil when not direct.
    private let channel: Channel?
    /// The channel's core, for `read` (nil when not direct).
    private let core: ChannelCore?
    /// The socket's descriptor; meaningful only while `channel` is active.
    private let descriptor: NIOBSDSocket.Handle
    /// Queued bytes, oldest first: `first`, `second`, then `more` (usually empty: a flush sends
    /// one or two buffers, a head and a body, and optionals are cheaper than an array).
    private var first: ByteBuffer?
    private var second: ByteBuffer?
    private var more: [ByteBuffer] = []
    /// Flushes handed to the pipeline whose bytes NIO has not finished writing.
    private var pipelineOwed = 0

    /// The most buffers one `sendmsg` takes; a flush with more (rare) goes through the pipeline.
    private static let maxBuffersPerSend = 64

    /// Made by the channel initializer that adds the handler. `direct`: nothing below the handler
    /// transforms its bytes or its reads (no TLS, no other handler). `_channelCore` is what
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
        let transport = direct ? channel._channelCore as? Transport : nil
        if let transport, let descriptor = Self.descriptor(of: transport) {
            self.channel = channel
            self.core = transport
            self.descriptor = descriptor
        } else {
            self.channel = nil
            self.core = nil
            self.descriptor = -1
        }
    }

    /// False: the handler writes and flushes through the pipeline itself, as if this did not exist.
    var isDirect: Bool { core != nil }

    mutating func enqueue(_ bytes: ByteBuffer) {
        if first == nil {
            first = bytes
        } else if second == nil {
            second = bytes
        } else {
            more.append(bytes)
        }
    }

    /// Sends what is queued. Returns what must go through the pipeline instead (the caller writes
    /// it there, flushes, and calls `pipelineDrained` once NIO has written it), or nil when the
    /// socket took everything or nothing was queued.
    mutating func sendQueued() -> [ByteBuffer]? {
        guard var head = first.take() else { return nil }
        guard core != nil, pipelineOwed == 0 else { return owe(head) }
        guard var next = second.take() else {
            let sent = sendOne(head)
            if sent == head.readableBytes { return nil }
            head.moveReaderIndex(forwardBy: sent)
            return owe(head)
        }
        if more.isEmpty {
            var sent = sendTwo(head, next)
            if sent == head.readableBytes + next.readableBytes { return nil }
            pipelineOwed += 1
            if sent < head.readableBytes {
                head.moveReaderIndex(forwardBy: sent)
                return [head, next]
            }
            sent -= head.readableBytes
            next.moveReaderIndex(forwardBy: sent)
            return [next]
        }
        guard more.count + 2 <= Self.maxBuffersPerSend else {
            second = next
            return owe(head)
        }
        var sent = sendAll(head, next, more)
        var all = [head, next]
        all.append(contentsOf: more)
        var rest: [ByteBuffer] = []
        for var buffer in all {
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

    /// Asks for the next read straight from the channel's core: what `context.read()` ends in
    /// (NIO's head handler calls `_channelCore.read0()`) when, as on a direct connection, the
    /// owner is the pipeline's only handler; the walk to the head and the head handler cost ~70
    /// instructions a read, two reads a proxied request. Otherwise through the pipeline. Should
    /// a handler ever sit below a direct owner, it would not see reads: keep `direct` for
    /// pipelines of one handler (WorkerServer, UpstreamPool, RedisRateLimiter make them).
    ///
    /// `mutating` (it changes nothing) so that the call reaches the handler's stored output in
    /// place: a non-mutating call copied the whole struct (a retain and release of each of its
    /// references). Not inlined, and the core reached by optional chaining, which borrows it as
    /// stored: bound by `if let` it was retained and released around the call.
    @inline(never)
    mutating func read(context: ChannelHandlerContext) {
        guard core != nil else { return context.read() }
        core?.read0()
    }

    /// `head` and the rest of the queue, for the pipeline.
    private mutating func owe(_ head: ByteBuffer) -> [ByteBuffer] {
        var rest = [head]
        if let next = second.take() { rest.append(next) }
        rest.append(contentsOf: more)
        more.removeAll(keepingCapacity: true)
        if core != nil { pipelineOwed += 1 }
        return rest
    }

    /// The socket may be written: the channel is still active (see the type's doc).
    /// (`mutating`, as the sends below, for the reason given at `read`.)
    private var socketOpen: Bool {
        mutating get { channel?.isActive ?? false }
    }

    /// Bytes the socket took: 0 when it would block, failed or is closed (the pipeline then meets
    /// the same condition and handles it as it always has).
    private mutating func sendOne(_ buffer: ByteBuffer) -> Int {
        guard socketOpen else { return 0 }
        let fd = descriptor
        let sent = buffer.withUnsafeReadableBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return max(sent, 0)
    }

    private mutating func sendTwo(_ head: ByteBuffer, _ next: ByteBuffer) -> Int {
        guard socketOpen else { return 0 }
        let fd = descriptor
        // The buffers' storage stays alive for the call: `head` and `next` hold it (NIO's own
        // vector writes rely on the same).
        var vectors = (Self.vector(head), Self.vector(next))
        let sent = withUnsafeMutablePointer(to: &vectors) { pair in
            pair.withMemoryRebound(to: iovec.self, capacity: 2) { vectors -> Int in
                var message = msghdr()
                message.msg_iov = vectors
                message.msg_iovlen = 2
                return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
            }
        }
        return max(sent, 0)
    }

    private mutating func sendAll(_ head: ByteBuffer, _ next: ByteBuffer, _ more: [ByteBuffer]) -> Int {
        guard socketOpen else { return 0 }
        let fd = descriptor
        let count = 2 + more.count
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { vectors -> Int in
            vectors[0] = Self.vector(head)
            vectors[1] = Self.vector(next)
            for (i, buffer) in more.enumerated() { vectors[i + 2] = Self.vector(buffer) }
            var message = msghdr()
            message.msg_iov = vectors.baseAddress
            message.msg_iovlen = count
            return max(sendmsg(fd, &message, Int32(MSG_NOSIGNAL)), 0)
        }
    }

    private static func vector(_ buffer: ByteBuffer) -> iovec {
        buffer.withUnsafeReadableBytes { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
    }

    /// The socket's descriptor, nil when the socket is closed (or the channel's transport is not
    /// a socket).
    private static func descriptor(of transport: Transport) -> NIOBSDSocket.Handle? {
        func open<Core: NIOTransportAccessibleChannelCore>(_ core: Core) -> NIOBSDSocket.Handle? {
            guard Core.Transport.self == NIOBSDSocket.Handle.self else { return nil }
            return try? core.withUnsafeTransport { unsafeBitCast($0, to: NIOBSDSocket.Handle.self) }
        }
        return open(transport)
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
