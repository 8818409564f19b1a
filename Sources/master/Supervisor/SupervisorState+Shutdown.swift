import Common

// SIGTERM/SIGINT (drain with the shutdown timeout), SIGQUIT (long drain for streams), a second
// signal (fast stop), and fatal stops (failed start, exit status 78).
extension SupervisorState {
    mutating func received(_ signal: SupervisorSignal, now: Instant) {
        switch signal {
        case .hangup:
            requestReload(.signal, now: now)
        case .terminate, .interrupt, .quit:
            switch phase {
            case .idle:
                phase = .exited(FluxgateExit.success.rawValue)
                emit(.exit(FluxgateExit.success.rawValue))
            case .starting, .running:
                log(.info, "Shutdown signal received (\(signal.name)); shutting down proxy")
                beginStop(signal: signal, exitCode: FluxgateExit.success.rawValue, fast: false, now: now)
            case .stopping(let stopping) where !stopping.fast:
                log(.warning, "Second shutdown signal received (\(signal.name)); stopping workers now")
                fastStop(stopping, now: now)
            case .stopping, .exited:
                break
            }
        }
    }

    /// Stops every worker: drained with the shutdown deadline (SIGKILL after it), or terminated at
    /// once when `fast`. Pending reloads are answered as aborted.
    mutating func beginStop(signal: SupervisorSignal?, exitCode: Int32, fast: Bool, now: Instant) {
        let abort = (reload?.requests ?? []) + (pendingReload?.requests ?? [])
        reload = nil
        pendingReload = nil
        for id in abort { emit(.replyToReloadRequest(id, .aborted("the proxy is shutting down"))) }
        for slot in current.slots.indices { current.slots[slot].respawnAt = nil }
        let drainTimeout = signal == .quit ? policy.longDrainTimeout : policy.drainTimeout
        let stopping = Stopping(
            signal: signal, exitCode: exitCode, killAt: now + drainTimeout + policy.killGrace,
            fast: false)
        phase = .stopping(stopping)
        emit(.notify("STOPPING=1\nSTATUS=shutting down\(signal.map { " (\($0.name))" } ?? "")"))
        if fast {
            fastStop(stopping, now: now)
        } else {
            for id in workers.keys.sorted() { drain(id, deadline: drainTimeout, now: now) }
        }
        stopCompleteIfDone()
    }

    private mutating func fastStop(_ stopping: Stopping, now: Instant) {
        var stopping = stopping
        stopping.fast = true
        stopping.killAt = now + policy.fastStopTimeout
        phase = .stopping(stopping)
        for id in workers.keys.sorted() where workers[id]?.phase != .killed {
            workers[id]?.phase = .draining(killAt: stopping.killAt)
            emit(.kill(id, .terminate))
        }
    }

    /// The last worker is gone: close what is left and exit.
    mutating func stopCompleteIfDone() {
        guard case .stopping(let stopping) = phase, workers.isEmpty else { return }
        if !openListeners.isEmpty {
            emit(.closeListeners(openListeners))
            openListeners = []
        }
        if stopping.signal != nil { log(.info, "Proxy server shutdown complete") }
        phase = .exited(stopping.exitCode)
        emit(.exit(stopping.exitCode))
    }
}
