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

    /// The cell of the target at `index` (read in place: no copy of the array per request).
    private func cell(_ index: Int, on board: TargetHealthBoard) -> Int? {
        if cells == nil { _ = cells(on: board) }
        return cells![index]
    }

    /// The next target not in `tried` (a bit per index) that is in service, or whose half-open
    /// trial this request takes; nil when there is none. Each target's health word is read once,
    /// and the round robin is given the eligible ones as bits (a closure per target read the
    /// health again: docs/performance.md, "gwpath (session 12)").
    func choose(excluding tried: UInt64, board: TargetHealthBoard, nowMs: Int64) -> Int? {
        var inService: UInt64 = 0
        var trialDue: UInt64 = 0
        for index in 0..<min(targets.count, 64) {
            let bit: UInt64 = 1 << UInt64(index)
            guard tried & bit == 0 else { continue }
            switch board.availability(cell: cell(index, on: board), nowMs: nowMs) {
            case .inService: inService |= bit
            case .trialDue: trialDue |= bit
            case .out: break
            }
        }
        var eligible = inService | trialDue
        while let chosen = roundRobin.next(weights: weights, eligible: eligible) {
            let bit: UInt64 = 1 << UInt64(chosen)
            if inService & bit != 0 { return chosen }
            // One request only: the worker whose compare-and-swap wins sends the trial.
            if board.update(cell: cell(chosen, on: board), { $0.claimingTrial(nowMs: nowMs, policy: self.policy) }) != nil { return chosen }
            eligible &= ~bit
        }
        return nil
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
        let cell = cell(index, on: board)
        // The usual success, of a target in service with nothing counted, changes nothing: one load.
        if board.isUntouched(cell: cell) { return }
        board.update(cell: cell) { $0.succeeding(nowMs: nowMs, policy: self.policy) }
    }

    func failed(_ index: Int, board: TargetHealthBoard, nowMs: Int64) {
        board.update(cell: cells(on: board)[index]) { $0.failing(nowMs: nowMs, policy: self.policy) }
    }
}
