#if canImport(Glibc)
import Glibc
#endif
import Common
import Logging
import NIOCore
import NIOPosix

// fluxgate-worker: started by the master only (WorkerDescriptors): its slot's listening socket at
// fd 3 (more from fd 8 with --listeners N), its control channel at fd 4, the shared in-flight
// segment at fd 5 (with --inflight-cell C), the hand-over channel for lent sockets at fd 6, the
// metrics segment at fd 7 (with --metrics-cell C). It
// reads its configuration from the channel, never from the YAML file, serves on one event loop,
// heartbeats every second, and exits when told to or when the master is gone.

signal(SIGPIPE, SIG_IGN)
let environment = ProcessInfoEnvironment.current()
let logger = FluxgateLogHandler.bootstrap(label: "fluxgate.worker", environment: environment)
let options = WorkerOptions(arguments: CommandLine.arguments)

let initial: (message: ControlMessage, configuration: Configuration)
do {
    initial = try InitialConfiguration.receive(from: Common.FileDescriptor(WorkerDescriptors.control))
} catch {
    logger.error("Worker could not receive its configuration", metadata: ["error": "\(error)"])
    exit(FluxgateExit.configRejected.rawValue)
}

let limiter: InFlightLimiter? = options.inFlightCell.flatMap { cell in
    InFlightSegment.attach(Common.FileDescriptor(WorkerDescriptors.inFlight)).map { SharedInFlightLimiter(segment: $0, cell: cell) }
}
// The rate-limit segment comes with the in-flight cell, which is its cell too (`max_in_flight`).
let rateLimits: HostRateLimits? = options.inFlightCell.flatMap { cell in
    options.rateLimitsFD.flatMap { fd in
        RateLimitSegment.attach(Common.FileDescriptor(fd)).map { HostRateLimits(inherited: $0, cell: cell) }
    }
}
// The host's target health (docs/routing-and-forwarding.md "Target health"), when the master
// passed its segment; else the worker keeps its own.
let health = options.targetHealthDescriptor.flatMap { TargetHealthSegment.attach(Common.FileDescriptor($0)) }
let metrics = options.metricsCell.flatMap { cell in
    MetricsSegment.attach(Common.FileDescriptor(WorkerDescriptors.metrics)).map { $0.region(cell) }
}
let descriptors =
    [WorkerDescriptors.listener]
    + (0..<(options.listeners - 1)).map { WorkerDescriptors.firstExtraListener + CInt($0) }
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let listeners = WorkerListeners(
    descriptors: descriptors, configuration: initial.configuration, logger: logger,
    limiter: limiter, metrics: metrics, rateLimits: rateLimits, group: group, health: health)
if !options.standby {
    do {
        try await listeners.startAccepting()
    } catch {
        logger.error("Worker failed to start serving", metadata: ["error": "\(error)"])
        exit(FluxgateExit.failure.rawValue)
    }
}

do {
    let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let handler = ControlChannelHandler(
                    dataPlane: listeners, standby: options.standby,
                    handover: Common.FileDescriptor(WorkerDescriptors.handover),
                    logger: logger
                ) { status in
                    exit(status)
                }
                try channel.pipeline.syncOperations.addHandler(handler)
            }
        }
        .withConnectedSocket(WorkerDescriptors.control)
        .get()
    let ready = ControlMessage(type: .ready, gen: initial.message.gen)
    try await channel.writeAndFlush(channel.allocator.buffer(bytes: ControlFrame.encode(ready))).get()
} catch {
    logger.error("Worker control channel failed", metadata: ["error": "\(error)"])
    exit(FluxgateExit.failure.rawValue)
}

// The event loop thread does all the work from here; the process exits from the control handler
// (drain complete, stop, or master gone). This thread only waits.
while true { pause() }
