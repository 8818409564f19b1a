#if canImport(Glibc)
import Glibc
#endif
import Common

/// Worker exits by reason (`fluxgate_worker_exits_total`): a worker that had been told to drain
/// was replaced (graceful restart, stop), one the supervisor killed without a drain missed its
/// heartbeats (or its start deadline), any other died on its own.
struct WorkerExitTally {
    var crash: Int64 = 0
    var heartbeat: Int64 = 0
    var replaced: Int64 = 0
    var draining: Set<WorkerID> = []

    mutating func count(_ id: WorkerID, phase: SupervisorState.Worker.Phase?) {
        if draining.remove(id) != nil {
            replaced += 1
        } else if phase == .killed {
            heartbeat += 1
        } else {
            crash += 1
        }
    }
}

// The observability listener's part of the master (docs/observability.md "Endpoints").
extension Master {
    static func wallClock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec / 1_000_000) / 1000
    }

    /// Opens, moves or closes the listener to match the configuration in force; records a
    /// successful reload's time.
    func observabilityFollowsConfiguration() {
        if state.reloadTally.applied != reloadsSeen {
            reloadsSeen = state.reloadTally.applied
            lastReloadSuccess = Self.wallClock()
        }
        let wanted = state.current.configuration.observability.listen
        guard wanted != observability.address || (wanted != nil && observability.listener == nil) else { return }
        guard !failedObservabilityAddresses.contains(wanted.map(\.description) ?? "") else { return }
        do {
            try observability.listen(on: wanted)
            if let wanted { logger.info("Observability listener started", metadata: ["address": "\(wanted)"]) }
        } catch {
            failedObservabilityAddresses.insert(wanted.map(\.description) ?? "")
            logger.error(
                "Observability listener failed to start; /metrics, /livez and /readyz are not served",
                metadata: ["address": "\(wanted.map(\.description) ?? "-")", "error": "\(error)"])
        }
    }

    func respond(to request: ObservabilityRequest) -> ObservabilityResponse {
        switch request {
        case .incomplete, .malformed:
            return .text(400, "Bad Request", "bad request")
        case .methodNotAllowed:
            var response = ObservabilityResponse.text(405, "Method Not Allowed", "method not allowed; use GET or HEAD")
            response.extraHeaders = [("Allow", "GET, HEAD")]
            return response
        case .get("/metrics", _):
            var response = ObservabilityResponse(status: 200, reason: "OK", body: MetricsRenderer.renderBytes(hostMetrics()))
            response.contentType = MetricsRenderer.contentType
            return response
        case .get("/livez", _):
            return .text(200, "OK", "ok")
        case .get("/readyz", _):
            guard let reason = state.notReadyReason else { return .text(200, "OK", "ready") }
            return .text(503, "Service Unavailable", reason)
        case .get:
            return .text(404, "Not Found", "not found; the endpoints are /metrics, /livez and /readyz")
        }
    }

    /// Every live region and the retained totals, named by the configuration in force.
    func hostMetrics() -> HostMetrics {
        var host = HostMetrics(version: FluxgateVersion.string)
        host.totals = retained
        host.totals.openConnections = 0
        if let metrics {
            for (_, cell) in workers.cells { metrics.region(cell).add(to: &host.totals) }
        }
        host.name(state.current.configuration)
        host.modelNames = metrics?.modelNames
        for upstream in state.current.configuration.upstreams.entries {
            for target in upstream.targets {
                let origin = target.targetURL.origin
                let out = health?.isOutOfService(upstream: upstream.name, origin: origin) ?? false
                host.targetsUp.append((upstream.name, origin, !out))
            }
        }
        host.inFlight = segment?.total ?? 0
        host.maxInFlight = Int(state.current.configuration.server.maxConnections)
        host.workers = state.workerStates
        host.workerExits = [exitTally.crash, exitTally.heartbeat, exitTally.replaced]
        host.generation = state.current.generation
        host.reloads = [state.reloadTally.applied, state.reloadTally.rejected, state.reloadTally.failed]
        host.lastReloadSuccess = lastReloadSuccess
        return host
    }

    /// `fluxgate status`'s per-worker numbers, read from the shared counters.
    func workerCounters(_ id: WorkerID?) -> String {
        guard let id, let cell = workers.cells.first(where: { $0.id == id })?.cell else { return "" }
        let served = metrics.map { " served \($0.region(cell).served)" } ?? ""
        let inFlight = segment.map { " in flight \($0.held(cell: cell))" } ?? ""
        return served + inFlight
    }
}
