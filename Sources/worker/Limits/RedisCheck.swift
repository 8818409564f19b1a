import Common

/// The requests limits of a request checked in Redis (docs/rate-limits.md "Across hosts"): the
/// stage suspends until the script answers, or `timeout_ms` passes, and then proceeds, refuses,
/// or does what `on_unavailable` says. `max_in_flight` was taken on this host before.
enum RedisCheck {
    /// What a check's answer needs, kept by the client while the check waits: plain references
    /// (a closure per check was one more allocation, and its captures one more retain each).
    struct Waiter {
        let request: PipelineRequest
        let key: LimitSet?
        let upstream: LimitSet?
        let suspension: StageSuspension
        let worker: WorkerContext
    }

    static func run(
        _ request: PipelineRequest, key: LimitSet?, upstream: LimitSet?, settings: Configuration.Redis,
        worker: WorkerContext
    ) -> StageVerdict {
        var command: RedisCheckCommand
        if let limit = key?.limits.requestsPerMinute, let name = key?.redisKey {
            command = RedisCheckCommand(first: name, firstLimit: limit)
            if let limit = upstream?.limits.requestsPerMinute, let name = upstream?.redisKey {
                command.second = name
                command.secondLimit = limit
            }
        } else if let limit = upstream?.limits.requestsPerMinute, let name = upstream?.redisKey {
            command = RedisCheckCommand(first: name, firstLimit: limit)
        } else {
            return .proceed
        }
        let suspension = StageSuspension()
        worker.redisLimiter(for: settings, in: request.snapshot).check(
            command, Waiter(request: request, key: key, upstream: upstream, suspension: suspension, worker: worker))
        return .suspend(suspension)
    }

    /// The check's answer (on the event loop, once).
    static func answer(_ waiter: Waiter, _ outcome: RedisRateLimiter.Outcome, client: RedisRateLimiter) {
        let request = waiter.request
        switch outcome {
        case .admitted:
            waiter.suspension.resume(.proceed)
        case .refused(let index, let wait):
            // The check's first limit is its key's when the key has one (`run`).
            let keyFirst = waiter.key?.limits.requestsPerMinute != nil && waiter.key?.redisKey != nil
            let owner: RateLimitRefusal.Owner = index == 0 && keyFirst ? .key : .upstream
            let limit = (owner == .key ? waiter.key : waiter.upstream)?.limits.requestsPerMinute ?? 0
            let refusal = RateLimitRefusal.requests(limit: Int(limit), wait: wait * 1000, owner: owner)
            request.rateLimitHold?.cancelTokens()
            waiter.suspension.resume(RateLimitStage.refuse(request, refusal))
        case .unavailable(let reason):
            let mode = client.settings.onUnavailable
            client.noteUnavailable(reason, mode: mode)
            waiter.worker.metrics?.region.countRateLimitBackendError()
            waiter.suspension.resume(unavailable(request, key: waiter.key, upstream: waiter.upstream, mode: mode))
        }
    }

    private static func unavailable(
        _ request: PipelineRequest, key: LimitSet?, upstream: LimitSet?, mode: Configuration.Redis.Unavailable
    ) -> StageVerdict {
        switch mode {
        case .allow: return .proceed
        case .reject:
            request.rateLimitHold?.cancelTokens()
            return .reject(RateLimitRefusal.backendUnavailable)
        case .local:
            var hold = RateLimitHold(key: nil, upstream: nil, cell: 0)
            guard let refusal = RateLimitStage.admitLocally(key: key, upstream: upstream, hold: &hold) else { return .proceed }
            request.rateLimitHold?.cancelTokens()
            return RateLimitStage.refuse(request, refusal)
        }
    }
}
