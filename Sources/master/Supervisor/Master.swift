#if canImport(Glibc)
import Glibc
#endif
import CSystemd
import Common
import ConfigLoading
import Logging

/// The running master: a thin shell around `SupervisorState`. One poll loop over the signalfd,
/// the workers' control channels and the operator socket; a file check every 250 ms. Every event
/// goes through the state machine; this class only performs the actions it returns (bind,
/// posix_spawn, send, kill, sd_notify, log) and feeds results back as events.
final class Master {
    struct Settings {
        var configPath: String
        var workerExecutable: String
        var environment: [String: String]
        var controlSocketPath: String
        var onlineCPUs = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// The file is checked this often (docs/architecture.md "Watching the file": a change is in
    /// force within a second).
    static let watchInterval: Duration = .milliseconds(250)

    let settings: Settings
    let logger: Logger
    var state: SupervisorState
    private var queue: [SupervisorEvent] = []
    private var exitCode: Int32?
    var workers = WorkerTable()
    private var listeners: [ListenerID: FileDescriptor] = [:]
    private var watcher: ConfigWatcher
    private var nextWatch = Instant.zero
    var operators = OperatorConnections()
    let segment: InFlightSegment?
    /// The host's metrics (docs/observability.md): the workers' regions, the totals kept from
    /// workers that exited, the listener, and the supervisor's own counters.
    let metrics: MetricsSegment?
    var retained = MetricsTotals()
    var observability = ObservabilityServer()
    var exitTally = WorkerExitTally()
    var lastReloadSuccess = Master.wallClock()
    var reloadsSeen: Int64 = 0
    /// Addresses the listener could not bind: not retried until the configuration names another.
    var failedObservabilityAddresses: Set<String> = []
    /// Every rate limit's host-local state (docs/rate-limits.md "On one host").
    private let rateLimits: RateLimitSegment?
    /// Limits already reported as unplaced (each is reported once, not per worker and reload).
    private var unplacedLimits: Set<String> = []
    /// Upstream target health shared by every worker (docs/routing-and-forwarding.md "Target
    /// health"): made once, so it outlives reloads and worker crashes.
    let health: TargetHealthSegment?

    init(settings: Settings, configuration: Configuration, logger: Logger) {
        self.settings = settings
        self.logger = logger
        var policy = SupervisorPolicy()
        var watchdogUsec: UInt64 = 0
        if sd_watchdog_enabled(0, &watchdogUsec) > 0 { policy.watchdogInterval = .microseconds(Int64(watchdogUsec)) }
        state = SupervisorState(
            configuration: configuration, configPath: settings.configPath, policy: policy,
            onlineCPUs: settings.onlineCPUs)
        watcher = ConfigWatcher(path: settings.configPath)
        do {
            let segment = try InFlightSegment.create()
            segment.limit = Int(configuration.server.maxConnections)
            self.segment = segment
        } catch {
            logger.warning(
                "Shared in-flight counter unavailable; max_connections applies per worker",
                metadata: ["error": "\(error)"])
            self.segment = nil
        }
        do {
            self.metrics = try MetricsSegment.create()
        } catch {
            logger.warning("Shared metrics segment unavailable; /metrics shows no request counters", metadata: ["error": "\(error)"])
            self.metrics = nil
        }
        do {
            self.rateLimits = try RateLimitSegment.create()
        } catch {
            logger.warning(
                "Shared rate-limit memory unavailable; rate limits apply per worker", metadata: ["error": "\(error)"])
            self.rateLimits = nil
        }
        do {
            health = try TargetHealthSegment.create()
        } catch {
            logger.warning(
                "Shared target health unavailable; each worker keeps its own", metadata: ["error": "\(error)"])
            health = nil
        }
    }

    /// Room for `configuration`'s limits, made before any worker sees it.
    private func prepareRateLimits(_ configuration: Configuration) {
        guard let rateLimits else { return }
        for name in rateLimits.prepare(for: configuration) where unplacedLimits.insert(name).inserted {
            logger.error("Rate-limit memory is full; this limit is not enforced", metadata: ["limit": "\(name)"])
        }
    }

    func run() -> Int32 {
        let signals: FileDescriptor
        do {
            signals = try Signals.makeSignalFD()
        } catch {
            logger.error("Failed to start proxy server", metadata: ["error": "\(error)"])
            return FluxgateExit.failure.rawValue
        }
        do {
            operators.listener = try OperatorChannel.listen(path: settings.controlSocketPath)
        } catch {
            logger.warning(
                "Control socket unavailable; fluxgate reload and status will not reach this master",
                metadata: ["path": "\(settings.controlSocketPath)", "error": "\(error)"])
        }
        defer {
            if let listener = operators.listener {
                listener.close()
                unlink(settings.controlSocketPath)
            }
        }
        defer { observability.close() }
        enqueue(.start)
        while true {
            runQueue()
            if let exitCode { return exitCode }
            observabilityFollowsConfiguration()
            pollOnce(signals: signals)
            watchFile()
            enqueue(.tick)
        }
    }

    // MARK: - Events and actions

    func enqueue(_ event: SupervisorEvent) { queue.append(event) }

    private func runQueue() {
        while !queue.isEmpty, exitCode == nil {
            let event = queue.removeFirst()
            for action in state.handle(event, now: Self.now()) { perform(action) }
        }
    }

    static func now() -> Instant {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Instant(nanoseconds: UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec))
    }

    private func perform(_ action: SupervisorAction) {
        switch action {
        case .openListeners(let ids, let address): openListeners(ids, address: address)
        case .closeListeners(let ids): for id in ids { listeners.removeValue(forKey: id)?.close() }
        case .spawn(let launch): spawn(launch)
        case .send(let id, let command):
            if case .drain = command { exitTally.draining.insert(id) }
            send(command, to: id)
        case .kill(let id, let signal):
            if let pid = workers[id]?.pid { kill(pid, signal == .kill ? SIGKILL : SIGTERM) }
        case .loadConfiguration: enqueue(.configurationLoaded(ConfigLoader.load(path: settings.configPath)))
        case .notify(let text): SystemdNotifier.notify(text)
        case .log(let entry): write(entry)
        case .replyToReloadRequest(let id, let outcome): operators.answer(id, outcome)
        case .exit(let code): exitCode = code
        }
    }

    private func openListeners(_ ids: [ListenerID], address: BindAddress) {
        var opened: [FileDescriptor] = []
        do throws(SystemError) {
            var address = address
            for _ in ids {
                let fd = try Sockets.listen(on: address)
                opened.append(fd)
                // Port 0 means "any free port": the other sockets of the set share the one chosen.
                if address.port == 0 { address = try Sockets.localAddress(of: fd) }
            }
            let resolved = try Sockets.localAddress(of: opened[0])
            for (id, fd) in zip(ids, opened) { listeners[id] = fd }
            enqueue(.listenersOpened(ids, resolved))
        } catch {
            opened.forEach { $0.close() }
            enqueue(.listenersFailed(ids, "\(error)"))
        }
    }

    private func spawn(_ launch: WorkerLaunch) {
        let sockets = launch.listeners.compactMap { listeners[$0] }
        guard sockets.count == launch.listeners.count, !sockets.isEmpty else {
            enqueue(.spawnFailed(launch.worker, "listener not open"))
            return
        }
        prepareRateLimits(launch.configuration)
        do {
            let handle = try workers.spawn(
                launch, sockets: sockets, segment: segment, metrics: metrics, rateLimits: rateLimits, health: health,
                settings: settings)
            segment.map { $0.limit = Int(launch.configuration.server.maxConnections) }
            enqueue(.workerSpawned(launch.worker, pid: handle.pid))
        } catch {
            enqueue(.spawnFailed(launch.worker, "\(error)"))
        }
    }

    private func send(_ command: WorkerCommand, to id: WorkerID) {
        switch command {
        case .applyConfig(_, let configuration):
            // The proxy-wide limit follows the newest configuration sent (workers read it per request).
            segment.map { $0.limit = Int(configuration.server.maxConnections) }
            prepareRateLimits(configuration)
            workers.send(command, to: id)
        case .adoptListener(let listener):
            // Not open any more: the worker is never told, and answers the release for nothing.
            if let socket = listeners[listener] { workers.lend(socket, as: listener, to: id) }
        case .startAccepting, .drain, .releaseListener:
            workers.send(command, to: id)
        }
    }

    private func write(_ entry: LogEntry) {
        var metadata: Logger.Metadata = [:]
        for (key, value) in entry.metadata {
            switch value {
            case .plain(let text): metadata[key] = .string(text)
            case .quoted(let text): metadata[key] = .quoted(text)
            }
        }
        let level: Logger.Level
        switch entry.level {
        case .debug: level = .debug
        case .info: level = .info
        case .warning: level = .warning
        case .error: level = .error
        }
        logger.log(level: level, "\(entry.message)", metadata: metadata)
    }

    // MARK: - Poll

    private func pollOnce(signals: FileDescriptor) {
        let now = Self.now()
        var timeout = Self.watchInterval
        if let deadline = state.nextDeadline() { timeout = min(timeout, deadline - now) }
        var fds = [pollfd(fd: signals.rawValue, events: Int16(POLLIN), revents: 0)]
        let operatorFDs = operators.pollDescriptors
        let workerFDs = workers.pollDescriptors
        fds += (operatorFDs + workerFDs.map(\.fd)).map { pollfd(fd: $0.rawValue, events: Int16(POLLIN), revents: 0) }
        let observabilityFDs = observability.pollDescriptors
        fds += observabilityFDs.map { pollfd(fd: $0.fd.rawValue, events: $0.events, revents: 0) }
        let milliseconds = Int32(clamping: (timeout.nanoseconds + 999_999) / 1_000_000)
        guard Glibc.poll(&fds, nfds_t(fds.count), milliseconds) > 0 else { return }
        if fds[0].revents != 0 { for signal in Signals.drain(signals) { received(signal) } }
        for (index, fd) in operatorFDs.enumerated() where fds[1 + index].revents != 0 {
            for event in operators.readable(fd, statusText: statusText) { enqueue(event) }
        }
        for (index, entry) in workerFDs.enumerated() where fds[1 + operatorFDs.count + index].revents != 0 {
            for event in workers.readable(entry.id, logger: logger) { enqueue(event) }
        }
        let first = 1 + operatorFDs.count + workerFDs.count
        for (index, entry) in observabilityFDs.enumerated() where fds[first + index].revents != 0 {
            observability.ready(entry.fd, now: Self.now()) { respond(to: $0) }
        }
        observability.expire(now: Self.now())
    }

    private func received(_ signal: CInt) {
        switch signal {
        case SIGCHLD:
            for (id, exit) in workers.reap(segment: segment, metrics: metrics, rateLimits: rateLimits, retained: &retained) {
                exitTally.count(id, phase: state.workers[id]?.phase)
                enqueue(.workerExited(id, exit))
            }
        case SIGHUP: enqueue(.signal(.hangup))
        case SIGTERM: enqueue(.signal(.terminate))
        case SIGINT: enqueue(.signal(.interrupt))
        case SIGQUIT: enqueue(.signal(.quit))
        default: break  // SIGUSR1/SIGUSR2: reserved (log reopening)
        }
    }

    private func watchFile() {
        let now = Self.now()
        guard now >= nextWatch else { return }
        nextWatch = now + Self.watchInterval
        switch watcher.check() {
        case .none:
            break
        case .changed:
            enqueue(.reloadRequested(.fileChanged))
        case .becameUnreadable(let code) where code == ENOENT:
            logger.warning(
                "Configuration file not found during polling; continuing with last valid configuration",
                metadata: ["path": "\(settings.configPath)"])
        case .becameUnreadable(let code):
            logger.warning(
                "Configuration file unreadable during polling; continuing with last valid configuration",
                metadata: ["path": "\(settings.configPath)", "error": "\(String(cString: strerror(code)))"])
        }
    }

    private var statusText: String {
        var lines = [state.statusLine]
        for (slot, record) in state.current.slots.enumerated() {
            let worker = record.worker.flatMap { state.workers[$0] }
            let pid = worker?.pid.map(String.init) ?? "-"
            lines.append("slot \(slot): pid \(pid) generation \(worker?.generation ?? 0)\(workerCounters(record.worker))")
        }
        if let last = state.lastReload { lines.append("last reload: \(last)") }
        return lines.joined(separator: "\n")
    }
}
