#if canImport(Glibc)
import Glibc
#endif
import Common
import Logging

/// The running master: owns the listening sockets (one SO_REUSEPORT socket per worker slot, kept
/// for the master's whole life), spawns one worker per slot, hands each its configuration over
/// its control channel, and drains them on SIGTERM/SIGINT.
///
/// This is the first generation of the supervisor: start, serve, shut down. Reload, graceful
/// restarts and crash respawn (lifecycle.md) build on the same pieces.
final class Master {
    private let configPath: String
    private let configuration: Configuration
    private let workerExecutable: String
    private let environment: [String: String]
    private let logger: Logger
    private var workers: [WorkerProcess] = []
    private var listeners: [FileDescriptor] = []
    private var sequence: UInt64 = 0
    private let generation: UInt64 = 1
    /// How long workers have to finish in-flight requests on SIGTERM before they are killed.
    static let shutdownTimeoutMs: UInt64 = 30_000
    /// How long a first-generation worker has to report ready.
    static let startTimeoutMs: Int = 15_000

    init(configPath: String, configuration: Configuration, workerExecutable: String,
         environment: [String: String], logger: Logger) {
        self.configPath = configPath
        self.configuration = configuration
        self.workerExecutable = workerExecutable
        self.environment = environment
        self.logger = logger
    }

    func run() -> Int32 {
        let signals: FileDescriptor
        do {
            signals = try Signals.makeSignalFD()
            try bindListeners()
            for slot in listeners.indices { try spawnWorker(slot: slot) }
        } catch {
            logger.error("Failed to start proxy server", metadata: ["error": .quoted("\(error)")])
            stopAll(deadlineMs: 0)
            return FluxgateExit.failure.rawValue
        }
        switch awaitReady(signals: signals) {
        case .ready:
            break
        case .signal(let signal):
            return shutdown(signal: signal, signals: signals)
        case .failed(let reason):
            logger.error("Workers failed to start", metadata: ["error": .quoted(reason)])
            stopAll(deadlineMs: 0)
            return FluxgateExit.failure.rawValue
        }
        let address = (try? Sockets.localAddress(of: listeners[0])).map(String.init(describing:)) ?? "\(configuration.server.bindAddress)"
        logger.info("Fluxgate proxy server listening on \(address)")
        SystemdNotifier.notify("READY=1\nSTATUS=serving generation \(generation) with \(workers.count) workers on \(address)")
        return serve(signals: signals)
    }

    // MARK: - Start

    private func bindListeners() throws {
        let count = configuration.server.workers.resolved(onlineCPUs: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        var address = configuration.server.bindAddress
        for _ in 0..<count {
            let fd = try Sockets.listen(on: address)
            listeners.append(fd)
            // Port 0 means "any free port": every further slot socket shares the one the kernel chose.
            if address.port == 0 { address = try Sockets.localAddress(of: fd) }
        }
    }

    private func spawnWorker(slot: Int) throws {
        let (ours, theirs) = try Sockets.socketPair()
        defer { theirs.close() }
        let pid: pid_t
        do {
            pid = try Spawn.spawn(
                executable: workerExecutable, arguments: ["--slot", String(slot)], environment: environment,
                inherited: [Spawn.Inherited(listeners[slot], as: WorkerDescriptors.listener),
                            Spawn.Inherited(theirs, as: WorkerDescriptors.control)])
        } catch {
            ours.close()
            throw error
        }
        let worker = WorkerProcess(slot: slot, pid: pid, control: ours)
        workers.append(worker)
        try send(.applyConfig, to: worker, body: .init(config: configuration))
    }

    private enum StartOutcome { case ready, signal(CInt), failed(String) }

    private func awaitReady(signals: FileDescriptor) -> StartOutcome {
        let deadline = Monotonic.nowMs() + UInt64(Self.startTimeoutMs)
        while workers.contains(where: { !$0.ready }) {
            let now = Monotonic.nowMs()
            guard now < deadline else { return .failed("no ready report within \(Self.startTimeoutMs) ms") }
            let events = poll(signals: signals, timeoutMs: Int(deadline - now))
            for signal in events.signals {
                switch signal {
                case SIGTERM, SIGINT, SIGQUIT: return .signal(signal)
                case SIGCHLD:
                    if let exit = reapExited().first {
                        return .failed("worker \(exit.pid) exited during start-up (\(exit.reason))")
                    }
                default: break
                }
            }
            if let failure = readControl(from: events.readable) { return .failed(failure) }
        }
        return .ready
    }

    // MARK: - Serve

    private func serve(signals: FileDescriptor) -> Int32 {
        while true {
            let events = poll(signals: signals, timeoutMs: 1000)
            for signal in events.signals {
                switch signal {
                case SIGTERM, SIGINT, SIGQUIT:
                    return shutdown(signal: signal, signals: signals)
                case SIGCHLD:
                    for exit in reapExited() {
                        logger.error("Worker exited unexpectedly", metadata: ["pid": "\(exit.pid)", "reason": .quoted(exit.reason)])
                    }
                    if workers.isEmpty {
                        logger.error("No worker left; stopping")
                        SystemdNotifier.notify("STOPPING=1")
                        return FluxgateExit.failure.rawValue
                    }
                case SIGHUP:
                    logger.warning("Reload is not supported yet; keeping the running configuration", metadata: ["path": .quoted(configPath)])
                default:
                    break
                }
            }
            if let failure = readControl(from: events.readable) {
                logger.error("Control channel failure", metadata: ["error": .quoted(failure)])
            }
        }
    }

    // MARK: - Shutdown

    private func shutdown(signal: CInt, signals: FileDescriptor) -> Int32 {
        logger.info("Shutdown signal received (\(Signals.name(signal))); shutting down proxy")
        SystemdNotifier.notify("STOPPING=1")
        stopAll(deadlineMs: Self.shutdownTimeoutMs, signals: signals)
        listeners.forEach { $0.close() }
        logger.info("Proxy server shutdown complete")
        return FluxgateExit.success.rawValue
    }

    /// Asks every worker to drain, waits for them to exit until the deadline, then kills the rest.
    private func stopAll(deadlineMs: UInt64, signals: FileDescriptor? = nil) {
        for worker in workers {
            try? send(.drain, to: worker, body: .init(deadlineMs: deadlineMs))
        }
        let deadline = Monotonic.nowMs() + deadlineMs
        while !workers.isEmpty, let signals, Monotonic.nowMs() < deadline {
            _ = poll(signals: signals, timeoutMs: Int(min(deadline - Monotonic.nowMs(), 200)))
            _ = reapExited()
        }
        for worker in workers {
            kill(worker.pid, SIGKILL)
            var status: CInt = 0
            _ = try? syscall("waitpid") { waitpid(worker.pid, &status, 0) }
            worker.control.close()
            logger.warning("Worker killed at the shutdown deadline", metadata: ["pid": "\(worker.pid)"])
        }
        workers.removeAll()
    }

    // MARK: - Plumbing

    private func send(_ kind: ControlMessage.Kind, to worker: WorkerProcess, body: ControlMessage.Body) throws {
        sequence += 1
        let frame = try ControlFrame.encode(ControlMessage(type: kind, seq: sequence, gen: generation, body: body))
        try worker.control.sendAll(frame)
    }

    private struct PollEvents {
        var signals: [CInt] = []
        var readable: [WorkerProcess] = []
    }

    private func poll(signals: FileDescriptor, timeoutMs: Int) -> PollEvents {
        var fds = [pollfd(fd: signals.rawValue, events: Int16(POLLIN), revents: 0)]
        fds += workers.map { pollfd(fd: $0.control.rawValue, events: Int16(POLLIN), revents: 0) }
        let n = Glibc.poll(&fds, nfds_t(fds.count), Int32(clamping: timeoutMs))
        var events = PollEvents()
        guard n > 0 else { return events }
        if fds[0].revents != 0 { events.signals = Signals.drain(signals) }
        for (index, worker) in workers.enumerated() where fds[index + 1].revents != 0 {
            events.readable.append(worker)
        }
        return events
    }

    /// Reads what the readable workers sent; returns a description of the first protocol failure.
    private func readControl(from readable: [WorkerProcess]) -> String? {
        var failure: String?
        for worker in readable {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            guard let n = try? worker.control.read(into: &buffer), n > 0 else { continue }  // EOF: SIGCHLD follows
            worker.decoder.feed(buffer[0..<n])
            do {
                while let message = try worker.decoder.next() {
                    handle(message, from: worker)
                }
            } catch {
                failure = "worker \(worker.pid): \(error)"
            }
        }
        return failure
    }

    private func handle(_ message: ControlMessage, from worker: WorkerProcess) {
        switch message.type {
        case .ready:
            worker.ready = true
        case .configRejected:
            logger.error("Worker rejected its configuration", metadata: ["pid": "\(worker.pid)", "error": .quoted(message.body.error ?? "")])
        case .hello, .configApplied, .heartbeat, .drained:
            break
        case .applyConfig, .drain, .stop, .reopenLogs:
            logger.warning("Unexpected control message from worker", metadata: ["pid": "\(worker.pid)", "type": "\(message.type.rawValue)"])
        }
    }

    private struct Exit { let pid: pid_t; let reason: String }

    /// Reaps every exited child and removes it from the table.
    private func reapExited() -> [Exit] {
        var exits: [Exit] = []
        while true {
            var status: CInt = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { break }
            exits.append(Exit(pid: pid, reason: ExitStatus(raw: status).description))
            if let index = workers.firstIndex(where: { $0.pid == pid }) {
                workers[index].control.close()
                workers.remove(at: index)
            }
        }
        return exits
    }
}

/// One worker process as the master sees it.
final class WorkerProcess {
    let slot: Int
    let pid: pid_t
    let control: FileDescriptor
    var decoder = ControlFrameDecoder()
    var ready = false

    init(slot: Int, pid: pid_t, control: FileDescriptor) {
        self.slot = slot
        self.pid = pid
        self.control = control
    }
}
