#if canImport(Glibc)
import Glibc
#endif
import Common
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The worker's data plane as the control channel sees it: one `WorkerServer` per inherited
/// listening socket (fd 3, and fd 8… when the worker count shrank and this slot took over surplus
/// sockets), and one per socket the master lent while another slot has no worker, all sharing
/// one `WorkerContext` (one snapshot, upstream pool and limiter). In standby nothing accepts until
/// `startAccepting`: the previous acceptor of these sockets is still draining, and two processes
/// must not accept on one socket at once.
final class WorkerListeners: DataPlane {
    private struct State {
        var configuration: Configuration
        var servers: [WorkerServer] = []
        /// Servers on lent sockets, by the master's number for the socket.
        var borrowed: [Int: WorkerServer] = [:]
        /// Lent sockets given back: no longer accepting, their connections winding down.
        var returned: [ObjectIdentifier: WorkerServer] = [:]
        /// Lent sockets being adopted, and the futures waiting for them: `apply`'s (an adopted
        /// server starts with the configuration of its start; the ack must not come before it has
        /// the newest) and a drain's `stopped` (no listener may still be opening then).
        var adopting = 0
        var waitingForAdoptions: [EventLoopPromise<Void>] = []
        var started = false
        var draining = false
        /// The worker's one context, being made or made (see `start`).
        var context: Task<NIOLoopBound<WorkerContext>, any Error>?

        var everyServer: [WorkerServer] { servers + borrowed.values + returned.values }
    }

    /// A given-back socket's connections close after their current response (as in a drain);
    /// this only bounds a long stream on one.
    static let returnedGrace: TimeAmount = .seconds(600)

    private let descriptors: [CInt]
    private let logger: Logger
    private let limiter: InFlightLimiter?
    private let rateLimits: HostRateLimits?
    /// The host's target health (the master's segment, or the worker's own).
    private let health: TargetHealthBoard
    private let metrics: MetricsRegion?
    private let group: MultiThreadedEventLoopGroup
    /// The worker's one event loop (the group has one thread).
    private let loop: EventLoop
    private let state: Mutex<State>

    init(
        descriptors: [CInt], configuration: Configuration, logger: Logger, limiter: InFlightLimiter?,
        metrics: MetricsRegion? = nil, rateLimits: HostRateLimits? = nil, group: MultiThreadedEventLoopGroup,
        health: TargetHealthSegment? = nil
    ) {
        self.rateLimits = rateLimits
        self.descriptors = descriptors
        self.logger = logger
        self.limiter = limiter
        self.health = TargetHealthBoard(segment: health)
        self.metrics = metrics
        self.group = group
        self.loop = group.next()
        self.state = Mutex(State(configuration: configuration))
    }

    /// Starts a server on every socket (once), with the newest configuration.
    func startAccepting() async throws {
        let configuration: Configuration? = state.withLock { state in
            guard !state.started, !state.draining else { return nil }
            state.started = true
            return state.configuration
        }
        guard let configuration else { return }
        var servers: [WorkerServer] = []
        for fd in descriptors {
            servers.append(try await start(fd, configuration))
        }
        let latest = state.withLock { state in
            state.servers = servers
            return state.configuration
        }
        if latest != configuration { servers.forEach { _ = try? $0.apply(latest) } }
    }

    /// A server on `descriptor`, in the worker's one context (made by the first server, with the
    /// configuration of the moment; later ones share it).
    private func start(_ descriptor: CInt, _ configuration: Configuration) async throws -> WorkerServer {
        let loop = self.loop
        let making: Task<NIOLoopBound<WorkerContext>, any Error> = state.withLock { state in
            if let context = state.context { return context }
            let task = Task { [logger, limiter, metrics, rateLimits, health] in
                try await WorkerServer.makeContext(
                    on: loop, configuration: configuration, logger: logger, limiter: limiter, rateLimits: rateLimits,
                    metrics: metrics, health: health)
            }
            state.context = task
            return task
        }
        let context: NIOLoopBound<WorkerContext>
        do {
            context = try await making.value
        } catch {
            state.withLock { state in state.context = nil }
            throw error
        }
        return try await WorkerServer.start(listener: .inheritedDescriptor(descriptor), context: context, eventLoop: loop)
    }

    /// Every server swaps its snapshot; in standby (no server yet) the configuration is checked the
    /// same way and kept for `startAccepting`. A configuration that cannot be applied is not kept.
    /// The future also waits for adoptions under way, which pick up this configuration.
    func apply(_ configuration: Configuration) -> EventLoopFuture<Void> {
        let loop = group.next()
        let servers = state.withLock { $0.everyServer }
        do throws(TLSError) {
            if servers.isEmpty { _ = try WorkerSnapshot(configuration: configuration) }
            var swapped = try servers.map { server throws(TLSError) in try server.apply(configuration) }
            state.withLock { state in
                state.configuration = configuration
                guard state.adopting > 0 else { return }
                let promise = loop.makePromise(of: Void.self)
                state.waitingForAdoptions.append(promise)
                swapped.append(promise.futureResult)
            }
            return .andAllSucceed(swapped, on: loop)
        } catch {
            return loop.makeFailedFuture(ConfigurationNotApplied(reason: error))
        }
    }

    /// Accepts on a lent socket with the newest configuration; refused while draining.
    func adopt(borrowed listener: Int, descriptor: CInt) async throws {
        let configuration: Configuration? = state.withLock { state in
            guard !state.draining else { return nil }
            state.adopting += 1
            return state.configuration
        }
        guard let configuration else {
            close(descriptor)
            throw AdoptionRefused()
        }
        var server: WorkerServer?
        var failure: (any Error)?
        do {
            server = try await start(descriptor, configuration)
        } catch {
            failure = error
        }
        let (kept, latest, waiting) = state.withLock { state in
            state.adopting -= 1
            let kept = server != nil && !state.draining
            if kept, let server { state.borrowed[listener] = server }
            let waiting = state.adopting == 0 ? state.waitingForAdoptions : []
            if state.adopting == 0 { state.waitingForAdoptions = [] }
            return (kept, state.configuration, waiting)
        }
        if kept, let server, latest != configuration { try? await server.apply(latest).get() }
        if !kept, let server { await server.shutdown(gracePeriod: .zero, closesPool: false) }  // a drain began meanwhile
        waiting.forEach { $0.succeed() }
        if let failure { throw failure }
        if !kept { throw AdoptionRefused() }
    }

    /// Closes a lent socket (`closeFuture`); its connections finish their current response.
    func release(borrowed listener: Int) -> EventLoopFuture<Void> {
        let server: WorkerServer? = state.withLock { state in
            guard let server = state.borrowed.removeValue(forKey: listener) else { return nil }
            state.returned[ObjectIdentifier(server)] = server
            return server
        }
        guard let server else { return group.next().makeSucceededVoidFuture() }
        Task {
            // Only this socket's connections: the worker's pool serves its other sockets too.
            await server.shutdown(gracePeriod: Self.returnedGrace, closesPool: false)
            state.withLock { $0.returned[ObjectIdentifier(server)] = nil }
        }
        return server.closeFuture
    }

    /// Stops accepting on every socket, lent ones included: `stopped` completes when every
    /// listener is closed (`stoppedAccepting`), `done` when every connection has finished or the
    /// deadline passed.
    func drainReportingStop(deadlineMs: UInt64) -> (stopped: EventLoopFuture<Void>, done: EventLoopFuture<Void>) {
        let loop = group.next()
        let (servers, adoptions) = state.withLock { state in
            state.draining = true
            guard state.adopting > 0 else { return (state.everyServer, [EventLoopFuture<Void>]()) }
            let promise = loop.makePromise(of: Void.self)
            state.waitingForAdoptions.append(promise)
            return (state.everyServer, [promise.futureResult])
        }
        let stopped = EventLoopFuture.andAllComplete(servers.map(\.closeFuture) + adoptions, on: loop)
        let done = loop.makeFutureWithTask {
            await withTaskGroup(of: Void.self) { tasks in
                for server in servers { tasks.addTask { await server.shutdown(gracePeriod: .milliseconds(Int64(deadlineMs))) } }
            }
        }
        return (stopped, done)
    }
}

/// `adoptListener` reached a worker that is draining: its listeners are closed for good.
struct AdoptionRefused: Error, CustomStringConvertible {
    var description: String { "the worker is draining" }
}

/// Why `apply` failed, as the master logs it (`configRejected`): OpenSSL's fixed reason texts only.
struct ConfigurationNotApplied: Error, CustomStringConvertible {
    let reason: TLSError
    var description: String { "the listener's TLS certificate is unusable: \(reason)" }
}

/// `server.max_connections` across all worker processes, through the master's shared segment.
final class SharedInFlightLimiter: InFlightLimiter {
    private let segment: InFlightSegment
    private let cell: Int

    init(segment: InFlightSegment, cell: Int) {
        self.segment = segment
        self.cell = cell
    }

    func tryAcquire() -> Bool { segment.tryAcquire(cell: cell) }
    func release() { segment.release(cell: cell) }
}
