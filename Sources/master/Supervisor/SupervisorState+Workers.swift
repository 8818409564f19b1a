import Common

// First start, spawning, readiness, crash respawn with backoff, heartbeats, the hand-over of a
// socket between two acceptors, and closing listeners nobody uses any more.
extension SupervisorState {
    // MARK: - First start

    mutating func start(now: Instant) {
        guard case .idle = phase else { return }
        let count = workerCount(of: current.configuration)
        current.sockets = makeListenerIDs(count)
        current.slots = current.sockets.map { Slot(listeners: [$0]) }
        phase = .starting(deadline: nil)
        if let interval = policy.watchdogInterval { nextWatchdog = now + interval / 2 }
        emit(.openListeners(current.sockets, current.address))
    }

    mutating func listenersOpened(_ ids: [ListenerID], address: BindAddress, now: Instant) {
        openListeners += ids
        switch phase {
        case .starting(deadline: nil) where ids == current.sockets:
            current.address = address
            phase = .starting(deadline: now + policy.startTimeout)
            for slot in current.slots.indices { spawnCurrent(slot: slot, now: now) }
        case .running:
            restartListenersOpened(ids, address: address, now: now)
        case .idle, .starting, .stopping, .exited:
            closeUnusedListeners()
        }
    }

    mutating func listenersFailed(_ ids: [ListenerID], reason: String, now: Instant) {
        switch phase {
        case .starting:
            log(.error, "Failed to start proxy server", [("error", .plain(reason))])
            beginStop(signal: nil, exitCode: FluxgateExit.failure.rawValue, fast: true, now: now)
        case .running:
            restartListenersFailed(reason: reason, now: now)
        case .idle, .stopping, .exited:
            break
        }
    }

    /// All first-generation workers serve: only now `READY=1` (systemd must not route to, or
    /// consider started, a proxy that cannot answer yet).
    mutating func startCompleteIfReady(now: Instant) {
        guard case .starting = phase else { return }
        let allReady = current.slots.allSatisfy { slot in
            slot.worker.flatMap { workers[$0] }.map { $0.phase == .ready } ?? false
        }
        guard allReady else { return }
        phase = .running
        log(.info, "Fluxgate proxy server listening on \(current.address)")
        emit(.notify("READY=1\nSTATUS=\(statusLine)"))
        startPendingReload(now: now)
    }

    // MARK: - Spawning

    /// Spawns the worker of a current slot with the current configuration.
    mutating func spawnCurrent(slot: Int, now: Instant) {
        let id = spawn(
            slot: slot, listeners: current.slots[slot].listeners, configuration: current.configuration,
            generation: current.generation, mayAccept: true, now: now)
        current.slots[slot].worker = id
        current.slots[slot].respawnAt = nil
    }

    /// Emits `.spawn`. A worker starts in standby when another live worker still accepts on one of
    /// its sockets, or when it belongs to a candidate layout (`mayAccept == false`).
    @discardableResult
    mutating func spawn(
        slot: Int, listeners: [ListenerID], configuration: Configuration, generation: UInt64,
        mayAccept: Bool, now: Instant
    ) -> WorkerID {
        let id = makeWorkerID()
        let standby = !mayAccept || listeners.contains { hasAcceptor($0, other: id) }
        workers[id] = Worker(
            id: id, slot: slot, generation: generation, listeners: listeners,
            phase: .starting(deadline: now + policy.startTimeout), accepting: !standby,
            pid: nil, spawnedAt: now, lastSeen: now)
        emit(
            .spawn(
                WorkerLaunch(
                    worker: id, slot: slot, generation: generation, configuration: configuration,
                    listeners: listeners, standby: standby)))
        return id
    }

    /// Whether a live worker other than `id` accepts on `listener`, as its own or as a loan.
    func hasAcceptor(_ listener: ListenerID, other id: WorkerID?) -> Bool {
        workers.values.contains {
            $0.id != id && (($0.accepting && $0.listeners.contains(listener)) || $0.borrowed[listener] != nil)
        }
    }

    /// Sends `startAccepting` to every ready standby worker of the current layout whose sockets
    /// nobody else accepts on any more (the old worker stopped first, or the survivor that was lent
    /// them gave them back; queued connections waited in the backlog of the socket the master keeps
    /// open). Sockets still lent are asked back first.
    mutating func startFreeAcceptors() {
        for slot in current.slots {
            guard let id = slot.worker, let worker = workers[id], worker.phase == .ready, !worker.accepting else { continue }
            recallLoans(of: worker.listeners)
            guard !worker.listeners.contains(where: { hasAcceptor($0, other: id) }) else { continue }
            workers[id]?.accepting = true
            emit(.send(id, .startAccepting))
        }
    }

    // MARK: - Control messages

    mutating func workerReady(_ id: WorkerID, generation: UInt64, now: Instant) {
        guard case .starting? = workers[id]?.phase else { return }
        workers[id]?.phase = .ready
        startFreeAcceptors()
        startCompleteIfReady(now: now)
        candidateReady(id, now: now)
    }

    /// After `drain` every listener of the worker is closed, lent ones included.
    mutating func stoppedAccepting(_ id: WorkerID) {
        workers[id]?.accepting = false
        workers[id]?.borrowed = [:]
        startFreeAcceptors()
    }

    /// Sends `drain` and arms the SIGKILL deadline.
    mutating func drain(_ id: WorkerID, deadline: Duration, now: Instant) {
        guard let worker = workers[id] else { return }
        switch worker.phase {
        case .starting, .ready:
            workers[id]?.phase = .draining(killAt: now + deadline + policy.killGrace)
            emit(.send(id, .drain(deadline: deadline)))
        case .draining, .killed:
            break
        }
    }

    mutating func kill(_ id: WorkerID, _ signal: KillSignal) {
        workers[id]?.phase = .killed
        emit(.kill(id, signal))
    }

    // MARK: - Exits

    /// A worker process is gone (reaped, or never started). `exit` is nil for a failed spawn.
    mutating func workerGone(_ id: WorkerID, reason: String, exit: WorkerExit?, now: Instant) {
        guard let worker = workers.removeValue(forKey: id) else { return }
        let slotIndex = current.slots.firstIndex { $0.worker == id }
        switch phase {
        case .starting:
            if slotIndex != nil {
                log(.error, "Workers failed to start", workerMetadata(worker) + [("reason", .plain(reason))])
                let code = exit?.isConfigRejection == true ? FluxgateExit.configRejected.rawValue : FluxgateExit.failure.rawValue
                beginStop(signal: nil, exitCode: code, fast: true, now: now)
            }
        case .running:
            candidateGone(worker, reason: reason, exit: exit, now: now)
            if let slotIndex {
                current.slots[slotIndex].worker = nil
                crashed(worker, slot: slotIndex, reason: reason, exit: exit, now: now)
            } else {
                log(.debug, "Worker exited", workerMetadata(worker) + [("reason", .plain(reason))])
            }
        case .idle, .stopping, .exited:
            break
        }
        closeUnusedListeners()
        startFreeAcceptors()
        lendUnservedSockets()  // what a dead borrower had goes to another survivor
        stopCompleteIfDone()
    }

    /// A serving worker died: respawn on its slot at once, then with exponential backoff.
    /// Exit status 78 is the contract for "this configuration cannot run": never respawned,
    /// the master stops with 78 so systemd does not restart it in a loop either.
    mutating func crashed(_ worker: Worker, slot: Int, reason: String, exit: WorkerExit?, now: Instant) {
        if exit?.isConfigRejection == true {
            log(.error, "Worker rejected the configuration (exit status 78); stopping", workerMetadata(worker))
            beginStop(signal: nil, exitCode: FluxgateExit.configRejected.rawValue, fast: false, now: now)
            return
        }
        if now - worker.spawnedAt >= policy.stableAfter { current.slots[slot].failures = 0 }
        current.slots[slot].failures += 1
        let delay = respawnDelay(failures: current.slots[slot].failures)
        log(
            .error, "Worker exited unexpectedly; respawning",
            workerMetadata(worker) + [
                ("reason", .plain(reason)), ("delay_ms", .plain(String(delay.milliseconds))),
            ])
        // Before the respawn, so the replacement starts in standby while a survivor serves the
        // slot's queue (SupervisorState+Lending.swift).
        lendUnservedSockets()
        if delay == .zero {
            spawnCurrent(slot: slot, now: now)
        } else {
            current.slots[slot].respawnAt = now + delay
        }
    }

    /// 0 for the first failure, then base · 2^(n-2), capped.
    func respawnDelay(failures: Int) -> Duration {
        guard failures > 1 else { return .zero }
        var delay = policy.respawnBackoffBase
        for _ in 2..<failures {
            delay *= 2
            if delay >= policy.respawnBackoffCap { return policy.respawnBackoffCap }
        }
        return min(delay, policy.respawnBackoffCap)
    }

    func workerMetadata(_ worker: Worker) -> [(String, LogEntry.Value)] {
        [
            ("slot", .plain(String(worker.slot))), ("pid", .plain(worker.pid.map(String.init) ?? "-")),
            ("generation", .plain(String(worker.generation))),
        ]
    }

    // MARK: - Listeners

    /// Closes every open listener that neither the current layout, a candidate layout nor a live
    /// worker uses: an old address's sockets close after their last acceptor has exited.
    mutating func closeUnusedListeners() {
        var used = Set(current.sockets)
        used.formUnion(reload?.candidateSockets ?? [])
        for worker in workers.values { used.formUnion(worker.listeners + worker.borrowed.keys) }
        if case .stopping = phase { used = Set(workers.values.flatMap { $0.listeners + $0.borrowed.keys }) }
        let unused = openListeners.filter { !used.contains($0) }
        guard !unused.isEmpty else { return }
        openListeners.removeAll { unused.contains($0) }
        emit(.closeListeners(unused))
    }

    // MARK: - Timers

    mutating func tick(now: Instant) {
        if let due = nextWatchdog, now >= due, let interval = policy.watchdogInterval {
            emit(.notify("WATCHDOG=1"))
            nextWatchdog = now + interval / 2
        }
        switch phase {
        case .starting(let deadline?) where now >= deadline:
            log(.error, "Workers failed to start", [("reason", .plain("no ready report within \(policy.startTimeout)"))])
            beginStop(signal: nil, exitCode: FluxgateExit.failure.rawValue, fast: true, now: now)
            return
        case .stopping(var stopping) where now >= stopping.killAt && !stopping.killed:
            stopping.killed = true
            phase = .stopping(stopping)
            for id in workers.keys.sorted() {
                log(.warning, "Worker killed at the shutdown deadline", workerMetadata(workers[id]!))
                kill(id, .kill)
            }
            return
        case .idle, .starting, .running, .stopping, .exited:
            break
        }
        reloadTick(now: now)
        for id in workers.keys.sorted() { workerTick(id, now: now) }
        if case .running = phase {
            for slot in current.slots.indices where current.slots[slot].respawnAt.map({ now >= $0 }) == true {
                spawnCurrent(slot: slot, now: now)
            }
        }
    }

    private mutating func workerTick(_ id: WorkerID, now: Instant) {
        guard let worker = workers[id] else { return }
        switch worker.phase {
        case .starting(let deadline) where now >= deadline:
            log(.error, "Worker did not report ready in time; killing it", workerMetadata(worker))
            kill(id, .kill)
        case .ready where now - worker.lastSeen >= policy.heartbeatTimeout:
            log(
                .error, "Worker unresponsive (no heartbeat); killing it",
                workerMetadata(worker) + [
                    ("silent_ms", .plain(String((now - worker.lastSeen).milliseconds)))
                ])
            kill(id, .kill)
        case .draining(let killAt) where now >= killAt:
            log(.warning, "Worker killed at the drain deadline", workerMetadata(worker))
            kill(id, .kill)
        case .starting, .ready, .draining, .killed:
            break
        }
    }
}
