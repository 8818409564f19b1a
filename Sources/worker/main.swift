#if canImport(Glibc)
import Glibc
#endif
import Common
import Logging
import NIOCore
import NIOPosix

// fluxgate-worker: started by the master only, with its slot's listening socket at fd 3 and its
// control channel at fd 4 (WorkerDescriptors). It reads its configuration from the channel, never
// from the YAML file, serves on one event loop, and exits when told to or when the master is gone.

signal(SIGPIPE, SIG_IGN)
let environment = ProcessInfoEnvironment.current()
let logger = FluxgateLogHandler.bootstrap(label: "fluxgate.worker", environment: environment)
let arguments = CommandLine.arguments
let slot = arguments.firstIndex(of: "--slot").flatMap { arguments.indices.contains($0 + 1) ? Int(arguments[$0 + 1]) : nil } ?? 0

let initial: (message: ControlMessage, configuration: Configuration)
do {
    initial = try InitialConfiguration.receive(from: Common.FileDescriptor(WorkerDescriptors.control))
} catch {
    logger.error("Worker could not receive its configuration", metadata: ["error": .quoted("\(error)")])
    exit(FluxgateExit.configRejected.rawValue)
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server: WorkerServer
do {
    server = try await WorkerServer.start(listener: .inheritedDescriptor(WorkerDescriptors.listener),
                                          configuration: initial.configuration, logger: logger, group: group)
} catch {
    logger.error("Worker failed to start serving", metadata: ["error": .quoted("\(error)")])
    exit(FluxgateExit.failure.rawValue)
}

do {
    let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let handler = ControlChannelHandler(dataPlane: server, logger: logger) { status in exit(status) }
                try channel.pipeline.syncOperations.addHandler(handler)
            }
        }
        .withConnectedSocket(WorkerDescriptors.control)
        .get()
    let ready = ControlMessage(type: .ready, seq: 1, ack: initial.message.seq, gen: initial.message.gen,
                               body: .init(pid: getpid(), slot: slot))
    try await channel.writeAndFlush(channel.allocator.buffer(bytes: ControlFrame.encode(ready))).get()
} catch {
    logger.error("Worker control channel failed", metadata: ["error": .quoted("\(error)")])
    exit(FluxgateExit.failure.rawValue)
}

// The event loop thread does all the work from here; the process exits from the control handler
// (drain complete, stop, or master gone). This thread only waits.
while true { pause() }
