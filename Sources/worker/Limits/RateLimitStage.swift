import CLinux
import Common

/// Which limit refused a request: the 429's `code` and `fluxgate_rate_limited_total`'s `limit`
/// label (counted by `WorkerMetrics.record` from `RequestFacts.rateLimited`).
enum RateLimitKind: String {
    case requests, tokens
    case inFlight = "in_flight"
}

/// A request's entry in a token log, to settle when its usage is known.
struct TokenHold {
    var region: TokenLogRegion
    var sequence: Int64

    /// The entry holds `tokens` from now on (0 undoes the reservation).
    func settle(_ tokens: Int64) {
        var locked = region.lock()
        locked.log.settle(sequence, tokens: tokens)
        locked.unlock()
    }
}

/// What a request's body reserves under each token limit (docs/rate-limits.md "Tokens").
struct TokenReservation {
    var key: Int64
    var upstream: Int64
}

/// The `max_in_flight` places a request holds until it ends (`release`), and its token entries.
struct RateLimitHold {
    var key: InFlightRegion?
    var upstream: InFlightRegion?
    var cell: Int
    var keyTokens: TokenHold?
    var upstreamTokens: TokenHold?

    var isEmpty: Bool { key == nil && upstream == nil && keyTokens == nil && upstreamTokens == nil }

    func release() {
        key?.release(cell: cell)
        upstream?.release(cell: cell)
    }

    /// The request's token entries hold what its response reported (input + output) instead of
    /// the reservation (docs/rate-limits.md "Tokens"); without a reported usage they stand.
    func settle(_ usage: UsageResult?) {
        guard keyTokens != nil || upstreamTokens != nil, let usage, usage.status == .reported,
            usage.inputTokens != nil || usage.outputTokens != nil
        else { return }
        let tokens = Int64((usage.inputTokens ?? 0) + (usage.outputTokens ?? 0))
        keyTokens?.settle(tokens)
        upstreamTokens?.settle(tokens)
    }

    /// Undoes the token reservations of a request another limit refused.
    func cancelTokens() {
        keyTokens?.settle(0)
        upstreamTokens?.settle(0)
    }
}

/// The check after the route (docs/rate-limits.md, docs/routing-and-forwarding.md "Order of
/// checks"): the caller's key limits and the upstream's, all together or none — a request refused
/// by one limit is not counted by another. A configuration without limits costs one test.
enum RateLimitStage {
    static let window: Int64 = 60_000_000_000

    /// Inlined into the pipeline's loop (its one caller): the short path is a few loads, the
    /// lock and the ring; the call's frame cost ~25 instructions per request.
    @inline(__always)
    static func run(_ request: PipelineRequest, head: RequestHead, worker: WorkerContext) -> StageVerdict {
        // The pipeline calls this only when the snapshot has limits (`checksRateLimits`). Not
        // retained: the request's snapshot keeps it alive.
        unowned(unsafe) let table = request.snapshot.rateLimits
        // A static key's one host-local requests limit and no upstream's: plain words, no
        // `LimitSet` (the same as `admit` below).
        // A guaranteed reference for the look-up: the `unowned(unsafe)` binding above is copied
        // (retained and released) around it.
        if let position = request.staticKey, request.subject == nil, !table.limitsUpstreams,
            let words = Unmanaged.passUnretained(request.snapshot.rateLimits)._withUnsafeGuaranteedRef({
                $0.hostLocalRequests(staticKey: position)
            })
        {
            return admit(
                request, RequestLogRegion.lock(segmentBase: words.segmentBase!, offsetWord: words.offsetWord!), limit: words.limit,
                owner: .key)
        }
        return runByLimitSets(request, head: head, worker: worker)
    }

    /// `run` for every other configuration: the key's and the upstream's `LimitSet`s. Apart, so
    /// the short path above is a small function of its own (it shared this one's frame and
    /// spills, docs/performance.md "gateway8").
    @inline(never)
    private static func runByLimitSets(_ request: PipelineRequest, head: RequestHead, worker: WorkerContext) -> StageVerdict {
        unowned(unsafe) let table = request.snapshot.rateLimits
        var key: LimitSet?
        if let position = request.staticKey {
            key = position < table.staticKeys.count ? table.staticKeys[position] : nil
        } else {
            key = request.keyID.flatMap { table.keys[$0] }
        }
        if let subject = request.subject, let kid = request.keyID, let subjects = table.subjects[kid] {
            // Per subject, or per kid when the subject table is full (docs/rate-limits.md "JWT keys").
            if let own = subjects.limitSet(subject: subject, now: fluxgate_monotonic_ns()) {
                key = own
            } else {
                worker.rateLimits?.noteSubjectTableFull(kid: kid, logger: worker.logger)
            }
        }
        // The route's index, not a copy of the match.
        let upstream = table.limitsUpstreams ? (request.match?.route.index).flatMap { table.upstreams[$0] } : nil
        if key == nil, upstream == nil { return .proceed }
        if !table.usesRedis {
            // One host-local requests limit, the other owner unlimited: its log alone.
            if upstream == nil, let key, let limit = key.onlyRequestsLimit {
                return admit(request, key, limit: limit, owner: .key)
            }
            if key == nil, let upstream, let limit = upstream.onlyRequestsLimit {
                return admit(request, upstream, limit: limit, owner: .upstream)
            }
        }
        var reserve: TokenReservation?
        if key?.limits.tokensPerMinute != nil || upstream?.limits.tokensPerMinute != nil {
            // The reservation reads the body's max_tokens: its first bytes first (bounded).
            if request.body == nil, head.facts.framing != .none { return .needBody(bytes: RequestPipeline.maxBodyPeekBytes) }
            let requested = TokenEstimate.maxTokens(in: request.body, complete: request.bodyComplete)
            reserve = TokenReservation(
                key: requested ?? Int64(key?.limits.defaultReservedTokens ?? 0),
                upstream: requested ?? Int64(upstream?.limits.defaultReservedTokens ?? 0))
        }
        return check(request, key: key, upstream: upstream, reserve: reserve, cell: table.cell, worker: worker)
    }

    private static func check(
        _ request: PipelineRequest, key: LimitSet?, upstream: LimitSet?, reserve: TokenReservation?, cell: Int,
        worker: WorkerContext
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
            // Tokens stay on this host: reserved now, undone if Redis refuses.
            if let refusal = admitLocally(key: key, upstream: upstream, requests: false, reserve: reserve, hold: &hold) {
                hold.release()
                return refuse(request, refusal)
            }
            if !hold.isEmpty { request.rateLimitHold = hold }
            return RedisCheck.run(request, key: key, upstream: upstream, settings: redis, worker: worker)
        }
        if let refusal = admitLocally(key: key, upstream: upstream, reserve: reserve, hold: &hold) {
            hold.release()
            return refuse(request, refusal)
        }
        if !hold.isEmpty { request.rateLimitHold = hold }
        return .proceed
    }

    /// `admitLocally` for one requests log with plain values: the common host-local limit (a
    /// key's `requests_per_minute`), without the optionals of the general path.
    private static func admit(
        _ request: PipelineRequest, _ set: LimitSet, limit: Int, owner: RateLimitRefusal.Owner
    )
        -> StageVerdict
    {
        // `onlyRequestsLimit` says the log is there; it is locked where it lies, not copied out.
        admit(request, set.requests!.lock(), limit: limit, owner: owner)
    }

    /// `admit` with the log locked. Inlined: the stage's short path is this.
    @inline(__always)
    private static func admit(
        _ request: PipelineRequest, _ locked: LockedRequestLog, limit: Int, owner: RateLimitRefusal.Owner
    )
        -> StageVerdict
    {
        var locked = locked
        let now = fluxgate_monotonic_ns()
        locked.log.expire(now: now, window: window)
        guard locked.log.hasRoom(limit: limit) else { return refuseFull(request, locked, limit: limit, now: now, owner: owner) }
        locked.log.append(now)
        locked.unlock()
        return .proceed
    }

    /// `admit`'s refusal, out of line: the short path stays small.
    @inline(never)
    private static func refuseFull(
        _ request: PipelineRequest, _ locked: LockedRequestLog, limit: Int, now: Int64, owner: RateLimitRefusal.Owner
    ) -> StageVerdict {
        let wait = locked.log.waitUntilRoom(limit: limit, now: now, window: window)
        locked.unlock()
        return refuse(request, .requests(limit: limit, wait: wait, owner: owner))
    }

    static func refuse(_ request: PipelineRequest, _ refusal: RateLimitRefusal) -> StageVerdict {
        request.rateLimited = refusal.kind
        return .reject(refusal.response)
    }

    /// Both requests logs and both token logs under their locks (the key's first, then the
    /// upstream's; requests before tokens: every process takes them in that order), so all admit
    /// or none records. `requests: false` leaves the requests logs out (Redis keeps them);
    /// `reserve` is nil for a request without token limits.
    static func admitLocally(
        key: LimitSet?, upstream: LimitSet?, requests: Bool = true, reserve: TokenReservation? = nil,
        hold: inout RateLimitHold
    ) -> RateLimitRefusal? {
        let keyLimit = requests ? key?.limits.requestsPerMinute.map(Int.init) : nil
        let upstreamLimit = requests ? upstream?.limits.requestsPerMinute.map(Int.init) : nil
        let keyTokenLimit = reserve == nil ? nil : key?.limits.tokensPerMinute.map(Int64.init)
        let upstreamTokenLimit = reserve == nil ? nil : upstream?.limits.tokensPerMinute.map(Int64.init)
        var keyLog = keyLimit == nil ? nil : key?.requests?.lock()
        var keyTokens = keyTokenLimit == nil ? nil : key?.tokens?.lock()
        var upstreamLog = upstreamLimit == nil ? nil : upstream?.requests?.lock()
        var upstreamTokens = upstreamTokenLimit == nil ? nil : upstream?.tokens?.lock()
        if keyLog == nil, upstreamLog == nil, keyTokens == nil, upstreamTokens == nil { return nil }
        let now = fluxgate_monotonic_ns()
        keyLog?.log.expire(now: now, window: window)
        keyTokens?.log.expire(now: now, window: window)
        upstreamLog?.log.expire(now: now, window: window)
        upstreamTokens?.log.expire(now: now, window: window)
        let keyReserve = reserve?.key ?? 0
        let upstreamReserve = reserve?.upstream ?? 0
        var refusal: RateLimitRefusal?
        if let log = keyLog?.log, let limit = keyLimit, !log.hasRoom(limit: limit) {
            refusal = .requests(limit: limit, wait: log.waitUntilRoom(limit: limit, now: now, window: window), owner: .key)
        } else if let log = keyTokens?.log, let limit = keyTokenLimit, !log.hasRoom(keyReserve, limit: limit) {
            refusal = .tokens(limit: limit, wait: log.waitUntilRoom(keyReserve, limit: limit, now: now, window: window), owner: .key)
        } else if let log = upstreamLog?.log, let limit = upstreamLimit, !log.hasRoom(limit: limit) {
            refusal = .requests(
                limit: limit, wait: log.waitUntilRoom(limit: limit, now: now, window: window), owner: .upstream)
        } else if let log = upstreamTokens?.log, let limit = upstreamTokenLimit, !log.hasRoom(upstreamReserve, limit: limit) {
            refusal = .tokens(
                limit: limit, wait: log.waitUntilRoom(upstreamReserve, limit: limit, now: now, window: window),
                owner: .upstream)
        } else {
            keyLog?.log.append(now)
            upstreamLog?.log.append(now)
            if let sequence = keyTokens?.log.append(now, reserve: keyReserve), let region = key?.tokens {
                hold.keyTokens = TokenHold(region: region, sequence: sequence)
            }
            if let sequence = upstreamTokens?.log.append(now, reserve: upstreamReserve), let region = upstream?.tokens {
                hold.upstreamTokens = TokenHold(region: region, sequence: sequence)
            }
        }
        keyLog?.unlock()
        keyTokens?.unlock()
        upstreamLog?.unlock()
        upstreamTokens?.unlock()
        return refusal
    }
}
