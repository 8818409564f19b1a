import Common
import Logging
import NIOCore

/// What the worker process's event loop shares between every connection of every listener it
/// serves (after a shrink, or on a socket lent while another slot has no worker, a worker serves
/// several): the current configuration snapshot, the upstream pool, the in-flight limiter, the
/// request pipeline, and the one place every request ends (`requestEnded`). Each server keeps its
/// own `ConnectionRegistry`, so giving one socket back drains only that socket's connections. Touched only from that loop (held in a `NIOLoopBound`
/// by the servers).
final class WorkerContext {
    var snapshot: WorkerSnapshot
    /// The worker's one event loop, where everything here is touched (and stages answer).
    let eventLoop: EventLoop
    let pool: UpstreamPool
    let limiter: InFlightLimiter
    /// The host's rate-limit segment (docs/rate-limits.md); nil when none could be made.
    let rateLimits: HostRateLimits?
    /// The health of every upstream target, shared by the host's workers.
    let health: TargetHealthBoard
    let limits: WorkerLimits
    let logger: Logger
    /// The stages every request goes through (docs/routing-and-forwarding.md, "Order of checks").
    let pipeline: RequestPipeline
    /// Makes the observer of a forwarded request's response (the tap), when one is wanted:
    /// nil, and the relay pays a nil check.
    let responseObservers: ((RequestHead) -> ResponseObserver?)?
    /// The request line's direct path when the logger is the process's own handler (always,
    /// outside tests, which record metadata through their own handler).
    private let requestLineWriter: RequestLineWriter?
    /// Request lines are written (level `trace`, which `FLUXGATE_LOG` sets once per process).
    let logsRequests: Bool
    /// The worker's region of the host's metrics (docs/observability.md); nil when the master
    /// gave none (a worker run on its own, most tests).
    let metrics: WorkerMetrics?
    /// Request ids for requests whose client sent none (docs/observability.md "Request ids").
    let requestIDs = RequestIDGenerator()
    /// The model names of the worker's usage readers (`UsageObserver`), shared by its connections.
    let usageModelNames = UsageModelNames()

    /// The client of `rate_limits.redis`, made when a request first needs it, replaced when a
    /// reload changes the section.
    private var redis: RedisRateLimiter?

    /// The snapshot `redis` was last found right for: the same snapshot needs no comparison of
    /// the settings (~430 instructions per Redis-checked request). Strong: a weak reference gives
    /// the snapshot a side table, and every retain and release of it takes the slow path
    /// (+700 instructions per request); it keeps one replaced snapshot alive until the next check.
    private var redisSnapshot: WorkerSnapshot?

    func redisLimiter(for settings: Configuration.Redis, in snapshot: WorkerSnapshot) -> RedisRateLimiter {
        if let redis, redisSnapshot === snapshot { return redis }
        redisSnapshot = snapshot
        if let redis, redis.settings == settings { return redis }
        redis?.close()
        let made = RedisRateLimiter(settings: settings, eventLoop: eventLoop, logger: logger)
        redis = made
        return made
    }

    init(
        snapshot: WorkerSnapshot, eventLoop: EventLoop, limiter: InFlightLimiter, limits: WorkerLimits,
        logger: Logger, rateLimits: HostRateLimits? = nil, pipeline: RequestPipeline = .standard(),
        responseObservers: ((RequestHead) -> ResponseObserver?)? = nil, metrics: MetricsRegion? = nil,
        health: TargetHealthBoard? = nil
    ) {
        self.metrics = metrics.map(WorkerMetrics.init(region:))
        self.health = health ?? TargetHealthBoard(segment: nil)
        self.snapshot = snapshot
        self.eventLoop = eventLoop
        self.pool = UpstreamPool(eventLoop: eventLoop, limits: limits)
        self.limiter = limiter
        self.rateLimits = rateLimits
        self.limits = limits
        self.logger = logger
        self.pipeline = pipeline
        self.responseObservers = responseObservers
        self.logsRequests = logger.logLevel <= .trace
        // Only when the line would carry the request's fields alone (no logger-wide metadata).
        let handler = logger.handler as? FluxgateLogHandler
        self.requestLineWriter = handler.flatMap { $0.metadata.isEmpty && $0.metadataProvider == nil ? $0.requestLineWriter : nil }
    }

    /// Every request ends here, once, whatever happened to it: the facts feed the request line
    /// (docs/logging.md) and, as they are added, the metrics, usage and limits. `clientIP` is
    /// asked for only when a line is written (formatting an address costs ~3,000 instructions).
    /// (`inout`: the connection's own facts are read where they are, not copied.)
    func requestEnded(_ facts: inout RequestFacts, clientIP: () -> String?) {
        // One reading of the clock for the histograms and the line's duration.
        let now = NIODeadline.now()
        // Not `if let metrics`: that copy retained each of its caches.
        metrics?.record(facts, now: now.uptimeNanoseconds)
        guard logsRequests else { return }
        // A request id the facts lack is made for the line only.
        let madeID = facts.requestID == nil ? requestIDs.nextText() : nil
        let ip = clientIP()
        if let requestLineWriter {
            // As `RequestLogRecord.emit(_:to: RequestLineWriter)` does, without a closure
            // around `forEachLineField` in between (one more indirect call per field, ~250
            // instructions per line).
            requestLineWriter.write(level: .trace, message: "Request processed") { line in
                facts.forEachLineField(clientIP: ip, endedAt: now, madeRequestID: madeID) {
                    RequestLogRecord.add($0, $1, to: &line)
                }
            }
        } else {
            // A logger of a test's own: the same fields as its metadata.
            RequestLogRecord.emit({ facts.forEachLineField(clientIP: ip, endedAt: now, madeRequestID: madeID, $0) }, to: logger)
        }
        // A slice of the head's bytes: let go now, so the parser writes the next head into them.
        facts.requestTarget = nil
    }
}

/// The open client connections accepted on one listening socket (one per `WorkerServer`), for its
/// drain. Touched only from the worker's event loop.
final class ConnectionRegistry {
    var channels: [ObjectIdentifier: Channel] = [:]
}
