import Common
import NIOCore

/// The targets an exchange tried, per group (the route's upstream first, then its fallbacks in
/// order), and the one the current try uses.
struct FailoverPlan {
    var group = 0
    var index = 0
    var tried: TriedTargets

    /// A bit per target tried, per group (the upstream, then each fallback): the upstream's
    /// inline, so an upstream without fallbacks allocates nothing per request.
    struct TriedTargets {
        private var first: UInt64 = 0
        private var rest: [UInt64]

        init(groups: Int) { rest = groups > 1 ? [UInt64](repeating: 0, count: groups - 1) : [] }

        subscript(group: Int) -> UInt64 {
            get { group == 0 ? first : rest[group - 1] }
            set {
                if group == 0 { first = newValue } else { rest[group - 1] = newValue }
            }
        }
    }
}

// docs/routing-and-forwarding.md "Several targets" and "Target health": the choice of each try's
// target and what each try's end does to the target's health. Only routes with `failover` come here.
extension ProxyExchange {
    private func group(_ index: Int) -> TargetGroup { index == 0 ? match.route.group : match.route.fallbacks[index - 1] }

    /// Chooses the next try's target: the first group (the upstream, then each fallback) with an
    /// untried target in service; when there is none, the untried target back soonest (health
    /// never refuses a request by itself); when every target was tried (`retry.attempts` above
    /// the number of targets), the round starts again. `now` is read here when not given, and
    /// only past the first try's shortcut, which needs no clock.
    func chooseTarget(now: NIODeadline? = nil) {
        guard let board = health.map(Unmanaged.passUnretained) else { return }
        if plan == nil, match.route.fallbacks.isEmpty,
            let index = Self.firstChoice(Unmanaged.passUnretained(match.route.group), board)
        {
            // The common first try: the upstream's own targets, one of them in service.
            var tried = FailoverPlan.TriedTargets(groups: 1)
            tried[0] = 1 << UInt64(index)
            plan = FailoverPlan(group: 0, index: index, tried: tried)
            target = match.route.group.targets[index]
            return
        }
        chooseTarget(now: now, board: board)
    }

    /// `chooseTarget` past the first try's shortcut. Out of line: the shortcut is a small
    /// function of its own, without this part's frame, spills and stack guard (~20 instructions
    /// a request, docs/performance.md "session 16, gateway2").
    @inline(never)
    private func chooseTarget(now: NIODeadline?, board: Unmanaged<TargetHealthBoard>) {
        let nowMs = TargetHealthBoard.milliseconds(now ?? .now())
        let health = board.takeUnretainedValue()
        let route = match.route
        let count = 1 + route.fallbacks.count
        var plan = self.plan ?? FailoverPlan(tried: .init(groups: count))
        if (0..<count).allSatisfy({ plan.tried[$0] == Self.allBits(group($0).targets.count) }) {
            plan.tried = .init(groups: count)
        }
        var chosen: (group: Int, index: Int)?
        for g in 0..<count {
            if let index = group(g).choose(excluding: plan.tried[g], board: health, nowMs: nowMs) {
                chosen = (g, index)
                break
            }
        }
        if chosen == nil {
            var soonest: (group: Int, index: Int, until: Int64)?
            for g in 0..<count {
                guard let back = group(g).earliestBack(excluding: plan.tried[g], board: health, nowMs: nowMs) else { continue }
                if soonest.map({ back.until < $0.until }) ?? true { soonest = (g, back.index, back.until) }
            }
            chosen = soonest.map { ($0.group, $0.index) }
        }
        let (g, index) = chosen ?? (0, 0)
        plan.group = g
        plan.index = index
        plan.tried[g] |= 1 << UInt64(index)
        self.plan = plan
        target = group(g).targets[index]
    }

    private static func allBits(_ count: Int) -> UInt64 { count >= 64 ? .max : (1 << UInt64(count)) - 1 }

    /// The current try failed by `retry.on` (another follows); `countFailedAttempt` counts it
    /// in `fluxgate_upstream_attempts_total` (ProxyExchange+Attempts.swift).
    func tryFailed(_ failure: ExchangeState.TryFailure, now: NIODeadline) {
        targetFailed(now: now)
    }

    /// The current try's target failed (by `retry.on`, or it could not be reached at all).
    func targetFailed(now: NIODeadline) {
        guard let plan, let health else { return }
        group(plan.group).failed(plan.index, board: health, nowMs: TargetHealthBoard.milliseconds(now))
    }

    /// A response head is relayed: a success for the target's health unless its status is one
    /// `retry.on` lists (the last try's 503 is relayed, and still a failure of that target).
    func tryAnswered(status: UInt, retryOn: RetryRules, now: NIODeadline) {
        // The plan's two numbers, not a copy of the plan (its tried bits hold an array).
        guard let groupIndex = plan?.group, let index = plan?.index, let board = health.map(Unmanaged.passUnretained) else {
            return
        }
        let group = Unmanaged.passUnretained(groupIndex == 0 ? match.route.group : match.route.fallbacks[groupIndex - 1])
        let failed = retryOn.retries(status: status)
        // Guaranteed references, not retained around the calls: the exchange holds the route (by
        // `match`) and the board for its whole life (~80 instructions per request). The clock's
        // milliseconds only where they are read: the usual success is one load without them.
        group._withUnsafeGuaranteedRef { group in
            board._withUnsafeGuaranteedRef { board in
                if failed {
                    group.failed(index, board: board, nowMs: TargetHealthBoard.milliseconds(now))
                } else {
                    group.succeeded(index, board: board, now: now)
                }
            }
        }
    }

    /// `group.choose(excluding: 0, …)`'s shortcut (`TargetGroup.firstInService`) on a guaranteed
    /// reference: not retained around the call (the exchange holds the route and the board for
    /// its whole life). nil: `chooseTarget` goes on by `choose`, with the clock.
    @inline(__always)
    private static func firstChoice(_ group: Unmanaged<TargetGroup>, _ board: Unmanaged<TargetHealthBoard>) -> Int? {
        let boardID = board._withUnsafeGuaranteedRef { ObjectIdentifier($0) }
        return group._withUnsafeGuaranteedRef { $0.firstInService(boardID: boardID) }
    }
}
