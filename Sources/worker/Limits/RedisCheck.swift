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
        var limits: [Int] = []
        var owners: [RateLimitRefusal.Owner] = []
        if let limit = key?.limits.requestsPerMinute, let id = request.keyID {
            keys.append(Array((settings.keyPrefix + "requests:" + (key?.redisOwner ?? "k:" + id)).utf8))
            limits.append(Int(limit))
            owners.append(.key)
        }
        if let limit = upstream?.limits.requestsPerMinute, let name = request.match?.upstream.name {
            keys.append(Array((settings.keyPrefix + "requests:u:" + name).utf8))
            limits.append(Int(limit))
            owners.append(.upstream)
        }
        let client = worker.redisLimiter(for: settings)
        let suspension = StageSuspension()
        client.check(keys: keys, limits: limits, member: worker.nextRedisMember()) { outcome in
            switch outcome {
            case .admitted:
                suspension.resume(.proceed)
            case .refused(let index, let wait):
                let position = min(max(index, 0), limits.count - 1)
                let refusal = RateLimitRefusal.requests(limit: limits[position], wait: wait * 1000, owner: owners[position])
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
