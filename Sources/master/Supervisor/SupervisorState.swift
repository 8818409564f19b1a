import Common

/// The master's supervision logic as a pure value
/// (docs/architecture.md "The supervisor is a state machine"): `handle(event, now:)` returns
/// the actions a thin shell performs (`Master`). No I/O, no clock reads, no sleeping: every
/// deadline is computed from the `now` passed in, so tests drive it with explicit instants.
///
/// Model: the *current layout* is the configuration, generation, listener set and one slot per
/// worker that is serving. A reload either changes the configuration of the current workers
/// (hot: `applyConfig` broadcast) or builds a *candidate layout* and swaps it in when all its
/// workers are ready (graceful restart). Listener ownership is explicit, so a socket is closed only
/// when no layout and no live worker uses it.
struct SupervisorState {
    enum Phase: Equatable {
        case idle
        /// First generation: waiting for every worker's `ready` until the deadline.
        case starting(deadline: Instant?)
        case running
        case stopping(Stopping)
        case exited(Int32)
    }

    struct Stopping: Equatable {
        var signal: SupervisorSignal?
        var exitCode: Int32
        var killAt: Instant
        var killed = false
        var fast: Bool
    }

    struct Slot: Equatable {
        var listeners: [ListenerID]
        var worker: WorkerID?
        /// Consecutive unexpected exits without a stable run in between.
        var failures = 0
        var respawnAt: Instant?
    }

    enum Loan: Equatable { case lent, returning }

    struct Layout: Equatable {
        var configuration: Configuration
        var generation: UInt64
        /// Resolved after the first socket is bound (port 0 becomes the chosen port).
        var address: BindAddress
        var sockets: [ListenerID]
        var slots: [Slot]
    }

    struct Worker: Equatable {
        enum Phase: Equatable { case starting(deadline: Instant), ready, draining(killAt: Instant), killed }
        let id: WorkerID
        let slot: Int
        var generation: UInt64
        let listeners: [ListenerID]
        var phase: Phase
        /// Accepts on its own `listeners` (false in standby and after `stoppedAccepting`).
        var accepting: Bool
        /// Sockets of other slots this worker was lent while those slots had no accepting worker,
        /// and whether their return was asked for (`releaseListener`). It accepts on them until it
        /// reports `listenerReleased` (or `stoppedAccepting`, or exits).
        var borrowed: [ListenerID: Loan] = [:]
        var pid: Int32?
        let spawnedAt: Instant
        var lastSeen: Instant
    }

    // Stored state: read by the shell and the tests, changed only by `handle` (this file and the
    // SupervisorState+*.swift extensions; Swift's `private(set)` does not reach other files).
    let policy: SupervisorPolicy
    let configPath: String
    let onlineCPUs: Int
    var phase: Phase = .idle
    var current: Layout
    var workers: [WorkerID: Worker] = [:]
    var openListeners: [ListenerID] = []
    var reload: Reload?
    var pendingReload: PendingReload?
    var lastReload: ReloadOutcome?
    /// Reloads finished, by result (`fluxgate_config_reloads_total`, docs/observability.md).
    var reloadTally = ReloadTally()
    var nextWatchdog: Instant?
    var nextWorker = 1
    var nextListener = 1
    /// Actions of the event being handled (returned by `handle`).
    var output: [SupervisorAction] = []

    init(configuration: Configuration, configPath: String, policy: SupervisorPolicy = SupervisorPolicy(), onlineCPUs: Int) {
        self.policy = policy
        self.configPath = configPath
        self.onlineCPUs = onlineCPUs
        self.current = Layout(
            configuration: configuration, generation: 1, address: configuration.server.bindAddress,
            sockets: [], slots: [])
    }

    mutating func handle(_ event: SupervisorEvent, now: Instant) -> [SupervisorAction] {
        output = []
        switch event {
        case .start: start(now: now)
        case .tick: tick(now: now)
        case .signal(let signal): received(signal, now: now)
        case .reloadRequested(let trigger): requestReload(trigger, now: now)
        case .configurationLoaded(let result): configurationLoaded(result, now: now)
        case .listenersOpened(let ids, let address): listenersOpened(ids, address: address, now: now)
        case .listenersFailed(let ids, let reason): listenersFailed(ids, reason: reason, now: now)
        case .workerSpawned(let id, let pid): workers[id]?.pid = pid
        case .spawnFailed(let id, let reason): workerGone(id, reason: "spawn failed: \(reason)", exit: nil, now: now)
        case .workerReady(let id, let generation): seen(id, now: now); workerReady(id, generation: generation, now: now)
        case .configApplied(let id, let generation): seen(id, now: now); configApplied(id, generation: generation, now: now)
        case .configRejected(let id, let generation, let error):
            seen(id, now: now); configRejected(id, generation: generation, error: error, now: now)
        case .heartbeat(let id): seen(id, now: now)
        case .stoppedAccepting(let id): seen(id, now: now); stoppedAccepting(id)
        case .listenerReleased(let id, let listener): seen(id, now: now); listenerReleased(listener, by: id)
        case .drained(let id): seen(id, now: now)
        case .workerExited(let id, let exit): workerGone(id, reason: exit.description, exit: exit, now: now)
        }
        return output
    }

    /// The earliest instant at which `tick` has something to do (the shell's poll timeout).
    func nextDeadline() -> Instant? {
        var deadlines: [Instant] = []
        if let nextWatchdog { deadlines.append(nextWatchdog) }
        if case .starting(let deadline?) = phase { deadlines.append(deadline) }
        if case .stopping(let stopping) = phase, !stopping.killed { deadlines.append(stopping.killAt) }
        if let deadline = reload?.deadline { deadlines.append(deadline) }
        deadlines += current.slots.compactMap(\.respawnAt)
        for worker in workers.values {
            switch worker.phase {
            case .starting(let deadline): deadlines.append(deadline)
            case .ready: deadlines.append(worker.lastSeen + policy.heartbeatTimeout)
            case .draining(let killAt): deadlines.append(killAt)
            case .killed: break
            }
        }
        return deadlines.min()
    }

    /// `STATUS=` text: always says what is running and how the last reload ended.
    var statusLine: String {
        let serving =
            "serving generation \(current.generation) with \(current.slots.count) worker\(current.slots.count == 1 ? "" : "s") on \(current.address)"
        switch lastReload {
        case .rejected(let problems)?: return "reload rejected: \(problems.first ?? "invalid configuration"); \(serving)"
        case .failed(let why)?: return "reload failed: \(why); \(serving)"
        case .applied?, .unchanged?, .aborted?, nil: return serving
        }
    }

    // MARK: - Output helpers

    mutating func emit(_ action: SupervisorAction) { output.append(action) }
    mutating func log(_ level: LogEntry.Level, _ message: String, _ metadata: [(String, LogEntry.Value)] = []) {
        output.append(.log(LogEntry(level, message, metadata)))
    }

    mutating func makeWorkerID() -> WorkerID {
        defer { nextWorker += 1 }
        return WorkerID(raw: nextWorker)
    }

    mutating func makeListenerIDs(_ count: Int) -> [ListenerID] {
        defer { nextListener += count }
        return (0..<count).map { ListenerID(raw: nextListener + $0) }
    }

    func workerCount(of configuration: Configuration) -> Int {
        configuration.server.workers.resolved(onlineCPUs: onlineCPUs)
    }

    private mutating func seen(_ id: WorkerID, now: Instant) {
        workers[id]?.lastSeen = now
    }
}
