import CLinux
import Common

/// Which limit refused a request (the request line and `fluxgate_rate_limited_total`'s `limit`).
enum RateLimitKind: String {
    case requests, tokens
    case inFlight = "in_flight"
}

/// The `max_in_flight` places a request holds until it ends (`release`).
struct RateLimitHold {
    var key: InFlightRegion?
    var upstream: InFlightRegion?
    var cell: Int

    func release() {
        key?.release(cell: cell)
        upstream?.release(cell: cell)
    }
}

/// The check after the route (docs/rate-limits.md, docs/routing-and-forwarding.md "Order of
/// checks"): the caller's key limits and the upstream's, all together or none — a request refused
/// by one limit is not counted by another. A configuration without limits costs one test.
enum RateLimitStage {
    static let window: Int64 = 60_000_000_000

    static func run(_ request: PipelineRequest, head: RequestHead, worker: WorkerContext) -> StageVerdict {
        let table = request.snapshot.rateLimits
        if table.isEmpty { return .proceed }
        let key = request.keyID.flatMap { table.keys[$0] }
        let upstream = request.match.flatMap { match in table.upstreams[match.route.index] }
        if key == nil, upstream == nil { return .proceed }
        return check(request, key: key, upstream: upstream, cell: table.cell, worker: worker)
    }

    private static func check(
        _ request: PipelineRequest, key: LimitSet?, upstream: LimitSet?, cell: Int, worker: WorkerContext
    ) -> StageVerdict {
        // In-flight places first: giving one back is free, an admission's record is not.
        var hold = RateLimitHold(key: nil, upstream: nil, cell: cell)
        if let region = key?.inFlight, let limit = key?.limits.maxInFlight {
            guard region.tryAcquire(limit: Int(limit), cell: cell) else { return refuse(request, .inFlightExceeded) }
            hold.key = region
        }
        if let region = upstream?.inFlight, let limit = upstream?.limits.maxInFlight {
            guard region.tryAcquire(limit: Int(limit), cell: cell) else {
                hold.release()
                return refuse(request, .inFlightExceeded)
            }
            hold.upstream = region
        }
        if let redis = request.snapshot.configuration.rateLimits?.redis,
            key?.limits.requestsPerMinute != nil || upstream?.limits.requestsPerMinute != nil
        {
            if hold.key != nil || hold.upstream != nil { request.rateLimitHold = hold }
            return RedisCheck.run(request, key: key, upstream: upstream, settings: redis, worker: worker)
        }
        if let refusal = admitRequests(key: key, upstream: upstream) {
            hold.release()
            return refuse(request, refusal)
        }
        if hold.key != nil || hold.upstream != nil { request.rateLimitHold = hold }
        return .proceed
    }

    static func refuse(_ request: PipelineRequest, _ refusal: RateLimitRefusal) -> StageVerdict {
        request.rateLimited = refusal.kind
        return .reject(refusal.response)
    }

    /// Both requests logs under their locks (the key's first, then the upstream's: every process
    /// takes them in that order), so both admit or neither records.
    static func admitRequests(key: LimitSet?, upstream: LimitSet?) -> RateLimitRefusal? {
        let keyLimit = key?.limits.requestsPerMinute.map(Int.init)
        let upstreamLimit = upstream?.limits.requestsPerMinute.map(Int.init)
        var keyLog = keyLimit == nil ? nil : key?.requests?.lock()
        var upstreamLog = upstreamLimit == nil ? nil : upstream?.requests?.lock()
        if keyLog == nil, upstreamLog == nil { return nil }
        let now = fluxgate_monotonic_ns()
        keyLog?.log.expire(now: now, window: window)
        upstreamLog?.log.expire(now: now, window: window)
        var refusal: RateLimitRefusal?
        if let log = keyLog?.log, let limit = keyLimit, !log.hasRoom(limit: limit) {
            refusal = .requests(limit: limit, wait: log.waitUntilRoom(limit: limit, now: now, window: window), owner: .key)
        } else if let log = upstreamLog?.log, let limit = upstreamLimit, !log.hasRoom(limit: limit) {
            refusal = .requests(
                limit: limit, wait: log.waitUntilRoom(limit: limit, now: now, window: window), owner: .upstream)
        } else {
            keyLog?.log.append(now)
            upstreamLog?.log.append(now)
        }
        keyLog?.unlock()
        upstreamLog?.unlock()
        return refusal
    }
}
