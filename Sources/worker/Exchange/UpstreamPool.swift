import Common
import NIOCore
import NIOHTTP1
import NIOPosix

/// A connection to one upstream origin, owned by the pool while idle and by one request while
/// leased. Lives on the worker's event loop only.
final class UpstreamConnection {
    let channel: Channel
    let handler: UpstreamHandler
    /// The channel's allocator, read once: `Channel.allocator` costs ~110 instructions a call.
    let allocator: ByteBufferAllocator
    /// The pool's idle list for this connection's key (`UpstreamTarget.PoolKey`): giving the
    /// connection back appends to it without a dictionary lookup.
    fileprivate let idleList: IdleList
    /// True once it has carried a request: a failure before any response byte may then be the
    /// upstream having closed it while idle, which `ProxyExchange` retries on a fresh connection.
    fileprivate(set) var hasBeenUsed = false
    /// While pooled: when the sweep closes it.
    fileprivate var idleUntil = NIODeadline.distantFuture
    /// The buffers of the last request head sent on this connection and of the client head made
    /// from its response, kept after they went out: by the next request the sockets have let go
    /// of them, and they are written again instead of allocating and freeing two buffers per
    /// request (~900 instructions, docs/performance.md). Kept only while small.
    private var spareRequestHead: ByteBuffer?
    var spareResponseHead: ByteBuffer?
    static let maxSpareBytes = 16 * 1024

    /// A buffer with room for `capacity` bytes: the last request head's when nothing else holds
    /// it any more (a write still in progress does: `clear` then allocates, as a new one would).
    func requestHeadBuffer(capacity: Int) -> ByteBuffer {
        // Taken (a move): no retain of the copy and release of the cleared property.
        guard var buffer = spareRequestHead.take() else { return allocator.buffer(capacity: capacity) }
        buffer.clear(minimumCapacity: capacity)
        return buffer
    }

    /// A request head just handed to the socket, for `requestHeadBuffer`.
    /// Consumed: the caller's last use, stored without a retain of a copy.
    func sent(requestHead: consuming ByteBuffer) {
        if requestHead.capacity <= Self.maxSpareBytes { spareRequestHead = requestHead }
    }

    /// A client head just handed to the client's socket, for the next response's head.
    func sent(responseHead: consuming ByteBuffer) {
        if responseHead.capacity <= Self.maxSpareBytes { spareResponseHead = responseHead }
    }

    fileprivate init(channel: Channel, handler: UpstreamHandler, idleList: IdleList) {
        self.channel = channel
        self.handler = handler
        self.allocator = channel.allocator
        self.idleList = idleList
    }
}

/// The idle connections of one pool key, oldest first. Never removed from the pool once made
/// (connections point at it), so there is one per target the worker has ever connected to.
private final class IdleList {
    var connections: [UpstreamConnection] = []
    /// How new connections for this key are made, built on the first (the key fixes the host,
    /// port and trust): a burst of new connections then skips rebuilding it for each.
    var bootstrap: ClientBootstrap?
}

/// Keep-alive connections per upstream target (origin, trust and credential: `PoolKey`), one
/// pool per worker event loop: no locks, no sharing between loops. Idle connections are kept LIFO
/// (the most recently used is the least likely to have been closed by the upstream) up to a cap
/// per target and for a bounded time.
final class UpstreamPool {
    private let eventLoop: EventLoop
    private let limits: WorkerLimits
    private var idle: [UpstreamTarget.PoolKey: IdleList] = [:]
    private var closed = false
    /// One task closes every connection idle past `upstreamIdleTimeoutMs` (a timer per pooled
    /// connection would be scheduled and cancelled on every request).
    private var sweep: Scheduled<Void>?
    /// TLS client contexts, one per trust configuration, kept across reloads so that pooled
    /// connections and cached sessions survive a reload that did not change the trust.
    private let tlsContexts = TLSClientContexts()

    init(eventLoop: EventLoop, limits: WorkerLimits) {
        self.eventLoop = eventLoop
        self.limits = limits
    }

    /// An idle connection to `target` that is still open, most recently used first; nil when
    /// there is none. No future: the common case of a warm pool costs a lookup.
    func idleConnection(to target: UpstreamTarget) -> UpstreamConnection? {
        guard let list = recentList(for: target) ?? (try? entry(for: target).list) else { return nil }
        while let connection = list.connections.popLast() {
            if connection.channel.isActive {
                connection.hasBeenUsed = true
                return connection
            }
            connection.channel.close(promise: nil)
        }
        return nil
    }

    /// A new connection to `target` (for https, one whose handshake and verification have
    /// completed). A TLS failure fails the future with a `TLSError`.
    func connect(to target: UpstreamTarget) -> EventLoopFuture<UpstreamConnection> {
        let entry: TargetEntry
        do throws(TLSError) {
            entry = try self.entry(for: target)
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        return connect(target.url, idleList: entry.list, tls: entry.tls)
    }

    /// The idle list and TLS context of a target, found by the target's identity among the last
    /// few used (a target lives as long as its configuration): the usual request skips hashing
    /// its pool key.
    private final class TargetEntry {
        let target: UpstreamTarget
        let list: IdleList
        let tls: TLSContext?

        init(target: UpstreamTarget, list: IdleList, tls: TLSContext?) {
            self.target = target
            self.list = list
            self.tls = tls
        }
    }
    private var recentTargets: [TargetEntry] = []
    private static let recentTargetsKept = 16

    /// The idle list of a target among the last few used, the entry not retained and released
    /// around it as `entry(for:)`'s result is (~35 instructions a request).
    private func recentList(for target: UpstreamTarget) -> IdleList? {
        for i in recentTargets.indices where recentTargets[i].target === target { return recentTargets[i].list }
        return nil
    }

    private func entry(for target: UpstreamTarget) throws(TLSError) -> TargetEntry {
        for i in recentTargets.indices where recentTargets[i].target === target { return recentTargets[i] }
        // Connections verified against different trust never share a list: the key has the trust.
        let tls = target.url.scheme == .https ? try tlsContexts.context(trusting: target.tlsCA).context : nil
        let entry = TargetEntry(target: target, list: idleList(for: target.poolKey), tls: tls)
        if recentTargets.count == Self.recentTargetsKept { recentTargets.removeFirst() }
        recentTargets.append(entry)
        return entry
    }

    private func idleList(for key: UpstreamTarget.PoolKey) -> IdleList {
        if let list = idle[key] { return list }
        let list = IdleList()
        idle[key] = list
        return list
    }

    /// Gives a connection back after a complete exchange; `reusable` false closes it.
    func release(_ connection: UpstreamConnection, reusable: Bool) {
        connection.handler.delegate = nil
        guard reusable, !closed, connection.channel.isActive,
            connection.idleList.connections.count < limits.maxIdleConnectionsPerOrigin
        else {
            connection.channel.close(promise: nil)
            return
        }
        connection.hasBeenUsed = true
        connection.idleList.connections.append(connection)
        connection.idleUntil = .now() + .milliseconds(limits.upstreamIdleTimeoutMs)
        if sweep == nil { scheduleSweep(at: connection.idleUntil) }
        // An idle connection must notice the upstream closing it: keep a read outstanding. One
        // is, unless backpressure held it back (a new read through the pipeline costs ~800
        // instructions, and NIO reads again after this read anyway).
        connection.handler.resumeReading()
    }

    private func scheduleSweep(at deadline: NIODeadline) {
        // Strong: `closeAll` cancels the task, and the pool lives as long as the worker's loop. A
        // `weak` capture would give the pool a side table, and every retain of it (one per
        // request) the slow path.
        sweep = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            sweepIdle()
        }
    }

    /// Closes the connections idle too long and schedules the next sweep for the earliest
    /// remaining one. Lists are LIFO, so the oldest sit at the front.
    private func sweepIdle() {
        sweep = nil
        let now = NIODeadline.now()
        var next = NIODeadline.distantFuture
        for list in idle.values {
            let expired = list.connections.prefix { $0.idleUntil <= now }
            guard !expired.isEmpty else {
                next = min(next, list.connections.first?.idleUntil ?? next)
                continue
            }
            list.connections.removeFirst(expired.count)
            if let first = list.connections.first { next = min(next, first.idleUntil) }
            for connection in expired { connection.channel.close(promise: nil) }
        }
        if next != .distantFuture { scheduleSweep(at: next) }
    }

    func closeAll() {
        closed = true
        sweep?.cancel()
        sweep = nil
        for list in idle.values {
            let connections = list.connections
            list.connections = []
            for connection in connections { connection.channel.close(promise: nil) }
        }
    }

    /// Drops the idle connection whose handler this is, if it is idle. By the handler, which is
    /// alive while it reports its close: a `weak` reference to the connection would give every
    /// connection a side table, and each of its retains and releases (about ten per request)
    /// the slow path.
    private static func forget(_ handler: UpstreamHandler, in list: IdleList) {
        guard let index = list.connections.firstIndex(where: { $0.handler === handler }) else { return }
        list.connections.remove(at: index)
    }

    private func connect(_ target: TargetURL, idleList: IdleList, tls: TLSContext?) -> EventLoopFuture<UpstreamConnection> {
        let bootstrap = idleList.bootstrap ?? makeBootstrap(target, tls: tls)
        idleList.bootstrap = bootstrap
        // An IP literal needs no resolver: NIO's resolves every name with getaddrinfo on another
        // thread, a cross-thread hop that cost milliseconds on the first request of a burst.
        let connected =
            if let address = try? SocketAddress(ipAddress: target.host, port: Int(target.port)) {
                bootstrap.connect(to: address)
            } else {
                bootstrap.connect(host: target.host, port: Int(target.port))
            }
        return
            connected
            .assumeIsolated()
            .flatMap { channel -> EventLoopFuture<Channel> in
                // An https connection is handed out only once the peer is verified.
                guard tls != nil, let handler = try? channel.pipeline.syncOperations.handler(type: TLSHandler.self) else {
                    return channel.eventLoop.makeSucceededFuture(channel)
                }
                return handler.handshakeFuture.map { channel }
            }
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                let connection = UpstreamConnection(channel: channel, handler: handler, idleList: idleList)
                handler.onClose = { [idleList] handler in Self.forget(handler, in: idleList) }
                return connection
            }
            .nonisolated()
    }

    private func makeBootstrap(_ target: TargetURL, tls: TLSContext?) -> ClientBootstrap {
        let handshakeTimeout = TimeAmount.milliseconds(limits.tlsHandshakeTimeoutMs)
        // TCP_NODELAY is the bootstrap's default. Options given to a bootstrap are applied one
        // future at a time on every new channel; the read allocator is set in the initializer
        // instead, synchronously (new connections come in bursts: S5 opens 31 at once).
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(limits.upstreamConnectTimeoutMs))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.syncOptions?.setOption(.recvAllocator, value: WorkerLimits.relayReadAllocator)
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        // Below the relay handler, which sees plaintext exactly as on http.
                        let connection = try TLSConnection(client: tls, host: target.host, port: target.port)
                        try sync.addHandler(
                            TLSHandler(
                                connection: connection, eventLoop: channel.eventLoop,
                                handshakeTimeout: handshakeTimeout))
                    }
                    // Without TLS below it, the handler sends requests on the socket itself.
                    try sync.addHandler(UpstreamHandler(output: SocketOutput(channel: channel, direct: tls == nil)))
                }
            }
    }
}

/// The worker's TLS client contexts, one per distinct trust (`tls_ca_file` contents, or the
/// system store), created on first use. Building one loads a trust store, so it is done once,
/// not per connection. Event-loop bound, like the pool that owns it.
final class TLSClientContexts {
    struct Entry {
        let id: Int
        let context: TLSContext
    }

    /// Keyed by the CA PEM; "" is the system trust store.
    private var contexts: [String: Entry] = [:]

    func context(trusting ca: Configuration.TrustedCA?) throws(TLSError) -> Entry {
        let key = ca?.pem ?? ""
        if let entry = contexts[key] { return entry }
        let entry = Entry(id: contexts.count, context: try TLSContext.client(trusting: ca))
        contexts[key] = entry
        return entry
    }
}
