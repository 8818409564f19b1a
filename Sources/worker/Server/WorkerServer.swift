import Common
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Where a worker gets its listening socket from.
enum ListenerSource: Sendable {
    /// A socket the master bound and passed down (already listening or not; NIO calls listen()).
    case inheritedDescriptor(CInt)
    /// Bind here (tests, or a worker run on its own).
    case bind(BindAddress)
}

/// The data plane of one worker process: one event loop, one listening socket, HTTP/1.1 proxying.
///
/// The master integration starts it with `WorkerServer.start`, pushes new configurations with
/// `apply(_:)` and stops it with `shutdown(gracePeriod:)`.
final class WorkerServer: Sendable {
    let eventLoop: EventLoop
    private let serverChannel: Channel
    private let state: NIOLoopBound<WorkerContext>
    /// This server's own connections (the context is shared with the worker's other servers).
    private let connections: NIOLoopBound<ConnectionRegistry>
    private let ownsGroup: MultiThreadedEventLoopGroup?
    /// The context's rate-limit segment, for the snapshots `apply` makes off the loop.
    private let rateLimits: HostRateLimits?

    var localAddress: SocketAddress? { serverChannel.localAddress }

    private init(
        eventLoop: EventLoop, serverChannel: Channel, state: NIOLoopBound<WorkerContext>,
        connections: NIOLoopBound<ConnectionRegistry>, ownsGroup: MultiThreadedEventLoopGroup?,
        rateLimits: HostRateLimits?
    ) {
        self.rateLimits = rateLimits
        self.eventLoop = eventLoop
        self.serverChannel = serverChannel
        self.state = state
        self.connections = connections
        self.ownsGroup = ownsGroup
    }

    /// Starts serving with a worker context of its own. `group` defaults to a new
    /// single-threaded group owned by the server: one event loop per worker process (the process
    /// count gives the parallelism). `pipeline`: the request stages (tests add their own).
    static func start(
        listener: ListenerSource, configuration: Configuration, logger: Logger,
        limits: WorkerLimits = WorkerLimits(), limiter: InFlightLimiter? = nil,
        rateLimits: HostRateLimits? = nil,
        group: MultiThreadedEventLoopGroup? = nil, pipeline: RequestPipeline = .standard(),
        responseObservers: (@Sendable (RequestHead) -> ResponseObserver?)? = nil
    ) async throws -> WorkerServer {
        let ownedGroup = group == nil ? MultiThreadedEventLoopGroup(numberOfThreads: 1) : nil
        let eventLoop = (group ?? ownedGroup!).next()
        let context = try await makeContext(
            on: eventLoop, configuration: configuration, logger: logger, limits: limits,
            limiter: limiter, rateLimits: rateLimits, pipeline: pipeline, responseObservers: responseObservers)
        return try await start(listener: listener, context: context, eventLoop: eventLoop, ownedGroup: ownedGroup)
    }

    /// The process's one worker context, on `eventLoop`: every server started with it shares its
    /// snapshot, pool, limiter and connections.
    static func makeContext(
        on eventLoop: EventLoop, configuration: Configuration, logger: Logger, limits: WorkerLimits = WorkerLimits(),
        limiter: InFlightLimiter? = nil, rateLimits: HostRateLimits? = nil, pipeline: RequestPipeline = .standard(),
        responseObservers: (@Sendable (RequestHead) -> ResponseObserver?)? = nil, metrics: MetricsRegion? = nil,
        health: TargetHealthBoard? = nil
    ) async throws -> NIOLoopBound<WorkerContext> {
        let limiter = limiter ?? LocalInFlightLimiter(limit: Int(configuration.server.maxConnections))
        // Without the master's segment, one of this process's own (limits then hold per process).
        let rateLimits = rateLimits ?? HostRateLimits.processLocal()
        let health = health ?? TargetHealthBoard(segment: nil)
        let snapshot = try WorkerSnapshot(configuration: configuration, rateLimits: rateLimits)
        return try await eventLoop.submit {
            NIOLoopBound(
                WorkerContext(
                    snapshot: snapshot, eventLoop: eventLoop, limiter: limiter, limits: limits,
                    logger: logger, rateLimits: rateLimits, pipeline: pipeline, responseObservers: responseObservers,
                    metrics: metrics, health: health),
                eventLoop: eventLoop)
        }.get()
    }

    /// Starts serving on `listener` with a shared worker context (made on `eventLoop`).
    static func start(
        listener: ListenerSource, context state: NIOLoopBound<WorkerContext>, eventLoop: EventLoop,
        ownedGroup: MultiThreadedEventLoopGroup? = nil
    ) async throws -> WorkerServer {
        let connections = try await eventLoop.submit { NIOLoopBound(ConnectionRegistry(), eventLoop: eventLoop) }.get()
        let rateLimits = try await eventLoop.submit { state.value.rateLimits }.get()
        let bootstrap = ServerBootstrap(group: eventLoop)
            .serverChannelOption(.backlog, value: 511)
            // Accept up to 16 queued connections per wake-up (NIO's default is 4): a burst of new
            // clients otherwise waits for several loop turns.
            .serverChannelOption(.maxMessagesPerRead, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // No childChannelOption: NIO applies those one future at a time on every accepted
            // connection; set synchronously in the initializer they cost a fraction (a burst of
            // new clients is served that much sooner). Remote half-closure stays off (the default).
            // TCP_NODELAY is not set here: ServerBootstrap sets it on the listening socket (its
            // default server option, also for an inherited descriptor) and Linux copies it to
            // every accepted socket; setting it again cost ~3,600 instructions per connection.
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.syncOptions?.setOption(.recvAllocator, value: WorkerLimits.relayReadAllocator)
                    let worker = state.value
                    let sync = channel.pipeline.syncOperations
                    let serverTLS = worker.snapshot.serverTLS
                    if let tls = serverTLS {
                        // First in the pipeline: everything above sees plaintext, as on http.
                        let connection = try TLSConnection(server: tls)
                        try sync.addHandler(
                            TLSHandler(
                                connection: connection, eventLoop: channel.eventLoop,
                                handshakeTimeout: .milliseconds(worker.limits.tlsHandshakeTimeoutMs)))
                    }
                    // Requests are parsed and responses written as bytes by the connection
                    // handler (RequestParser; the upstream's head rewritten, its body as received):
                    // no HTTP codec. Without TLS below it, it sends responses on the socket itself.
                    let output = SocketOutput(channel: channel, direct: serverTLS == nil)
                    try sync.addHandler(ClientConnectionHandler(worker: worker, registry: connections.value, output: output))
                }
            }

        let serverChannel: Channel
        do {
            switch listener {
            case .inheritedDescriptor(let fd):
                serverChannel = try await bootstrap.withBoundSocket(fd).get()
            case .bind(let address):
                serverChannel = try await bootstrap.bind(host: address.host, port: Int(address.port)).get()
            }
        } catch {
            try? await ownedGroup?.shutdownGracefully()
            throw error
        }
        return WorkerServer(
            eventLoop: eventLoop, serverChannel: serverChannel, state: state, connections: connections,
            ownsGroup: ownedGroup, rateLimits: rateLimits)
    }

    /// A new configuration for every request whose head arrives once the future has succeeded;
    /// requests in flight keep the snapshot they started with. Throws, changing nothing, when
    /// `server.tls` cannot be made a context. Listener changes are the master's business. Servers
    /// sharing a context share its snapshot: the first of them to apply a configuration does it.
    func apply(_ configuration: Configuration) throws(TLSError) -> EventLoopFuture<Void> {
        let snapshot = try WorkerSnapshot(configuration: configuration, rateLimits: rateLimits)
        return eventLoop.submit { [state] in
            guard state.value.snapshot.configuration != configuration else { return }
            state.value.snapshot = snapshot
        }
    }

    /// Stops accepting, lets every connection finish its current response (NIO's quiescing), then
    /// closes whatever is left after `gracePeriod`.
    /// How long a drain waits after closing the listener before it quiesces connections.
    static let quiesceGrace: TimeAmount = .milliseconds(250)

    /// `closesPool`: the worker is done (not only this socket), so its idle upstream connections go too.
    func shutdown(gracePeriod: TimeAmount = .seconds(30), closesPool: Bool = true) async {
        try? await serverChannel.close()
        // A connection accepted just before the listener closed may not have delivered its first
        // request yet (the client writes right after connect; the bytes can still be in flight).
        // Quiescing now would close it as idle and fail that request, so every connection gets a
        // short grace to deliver one; requests that arrive in it are served, then the quiesce
        // closes the connection after its response. (Measured: worker-count changes under load
        // lost 1-5 requests without it, none with it.)
        let grace = min(gracePeriod, Self.quiesceGrace)
        if grace > .zero { try? await eventLoop.scheduleTask(in: grace) {}.futureResult.get() }
        let remaining = try? await eventLoop.submit { [connections] () -> [Channel] in
            let channels = Array(connections.value.channels.values)
            for channel in channels { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
            return channels
        }.get()
        let deadline = NIODeadline.now() + gracePeriod
        for channel in remaining ?? [] {
            let closed = channel.closeFuture
            let timeout = eventLoop.scheduleTask(deadline: deadline) { channel.close(promise: nil) }
            try? await closed.get()
            timeout.cancel()
        }
        if closesPool { try? await eventLoop.submit { [state] in state.value.pool.closeAll() }.get() }
        try? await ownsGroup?.shutdownGracefully()
    }

    /// Completes when the listening socket is closed.
    var closeFuture: EventLoopFuture<Void> { serverChannel.closeFuture }
}
