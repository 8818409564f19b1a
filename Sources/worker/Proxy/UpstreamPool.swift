import Common
import NIOCore
import NIOHTTP1
import NIOPosix

/// A connection to one upstream origin, owned by the pool while idle and by one request while
/// leased. Lives on the worker's event loop only.
final class UpstreamConnection {
    let channel: Channel
    let handler: UpstreamHandler
    let origin: String
    /// True once it has carried a request: a failure before any response byte may then be the
    /// upstream having closed it while idle, which `ProxyExchange` retries on a fresh connection.
    fileprivate(set) var hasBeenUsed = false
    fileprivate var idleTimer: Scheduled<Void>?

    init(channel: Channel, handler: UpstreamHandler, origin: String) {
        self.channel = channel
        self.handler = handler
        self.origin = origin
    }
}

/// Keep-alive connections per upstream origin, one pool per worker event loop: no locks, no
/// sharing between loops. Idle connections are kept LIFO (the most recently used is the least
/// likely to have been closed by the upstream) up to a cap per origin and for a bounded time.
final class UpstreamPool {
    private let eventLoop: EventLoop
    private let limits: WorkerLimits
    private var idle: [String: [UpstreamConnection]] = [:]
    private var closed = false
    /// TLS client contexts, one per trust configuration, kept across reloads so that pooled
    /// connections and cached sessions survive a reload that did not change the trust.
    private let tlsContexts = TLSClientContexts()

    init(eventLoop: EventLoop, limits: WorkerLimits) {
        self.eventLoop = eventLoop
        self.limits = limits
    }

    /// An idle connection to the upstream's origin if one is alive, else a new one (for https,
    /// one whose handshake and verification have completed). A TLS failure fails the future
    /// with a `TLSError`.
    func lease(_ upstream: Configuration.Upstream, fresh: Bool = false) -> EventLoopFuture<UpstreamConnection> {
        let target = upstream.targetURL
        var tls: TLSClientContexts.Entry?
        if target.scheme == .https {
            do throws(TLSError) {
                tls = try tlsContexts.context(trusting: upstream.tlsCA)
            } catch {
                return eventLoop.makeFailedFuture(error)
            }
        }
        // Connections verified against different trust never share a pool.
        let origin = tls.map { "\(target.origin)#trust\($0.id)" } ?? target.origin
        if !fresh {
            while let connection = idle[origin]?.popLast() {
                connection.idleTimer?.cancel()
                connection.idleTimer = nil
                if connection.channel.isActive {
                    connection.hasBeenUsed = true
                    return eventLoop.assumeIsolated().makeSucceededFuture(connection)
                }
                connection.channel.close(promise: nil)
            }
        }
        return connect(target, origin: origin, tls: tls?.context)
    }

    /// Gives a connection back after a complete exchange; `reusable` false closes it.
    func release(_ connection: UpstreamConnection, reusable: Bool) {
        connection.handler.delegate = nil
        guard reusable, !closed, connection.channel.isActive,
              idle[connection.origin, default: []].count < limits.maxIdleConnectionsPerOrigin
        else {
            connection.channel.close(promise: nil)
            return
        }
        connection.hasBeenUsed = true
        idle[connection.origin, default: []].append(connection)
        connection.idleTimer = eventLoop.assumeIsolated().scheduleTask(
            in: .milliseconds(limits.upstreamIdleTimeoutMs)
        ) { [weak connection] in
            connection?.channel.close(promise: nil)
        }
        // An idle connection must notice the upstream closing it: keep a read outstanding.
        connection.channel.read()
    }

    func closeAll() {
        closed = true
        for connection in idle.values.joined() { connection.channel.close(promise: nil) }
        idle.removeAll()
    }

    private func forget(_ connection: UpstreamConnection) {
        connection.idleTimer?.cancel()
        connection.idleTimer = nil
        guard var list = idle[connection.origin],
              let index = list.firstIndex(where: { $0 === connection }) else { return }
        list.remove(at: index)
        idle[connection.origin] = list.isEmpty ? nil : list
    }

    /// ForwardingHeaders frames the body exactly as the client did; NIO must not add framing.
    private static let encoderConfiguration: HTTPRequestEncoder.Configuration = {
        var configuration = HTTPRequestEncoder.Configuration()
        configuration.automaticallySetFramingHeaders = false
        return configuration
    }()

    private func connect(_ target: TargetURL, origin: String, tls: TLSContext?) -> EventLoopFuture<UpstreamConnection> {
        let encoderConfiguration = Self.encoderConfiguration
        let handshakeTimeout = TimeAmount.milliseconds(limits.tlsHandshakeTimeoutMs)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(limits.upstreamConnectTimeoutMs))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: WorkerLimits.relayReadAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        // Below the HTTP codec: the codec sees plaintext exactly as on http.
                        let connection = try TLSConnection(client: tls, host: target.host, port: target.port)
                        try sync.addHandler(TLSHandler(connection: connection, eventLoop: channel.eventLoop,
                                                       handshakeTimeout: handshakeTimeout))
                    }
                    try sync.addHTTPClientHandlers(encoderConfiguration: encoderConfiguration)
                    try sync.addHandler(UpstreamHandler())
                }
            }
        return bootstrap.connect(host: target.host, port: Int(target.port))
            .assumeIsolated()
            .flatMap { channel -> EventLoopFuture<Channel> in
                // An https connection is handed out only once the peer is verified.
                guard tls != nil, let handler = try? channel.pipeline.syncOperations.handler(type: TLSHandler.self) else {
                    return channel.eventLoop.makeSucceededFuture(channel)
                }
                return handler.handshakeFuture.map { channel }
            }
            .flatMapThrowing { [self] channel in
                let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                let connection = UpstreamConnection(channel: channel, handler: handler, origin: origin)
                handler.onClose = { [weak self, weak connection] in
                    if let self, let connection { self.forget(connection) }
                }
                return connection
            }
            .nonisolated()
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
