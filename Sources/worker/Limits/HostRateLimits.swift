import CLinux
import Common
import Logging
import Synchronization

/// The worker's access to the host's rate-limit segment (docs/rate-limits.md "On one host"): the
/// segment the master made and this process inherited, with the worker's cell for `max_in_flight`;
/// or, when there is none (a worker started without the master, the tests), one of its own, so
/// limits hold for this process alone.
final class HostRateLimits: Sendable {
    let segment: RateLimitSegment
    let cell: Int
    /// Set when the segment is this process's own: it makes room itself (the master does for
    /// an inherited one, before it sends a configuration).
    private let ownSegment: Mutex<Bool>
    /// When this process last warned that a subject table was full (monotonic ns; 0 = never).
    private let lastSubjectWarning = Mutex<Int64>(0)

    init(inherited segment: RateLimitSegment, cell: Int) {
        self.segment = segment
        self.cell = cell
        self.ownSegment = Mutex(false)
    }

    init(processLocal segment: RateLimitSegment) {
        self.segment = segment
        self.cell = 0
        self.ownSegment = Mutex(true)
    }

    /// A segment of this process's own; nil when even that cannot be made (limits then do nothing).
    static func processLocal() -> HostRateLimits? {
        (try? RateLimitSegment.create()).map { HostRateLimits(processLocal: $0) }
    }

    /// Says at most once a minute that a JWT key's subject table is full (docs/logging.md).
    func noteSubjectTableFull(kid: String, logger: Logger) {
        let now = fluxgate_monotonic_ns()
        let due = lastSubjectWarning.withLock { last in
            guard last == 0 || now - last >= RateLimitStage.window else { return false }
            last = now
            return true
        }
        guard due else { return }
        logger.warning(
            "Rate-limit subject table full; counting per kid",
            metadata: ["kid": "\(kid)", "subjects": "\(SubjectTable.slots)"])
    }

    /// The limits of `configuration`, with their regions looked up by name.
    func table(for configuration: Configuration) -> RateLimitTable {
        let owners = configuration.limitedOwners
        guard !owners.isEmpty else { return .none }
        ownSegment.withLock { own in
            if own { _ = segment.prepare(for: configuration) }
        }
        return RateLimitTable(configuration: configuration, owners: owners, host: self)
    }
}

/// One key's or one upstream's limits and where their state is. A class: the stage passes it
/// around per request, and a struct of this size was copied (with a retain and release of each
/// of its references) at every step — about 400 instructions per limited request.
final class LimitSet {
    let limits: Configuration.Limits
    let requests: RequestLogRegion?
    let inFlight: InFlightRegion?
    let tokens: TokenLogRegion?
    /// The requests limit's key in Redis (with `rate_limits.redis`): `<key_prefix>admissions:k:<key
    /// id>`, `…admissions:s:<kid>:<digest>` for a JWT subject, `…admissions:u:<upstream>`.
    let redisKey: [UInt8]?
    /// The one limit is `requests_per_minute` and its log is placed (no in-flight places, no
    /// tokens): the stage's short path, one log locked with plain values (`RateLimitStage`).
    let onlyRequestsLimit: Int?

    init(
        limits: Configuration.Limits, requests: RequestLogRegion?, inFlight: InFlightRegion?, tokens: TokenLogRegion?,
        redisKey: [UInt8]?
    ) {
        self.limits = limits
        self.requests = requests
        self.inFlight = inFlight
        self.tokens = tokens
        self.redisKey = redisKey
        self.onlyRequestsLimit =
            requests != nil && limits.maxInFlight == nil && limits.tokensPerMinute == nil
            ? limits.requestsPerMinute.map(Int.init) : nil
    }
}

/// A static key's one host-local `requests_per_minute` (its `LimitSet.onlyRequestsLimit`, no
/// Redis) as plain words: the stage's shortest path locks the log from these, with no `LimitSet`
/// or segment retained per request (docs/performance.md "gateway5").
struct HostLocalRequests {
    var limit: Int
    /// `RequestLogRegion.lock(segmentBase:offsetWord:)`'s words; nil: the key's limits are not
    /// this shape.
    var segmentBase: UnsafeMutableRawPointer?
    var offsetWord: UnsafeMutablePointer<Int64>?
    var entry: Int
}

/// Every limit of one configuration (part of its snapshot): by key id, and by the upstream's
/// position in that configuration (the route's index; the regions themselves are named).
/// A class: the stage reads it from the snapshot once per limited request, and a struct of four
/// collections was copied with a retain and release of each (docs/performance.md).
final class RateLimitTable: @unchecked Sendable {
    static let none = RateLimitTable()

    let isEmpty: Bool
    let keys: [String: LimitSet]
    /// The static keys' limits by position in `api_keys.static` (the authenticated request's
    /// `staticKey`): no hashing of the key id per request.
    let staticKeys: [LimitSet?]
    let upstreams: [LimitSet?]
    /// JWT keys' per-subject limits, by kid.
    let subjects: [String: SubjectLimits]
    let cell: Int
    /// `rate_limits.redis` is set: requests limits are counted there.
    let usesRedis: Bool
    /// Some upstream has limits: without, the stage does not look for the route's (reading the
    /// request's match retained its route, docs/performance.md "gateway3").
    let limitsUpstreams: Bool
    /// `HostLocalRequests` per static key (`staticKeys`' order), in a block of the table's own:
    /// read with no array retained.
    private let hostLocal: UnsafeMutablePointer<HostLocalRequests>?
    private let hostLocalCount: Int

    private init() {
        hostLocal = nil
        hostLocalCount = 0
        usesRedis = false
        limitsUpstreams = false
        isEmpty = true
        keys = [:]
        staticKeys = []
        subjects = [:]
        upstreams = []
        cell = 0
    }

    init(
        configuration: Configuration, owners: [(owner: RateLimitRegionName.Owner, name: String, limits: Configuration.Limits)],
        host: HostRateLimits
    ) {
        let directory = host.segment.directory()
        func regions(_ owner: RateLimitRegionName.Owner, _ name: String, _ limits: Configuration.Limits) -> LimitSet {
            let requests = directory[RateLimitRegionName(owner, name, .requests).description]
            let inFlight = directory[RateLimitRegionName(owner, name, .inFlight).description]
            let tokens = directory[RateLimitRegionName(owner, name, .tokens).description]
            let redisKey = configuration.rateLimits?.redis.map {
                Array(($0.keyPrefix + "admissions:" + (owner == .key ? "k:" : "u:") + name).utf8)
            }
            return LimitSet(
                limits: limits,
                requests: limits.requestsPerMinute == nil ? nil : requests.map { host.segment.requestLog(entry: $0) },
                inFlight: limits.maxInFlight == nil ? nil : inFlight.map { host.segment.inFlight(entry: $0) },
                tokens: limits.tokensPerMinute == nil ? nil : tokens.map { host.segment.tokenLog(entry: $0) },
                redisKey: redisKey)
        }
        var keys: [String: LimitSet] = [:]
        var upstreams = [LimitSet?](repeating: nil, count: configuration.upstreams.entries.count)
        let positions = Dictionary(
            configuration.upstreams.entries.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
        for (owner, name, limits) in owners {
            switch owner {
            case .key: keys[name] = regions(.key, name, limits)
            case .upstream: positions[name].map { upstreams[$0] = regions(.upstream, name, limits) }
            }
        }
        var subjects: [String: SubjectLimits] = [:]
        for key in configuration.apiKeys.jwt {
            guard let limits = key.limits, !limits.isEmpty,
                let table = directory[RateLimitRegionName(.key, key.id, .subjects).description]
            else { continue }
            let requests = directory[RateLimitRegionName(.key, key.id, .subjectRequests).description]
            if limits.requestsPerMinute != nil, requests == nil { continue }  // not placed: per kid
            subjects[key.id] = SubjectLimits(
                kid: key.id, limits: limits, table: host.segment.subjectTable(entry: table),
                requests: requests.map { host.segment.subjectRequests(entry: $0) },
                redisPrefix: configuration.rateLimits?.redis.map { $0.keyPrefix + "admissions:s:" + key.id + ":" })
        }
        self.isEmpty = false
        self.usesRedis = configuration.rateLimits?.redis != nil
        self.subjects = subjects
        self.keys = keys
        let staticKeys = configuration.apiKeys.staticKeys.map { key in key.id.flatMap { keys[$0] } }
        self.staticKeys = staticKeys
        let hostLocal = UnsafeMutablePointer<HostLocalRequests>.allocate(capacity: max(staticKeys.count, 1))
        for (position, set) in staticKeys.enumerated() {
            var words = HostLocalRequests(limit: 0, segmentBase: nil, offsetWord: nil, entry: 0)
            if configuration.rateLimits?.redis == nil, let set, let limit = set.onlyRequestsLimit, let log = set.requests,
                let entry = log.directoryEntry
            {
                words = HostLocalRequests(
                    limit: limit, segmentBase: log.segmentBase, offsetWord: log.regionOffsetWord, entry: entry)
            }
            (hostLocal + position).initialize(to: words)
        }
        self.hostLocal = hostLocal
        self.hostLocalCount = staticKeys.count
        self.upstreams = upstreams
        self.limitsUpstreams = upstreams.contains { $0 != nil }
        self.cell = host.cell
    }

    deinit { hostLocal?.deallocate() }

    /// The static key at `position`'s one host-local requests limit as plain words, when its
    /// limits are that shape.
    func hostLocalRequests(staticKey position: Int) -> HostLocalRequests? {
        guard let hostLocal, position < hostLocalCount, hostLocal[position].segmentBase != nil else { return nil }
        return hostLocal[position]
    }
}
