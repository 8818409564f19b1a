import Common

/// Reloads by result, as `fluxgate_config_reloads_total{result}` shows them: an unchanged file
/// counts as applied, an aborted reload as failed.
struct ReloadTally: Equatable {
    var applied: Int64 = 0
    var rejected: Int64 = 0
    var failed: Int64 = 0

    mutating func count(_ outcome: ReloadOutcome) {
        switch outcome {
        case .applied, .unchanged: applied += 1
        case .rejected: rejected += 1
        case .failed, .aborted: failed += 1
        }
    }
}

// What `/readyz` and `fluxgate_workers` read (docs/observability.md "Endpoints").
extension SupervisorState {
    /// nil while every slot of the serving layout has a ready worker (during a graceful restart
    /// the old workers are that layout's until the new ones take over); otherwise why not, in one
    /// line. Never looks at any upstream.
    var notReadyReason: String? {
        switch phase {
        case .idle, .starting: return "starting: the workers are not ready yet"
        case .stopping, .exited: return "stopping: a stop signal arrived"
        case .running:
            for (index, slot) in current.slots.enumerated() {
                guard let id = slot.worker, let worker = workers[id], worker.phase == .ready else {
                    return "slot \(index) has no ready worker"
                }
            }
            return nil
        }
    }

    /// Worker processes by state: starting, serving, draining.
    var workerStates: [Int] {
        var counts = [0, 0, 0]
        for worker in workers.values {
            switch worker.phase {
            case .starting: counts[0] += 1
            case .ready: counts[1] += 1
            case .draining, .killed: counts[2] += 1
            }
        }
        return counts
    }
}
