import Common

/// The targets of one upstream in one configuration snapshot, and the choice among them
/// (docs/routing-and-forwarding.md "Several targets"): smooth weighted round robin over the
/// targets in service, per worker; health read from the host's shared `TargetHealthBoard`.
///
/// Built with the snapshot; its round-robin scores and the health cells it resolved are touched
/// only on the worker's one event loop (hence `@unchecked Sendable`, like the snapshot holding it).
final class TargetGroup: @unchecked Sendable {
    let upstreamName: String
    let targets: [UpstreamTarget]
    let weights: [Int]
    let policy: TargetHealth.Policy
    private var roundRobin: WeightedRoundRobin
    /// Each target's health cell, resolved on first use (a target's cell is named by the upstream
    /// and the target's origin, so a reload keeps the health of the targets that stay).
    private var cells: [Int?]?

    init(_ upstream: Configuration.Upstream, attemptTimeoutMs: UInt64) {
        upstreamName = upstream.name
        targets = upstream.targets.map { UpstreamTarget($0, upstreamName: upstream.name) }
        weights = upstream.targets.map(\.weight)
        roundRobin = WeightedRoundRobin(count: upstream.targets.count)
        policy = TargetHealth.Policy(
            failures: upstream.health.failures, cooldownMs: Int64(clamping: upstream.health.cooldownMs),
            trialMs: Int64(clamping: min(attemptTimeoutMs, Configuration.Health.maxCooldownMs)))
    }

    func cells(on board: TargetHealthBoard) -> [Int?] {
        if let cells { return cells }
        let resolved = targets.map { board.cell(upstream: upstreamName, origin: $0.origin) }
        cells = resolved
        return resolved
    }

    /// The next target not in `tried` (a bit per index) that is in service, or whose half-open
    /// trial this request takes; nil when there is none.
    func choose(excluding tried: UInt64, board: TargetHealthBoard, nowMs: Int64) -> Int? {
        let cells = cells(on: board)
        var excluded = tried
        while true {
            let chosen = roundRobin.next(weights: weights) { index in
                guard excluded & (1 << UInt64(index)) == 0 else { return false }
                return self.isAvailable(index, cells, board, nowMs)
            }
            guard let chosen else { return nil }
            switch board.health(cell: cells[chosen]).availability(nowMs: nowMs) {
            case .inService:
                return chosen
            case .trialDue:
                // One request only: the worker whose compare-and-swap wins sends the trial.
                if board.update(cell: cells[chosen], { $0.claimingTrial(nowMs: nowMs, policy: self.policy) }) != nil { return chosen }
                excluded |= 1 << UInt64(chosen)
            case .out:
                excluded |= 1 << UInt64(chosen)
            }
        }
    }

    private func isAvailable(_ index: Int, _ cells: [Int?], _ board: TargetHealthBoard, _ nowMs: Int64) -> Bool {
        if case .out = board.health(cell: cells[index]).availability(nowMs: nowMs) { return false }
        return true
    }

    /// The target not in `tried` whose time out of service ends first (health never refuses a
    /// request by itself), with that instant.
    func earliestBack(excluding tried: UInt64, board: TargetHealthBoard, nowMs: Int64) -> (index: Int, until: Int64)? {
        let cells = cells(on: board)
        var best: (index: Int, until: Int64)?
        for index in targets.indices where tried & (1 << UInt64(index)) == 0 {
            let until: Int64
            switch board.health(cell: cells[index]).availability(nowMs: nowMs) {
            case .inService, .trialDue: until = nowMs
            case .out(let end): until = end
            }
            if best.map({ until < $0.until }) ?? true { best = (index, until) }
        }
        return best
    }

    func succeeded(_ index: Int, board: TargetHealthBoard, nowMs: Int64) {
        board.update(cell: cells(on: board)[index]) { $0.succeeding(nowMs: nowMs, policy: self.policy) }
    }

    func failed(_ index: Int, board: TargetHealthBoard, nowMs: Int64) {
        board.update(cell: cells(on: board)[index]) { $0.failing(nowMs: nowMs, policy: self.policy) }
    }
}
