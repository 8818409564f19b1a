import Common
import ConfigLoading

/// A reload in progress (docs/architecture.md "Reload paths").
struct Reload: Equatable {
    enum Step: Equatable {
        /// `.loadConfiguration` sent, waiting for `configurationLoaded`.
        case loading
        /// The new generation is current and went in `applyConfig` to every live worker that had
        /// another (`sendCurrentConfigurationToStaleWorkers`): waiting until each has acknowledged
        /// it or exited. A hot reload is only this step; a graceful restart ends with it.
        case applying(awaiting: Set<WorkerID>, deadline: Instant)
        /// Graceful restart: waiting for the candidate's new sockets.
        case opening(Candidate)
        /// Graceful restart: waiting for every candidate worker's `ready` (and kept workers' acks).
        case restarting(Candidate)
    }

    var trigger: ReloadTrigger
    var requests: [ReloadRequestID]
    var step: Step

    var deadline: Instant? {
        switch step {
        case .loading, .opening: return nil
        case .applying(_, let deadline): return deadline
        case .restarting(let candidate): return candidate.deadline
        }
    }

    var candidateSockets: [ListenerID] {
        switch step {
        case .loading, .applying: return []
        case .opening(let candidate), .restarting(let candidate): return candidate.layout.sockets
        }
    }
}

/// The next layout of a graceful restart.
struct Candidate: Equatable {
    var layout: SupervisorState.Layout
    var newSockets: [ListenerID]
    var addressChanged: Bool
    /// Current workers whose slot and sockets are unchanged: they get `applyConfig` instead of a
    /// replacement (growing the worker count restarts nobody).
    var kept: Set<WorkerID> = []
    var awaiting: Set<WorkerID> = []
    var deadline: Instant?
}

/// Reload triggers that arrived during a reload, coalesced into one follow-up reload (its outcome
/// answers every waiting operator request).
struct PendingReload: Equatable {
    var trigger: ReloadTrigger
    var requests: [ReloadRequestID]
}

extension SupervisorState {
    // MARK: - Triggers

    mutating func requestReload(_ trigger: ReloadTrigger, now: Instant) {
        let requests: [ReloadRequestID]
        switch trigger {
        case .operatorRequest(let id): requests = [id]
        case .signal, .fileChanged: requests = []
        }
        switch phase {
        case .idle, .starting:
            coalesce(trigger, requests)
        case .running where reload != nil:
            coalesce(trigger, requests)
        case .running:
            beginReload(trigger, requests: requests, now: now)
        case .stopping, .exited:
            for id in requests { emit(.replyToReloadRequest(id, .aborted("the proxy is shutting down"))) }
        }
    }

    private mutating func coalesce(_ trigger: ReloadTrigger, _ requests: [ReloadRequestID]) {
        if pendingReload == nil { pendingReload = PendingReload(trigger: trigger, requests: []) }
        pendingReload?.requests += requests
    }

    func startPendingReloadAllowed() -> Bool {
        if case .running = phase { return reload == nil } else { return false }
    }

    mutating func startPendingReload(now: Instant) {
        guard let pending = pendingReload, startPendingReloadAllowed() else { return }
        pendingReload = nil
        beginReload(pending.trigger, requests: pending.requests, now: now)
    }

    private mutating func beginReload(_ trigger: ReloadTrigger, requests: [ReloadRequestID], now: Instant) {
        reload = Reload(trigger: trigger, requests: requests, step: .loading)
        // sd_notify(3): RELOADING=1 must come with MONOTONIC_USEC= in the same message.
        emit(.notify("RELOADING=1\nMONOTONIC_USEC=\(now.microseconds)"))
        log(.info, "Reloading configuration", [("path", .plain(configPath)), ("trigger", .plain(trigger.label))])
        emit(.loadConfiguration)
    }

    // MARK: - Validation

    mutating func configurationLoaded(_ result: ConfigLoadResult, now: Instant) {
        guard let reload, reload.step == .loading else { return }
        for warning in result.warnings { log(.warning, warning.description) }
        guard let configuration = result.configuration else {
            reject(result.errors.map(\.description), trigger: reload.trigger, now: now)
            return
        }
        if configuration == current.configuration {
            finishReload(.unchanged(generation: current.generation), now: now)
        } else if addressChanged(configuration) || workerCount(of: configuration) != current.slots.count {
            beginRestart(configuration, now: now)
        } else {
            hotApply(configuration, now: now)
        }
    }

    /// Invalid: every problem at WARN, the previous configuration stays in force untouched.
    private mutating func reject(_ problems: [String], trigger: ReloadTrigger, now: Instant) {
        for problem in problems { log(.warning, problem) }
        // Message and fields written at each log call: docs/logging.md's tables are checked
        // against them (CommonTests' DocumentedLogMessagesTests).
        let reasons = problems.joined(separator: "; ")
        switch trigger {
        case .fileChanged:
            log(
                .warning, "Configuration file changed but validation failed; keeping previous settings",
                [("path", .plain(configPath)), ("error", .plain(reasons))])
        case .signal, .operatorRequest:
            log(
                .warning, "Configuration reload failed validation; keeping previous settings",
                [("path", .plain(configPath)), ("error", .plain(reasons))])
        }
        finishReload(.rejected(problems), now: now)
    }

    // MARK: - Hot reload

    private mutating func hotApply(_ configuration: Configuration, now: Instant) {
        current.configuration = configuration
        current.generation += 1
        sendCurrentConfigurationToStaleWorkers(now: now)
        finishApplyingIfDone(now: now)
    }

    /// The one rule behind "applied" (docs/security.md, revoking a key): every live worker that
    /// may still answer a request gets the current generation — the current slots' workers, a
    /// graceful restart's old workers (which drain next), workers still starting or draining an
    /// earlier restart — and the reload is reported applied only when each has acknowledged it
    /// (the worker acks after its data plane swapped) or exited. So once `fluxgate reload` says
    /// "applied", no request anywhere is authenticated or routed with an earlier generation.
    private mutating func sendCurrentConfigurationToStaleWorkers(now: Instant) {
        var awaiting: Set<WorkerID> = []
        for id in workers.keys.sorted() {
            guard let worker = workers[id], worker.generation != current.generation else { continue }
            switch worker.phase {
            case .starting, .ready, .draining:
                workers[id]?.generation = current.generation
                awaiting.insert(id)
                emit(.send(id, .applyConfig(generation: current.generation, current.configuration)))
            case .killed:
                break  // SIGKILL is on its way: it answers nothing more
            }
        }
        reload?.step = .applying(awaiting: awaiting, deadline: now + policy.configAckTimeout)
    }

    private mutating func finishApplyingIfDone(now: Instant) {
        guard case .applying(let awaiting, _) = reload?.step, awaiting.isEmpty else { return }
        finishReload(.applied(generation: current.generation), now: now)
    }

    mutating func configApplied(_ id: WorkerID, generation: UInt64, now: Instant) {
        switch reload?.step {
        case .applying(var awaiting, let deadline)? where generation == current.generation:
            awaiting.remove(id)
            reload?.step = .applying(awaiting: awaiting, deadline: deadline)
            finishApplyingIfDone(now: now)
        case .restarting(var candidate)? where generation == candidate.layout.generation && candidate.kept.contains(id):
            candidate.awaiting.remove(id)
            reload?.step = .restarting(candidate)
            commitIfReady(now: now)
        case .applying?, .restarting?, .loading?, .opening?, nil:
            break
        }
    }

    /// A worker refusing a configuration the master validated is a bug: log it, drain the worker
    /// and replace it on its slot with the master's configuration (the replacement starts in
    /// standby and accepts once the old one has stopped). While it drains it still serves the
    /// configuration it had, so a reload waiting for it stays waiting until it has exited (or is
    /// killed at the acknowledgement deadline).
    mutating func configRejected(_ id: WorkerID, generation: UInt64, error: String, now: Instant) {
        guard let worker = workers[id] else { return }
        log(
            .error, "Worker rejected the configuration it was sent; restarting it",
            workerMetadata(worker) + [("error", .plain(error))])
        if case .restarting(let candidate)? = reload?.step, candidate.kept.contains(id) {
            rollback("a worker rejected the configuration: \(error)", now: now)
        }
        drain(id, deadline: policy.drainTimeout, now: now)
        if let slot = current.slots.firstIndex(where: { $0.worker == id }) {
            spawnCurrent(slot: slot, now: now)
        }
    }

    // MARK: - Graceful restart

    /// A new address needs new sockets. Writing down the port the kernel chose for `:0` is not a
    /// change: those sockets are already bound there.
    func addressChanged(_ configuration: Configuration) -> Bool {
        let wanted = configuration.server.bindAddress
        return wanted != current.configuration.server.bindAddress && wanted != current.address
    }

    private mutating func beginRestart(_ configuration: Configuration, now: Instant) {
        let count = workerCount(of: configuration)
        let addressChanged = addressChanged(configuration)
        let newSockets: [ListenerID]
        let sockets: [ListenerID]
        if addressChanged {
            newSockets = makeListenerIDs(count)
            sockets = newSockets
        } else {
            // Same address: every existing socket stays (closing one resets its queued
            // connections); only growth adds sockets.
            newSockets = makeListenerIDs(max(0, count - current.sockets.count))
            sockets = current.sockets + newSockets
        }
        // Slot k serves sockets k, k+count, k+2·count …: surplus sockets of a shrink go to survivors.
        let slots = (0..<count).map { k in
            Slot(listeners: sockets.indices.filter { $0 % count == k }.map { sockets[$0] })
        }
        let address = addressChanged ? configuration.server.bindAddress : current.address
        let candidate = Candidate(
            layout: Layout(
                configuration: configuration, generation: current.generation + 1, address: address,
                sockets: sockets, slots: slots),
            newSockets: newSockets, addressChanged: addressChanged)
        log(
            .info, "Configuration needs new workers; starting a new generation",
            [
                ("generation", .plain(String(candidate.layout.generation))), ("workers", .plain(String(count))),
                ("address", .plain("\(address)")),
            ])
        if newSockets.isEmpty {
            launch(candidate, now: now)
        } else {
            reload?.step = .opening(candidate)
            emit(.openListeners(newSockets, address))
        }
    }

    mutating func restartListenersOpened(_ ids: [ListenerID], address: BindAddress, now: Instant) {
        guard case .opening(var candidate)? = reload?.step, candidate.newSockets == ids else {
            closeUnusedListeners()
            return
        }
        if candidate.addressChanged { candidate.layout.address = address }
        launch(candidate, now: now)
    }

    mutating func restartListenersFailed(reason: String, now: Instant) {
        guard case .opening(let candidate)? = reload?.step else { return }
        let why = "cannot listen on \(candidate.layout.address): \(reason)"
        log(
            .warning, "Configuration reload failed; keeping previous settings",
            [
                ("path", .plain(configPath)), ("error", .plain(why)),
            ])
        finishReload(.failed(why), now: now)
    }

    private mutating func launch(_ candidate: Candidate, now: Instant) {
        var candidate = candidate
        let layout = candidate.layout
        for k in layout.slots.indices {
            if !candidate.addressChanged, current.slots.indices.contains(k),
                current.slots[k].listeners == layout.slots[k].listeners,
                let id = current.slots[k].worker, workers[id]?.phase == .ready
            {
                candidate.kept.insert(id)
                candidate.awaiting.insert(id)
                candidate.layout.slots[k].worker = id
                emit(.send(id, .applyConfig(generation: layout.generation, layout.configuration)))
            } else {
                let id = spawn(
                    slot: k, listeners: layout.slots[k].listeners, configuration: layout.configuration,
                    generation: layout.generation, mayAccept: true, now: now)
                candidate.awaiting.insert(id)
                candidate.layout.slots[k].worker = id
            }
        }
        candidate.deadline = now + policy.startTimeout
        reload?.step = .restarting(candidate)
        commitIfReady(now: now)
    }

    mutating func candidateReady(_ id: WorkerID, now: Instant) {
        guard case .restarting(var candidate)? = reload?.step, !candidate.kept.contains(id),
            candidate.awaiting.remove(id) != nil
        else { return }
        reload?.step = .restarting(candidate)
        commitIfReady(now: now)
    }

    /// Every candidate worker is ready: the candidate becomes current, the old workers get its
    /// configuration and then drain (in that order on their channels: a keep-alive request that
    /// still reaches one is answered with the new keys and routes). The reload is applied once
    /// they have acknowledged it.
    private mutating func commitIfReady(now: Instant) {
        guard case .restarting(let candidate)? = reload?.step, candidate.awaiting.isEmpty else { return }
        let old = current.slots.compactMap(\.worker).filter { !candidate.kept.contains($0) }
        for id in candidate.kept { workers[id]?.generation = candidate.layout.generation }
        current = candidate.layout
        log(
            .info, "New generation ready; previous workers draining",
            [
                ("generation", .plain(String(current.generation))), ("workers", .plain(String(current.slots.count))),
            ])
        sendCurrentConfigurationToStaleWorkers(now: now)
        for id in old { drain(id, deadline: policy.drainTimeout, now: now) }
        closeUnusedListeners()
        startFreeAcceptors()
        finishApplyingIfDone(now: now)
    }

    /// The candidate failed: stop its workers, keep the current generation as it is.
    mutating func rollback(_ reason: String, now: Instant) {
        guard case .restarting(let candidate)? = reload?.step else { return }
        log(
            .error, "New generation failed to start; keeping the previous one",
            [
                ("generation", .plain(String(candidate.layout.generation))), ("reason", .plain(reason)),
            ])
        for id in candidate.layout.slots.compactMap(\.worker) {
            if candidate.kept.contains(id) {
                emit(.send(id, .applyConfig(generation: current.generation, current.configuration)))
            } else {
                drain(id, deadline: policy.drainTimeout, now: now)
                // Its configuration never became current and its number will be the next
                // reload's: marked unknown, so that reload reaches it while it drains.
                workers[id]?.generation = 0
            }
        }
        finishReload(.failed(reason), now: now)
        closeUnusedListeners()
    }

    /// A worker exited while a reload was under way.
    mutating func candidateGone(_ worker: Worker, reason: String, exit: WorkerExit?, now: Instant) {
        switch reload?.step {
        case .restarting(let candidate)? where candidate.layout.slots.contains(where: { $0.worker == worker.id }):
            rollback("worker of slot \(worker.slot) exited during start-up (\(reason))", now: now)
        case .applying(var awaiting, let deadline)? where awaiting.contains(worker.id):
            // Its replacement starts with the new configuration.
            awaiting.remove(worker.id)
            reload?.step = .applying(awaiting: awaiting, deadline: deadline)
            finishApplyingIfDone(now: now)
        case .restarting?, .applying?, .loading?, .opening?, nil:
            break
        }
    }

    mutating func reloadTick(now: Instant) {
        guard let deadline = reload?.deadline, now >= deadline else { return }
        switch reload?.step {
        case .applying(let awaiting, _)?:
            for id in awaiting.sorted() {
                if let worker = workers[id] {
                    log(.error, "Worker did not acknowledge the configuration in time; replacing it", workerMetadata(worker))
                }
                kill(id, .kill)
            }
            reload?.step = .applying(awaiting: [], deadline: deadline)
            finishApplyingIfDone(now: now)
        case .restarting?:
            rollback("the new generation did not report ready within \(policy.startTimeout)", now: now)
        case .loading?, .opening?, nil:
            break
        }
    }

    // MARK: - End

    mutating func finishReload(_ outcome: ReloadOutcome, now: Instant) {
        guard let finished = reload else { return }
        reload = nil
        lastReload = outcome
        reloadTally.count(outcome)
        switch outcome {
        case .applied, .unchanged:
            let status = outcome == .unchanged(generation: current.generation) ? "unchanged" : "applied"
            switch finished.trigger {
            case .fileChanged:
                log(
                    .info, "Configuration file changed, reloaded automatically",
                    [("path", .plain(configPath)), ("status", .quoted(status))])
            case .signal, .operatorRequest:
                // Fluxgate's text for a requested reload (its ConfigManager::reload).
                log(
                    .info, "Reloaded configuration",
                    [
                        ("path", .plain(configPath)), ("status", .quoted(status)),
                        ("generation", .plain(String(current.generation))),
                    ])
            }
        case .rejected, .failed, .aborted:
            break
        }
        emit(.notify("READY=1\nSTATUS=\(statusLine)"))
        for id in finished.requests { emit(.replyToReloadRequest(id, outcome)) }
        startPendingReload(now: now)
    }
}
