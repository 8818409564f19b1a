import Common
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The worker's data plane as the control channel sees it: one `WorkerServer` per inherited
/// listening socket (fd 3, and fd 6… when the worker count shrank and this slot took over surplus
/// sockets). In standby nothing accepts until `startAccepting`: the previous acceptor of these
/// sockets is still draining, and two processes must not accept on one socket at once.
final class WorkerListeners: DataPlane {
    private struct State {
        var configuration: Configuration
        var servers: [WorkerServer] = []
        var started = false
        var draining = false
    }

    private let descriptors: [CInt]
    private let logger: Logger
    private let limiter: InFlightLimiter?
    private let group: MultiThreadedEventLoopGroup
    private let state: Mutex<State>

    init(descriptors: [CInt], configuration: Configuration, logger: Logger, limiter: InFlightLimiter?,
         group: MultiThreadedEventLoopGroup) {
        self.descriptors = descriptors
        self.logger = logger
        self.limiter = limiter
        self.group = group
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
            servers.append(try await WorkerServer.start(listener: .inheritedDescriptor(fd), configuration: configuration,
                                                        logger: logger, limiter: limiter, group: group))
        }
        let latest = state.withLock { state in
            state.servers = servers
            return state.configuration
        }
        if latest != configuration { servers.forEach { _ = try? $0.apply(latest) } }
    }

    /// Every server swaps its snapshot; in standby (no server yet) the configuration is checked the
    /// same way and kept for `startAccepting`. A configuration that cannot be applied is not kept.
    func apply(_ configuration: Configuration) -> EventLoopFuture<Void> {
        let loop = group.next()
        let servers = state.withLock { $0.servers }
        do throws(TLSError) {
            if servers.isEmpty { _ = try WorkerSnapshot(configuration: configuration) }
            let swapped = try servers.map { server throws(TLSError) in try server.apply(configuration) }
            state.withLock { $0.configuration = configuration }
            return .andAllSucceed(swapped, on: loop)
        } catch {
            return loop.makeFailedFuture(ConfigurationNotApplied(reason: error))
        }
    }

    /// Stops accepting on every socket: `stopped` completes when every listener is closed
    /// (`stoppedAccepting`), `done` when every connection has finished or the deadline passed.
    func drainReportingStop(deadlineMs: UInt64) -> (stopped: EventLoopFuture<Void>, done: EventLoopFuture<Void>) {
        let loop = group.next()
        let servers = state.withLock { state in
            state.draining = true
            return state.servers
        }
        let stopped = EventLoopFuture.andAllComplete(servers.map(\.closeFuture), on: loop)
        let done = loop.makeFutureWithTask {
            await withTaskGroup(of: Void.self) { tasks in
                for server in servers { tasks.addTask { await server.shutdown(gracePeriod: .milliseconds(Int64(deadlineMs))) } }
            }
        }
        return (stopped, done)
    }
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
