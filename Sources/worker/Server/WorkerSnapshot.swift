import Common
import Logging
import NIOCore

/// Everything derived from one configuration, built once when the configuration arrives so the
/// data plane only looks things up. A request uses the snapshot current at its head for its
/// whole life (behaviour §6: old or new configuration, never a mix).
///
/// A class: every request takes the current snapshot, which is then one retain instead of a copy
/// of the configuration's and the router's fields; and its identity tells a connection whether
/// what it cached (the last authentication) was made under the configuration still current.
final class WorkerSnapshot: Sendable {
    let configuration: Configuration
    let authenticator: Authenticator
    let router: Router
    /// The listener's TLS context when `server.tls` is set: connections accepted while this
    /// snapshot is current use it for their whole life, so a reload with a renewed certificate
    /// reaches new connections only.
    let serverTLS: TLSContext?

    /// Throws when `server.tls` cannot be turned into a context (the loader checked the same
    /// bytes with the same OpenSSL, so this means a configuration the loader did not make).
    init(configuration: Configuration) throws(TLSError) {
        self.configuration = configuration
        self.authenticator = Authenticator(configuration: configuration)
        self.router = Router(upstreams: configuration.upstreams.entries)
        self.serverTLS = try configuration.server.tls.map { tls throws(TLSError) in try TLSContext.server(tls) }
    }
}

/// The mutable state of a worker's event loop, touched only from that loop (held in a
/// `NIOLoopBound`): the current snapshot, the upstream pool, the open client connections.
final class WorkerLoopState {
    var snapshot: WorkerSnapshot
    let pool: UpstreamPool
    let limiter: InFlightLimiter
    let limits: WorkerLimits
    let logger: Logger
    var clientConnections: [ObjectIdentifier: Channel] = [:]
    /// The request line's direct path when the logger is the process's own handler (always,
    /// outside tests, which record metadata through their own handler).
    private let requestLineWriter: RequestLineWriter?
    /// Request lines are written (level `trace`, which `FLUXGATE_LOG` sets once per process).
    let logsRequests: Bool

    init(snapshot: WorkerSnapshot, eventLoop: EventLoop, limiter: InFlightLimiter, limits: WorkerLimits,
         logger: Logger) {
        self.snapshot = snapshot
        self.pool = UpstreamPool(eventLoop: eventLoop, limits: limits)
        self.limiter = limiter
        self.limits = limits
        self.logger = logger
        self.logsRequests = logger.logLevel <= .trace
        // Only when the line would carry the request's fields alone (no logger-wide metadata).
        let handler = logger.handler as? FluxgateLogHandler
        self.requestLineWriter = handler.flatMap { $0.metadata.isEmpty && $0.metadataProvider == nil ? $0.requestLineWriter : nil }
    }

    /// Writes the request line (behaviour §7).
    func log(_ record: RequestLogRecord) {
        if let requestLineWriter { record.emit(to: requestLineWriter) } else { record.emit(to: logger) }
    }
}
