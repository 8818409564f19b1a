import Common

/// The requests limits of a request checked in Redis (docs/rate-limits.md "Across hosts"): the
/// stage suspends until the script answers, or `timeout_ms` passes, and then proceeds, refuses,
/// or does what `on_unavailable` says. `max_in_flight` was taken on this host before.
enum RedisCheck {
    static func run(
        _ request: PipelineRequest, key: LimitSet?, upstream: LimitSet?, settings: Configuration.Redis,
        worker: WorkerContext
    ) -> StageVerdict {
        var keys: [[UInt8]] = []
        var limits: (UInt32, UInt32) = (0, 0)
        var owners: (RateLimitRefusal.Owner, RateLimitRefusal.Owner) = (.key, .key)
        if let limit = key?.limits.requestsPerMinute, let name = key?.redisKey {
            keys.append(name)
            limits.0 = limit
            owners.0 = .key
        }
        if let limit = upstream?.limits.requestsPerMinute, let name = upstream?.redisKey {
            if keys.isEmpty { (limits.0, owners.0) = (limit, .upstream) } else { (limits.1, owners.1) = (limit, .upstream) }
            keys.append(name)
        }
        guard !keys.isEmpty else { return .proceed }
        let client = worker.redisLimiter(for: settings)
        let suspension = StageSuspension()
        let command = RedisCheckCommand(
            keys: keys, limits: limits, memberPrefix: worker.redisMemberPrefix, sequence: worker.nextRedisSequence())
        client.check(command) { outcome in
            switch outcome {
            case .admitted:
                suspension.resume(.proceed)
            case .refused(let index, let wait):
                let second = index >= 1 && keys.count > 1
                let refusal = RateLimitRefusal.requests(
                    limit: Int(second ? limits.1 : limits.0), wait: wait * 1000, owner: second ? owners.1 : owners.0)
                request.rateLimitHold?.cancelTokens()
                suspension.resume(RateLimitStage.refuse(request, refusal))
            case .unavailable(let reason):
                client.noteUnavailable(reason, mode: settings.onUnavailable)
                worker.metrics?.region.countRateLimitBackendError()
                suspension.resume(unavailable(request, key: key, upstream: upstream, mode: settings.onUnavailable))
            }
        }
        return .suspend(suspension)
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
