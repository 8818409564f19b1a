import CLinux

/// Counters summed over regions (the live workers' and the ones the master retained from
/// workers that exited), keyed by series keys. The master's own memory: plain values.
public struct MetricsTotals: Sendable, Equatable {
    public struct RequestSeries: Hashable, Sendable {
        public var upstream: Int64
        public var key: Int64
        public var code: Int64
        public init(upstream: Int64, key: Int64, code: Int64) {
            self.upstream = upstream
            self.key = key
            self.code = code
        }
    }

    /// A histogram's counts (per bucket, not cumulative; +Inf last), sum in nanoseconds, count.
    public struct Histogram: Sendable, Equatable {
        public var buckets: [Int64]
        public var sumNs: Int64 = 0
        public var count: Int64 = 0

        public init(bounds: Int) { buckets = Array(repeating: 0, count: bounds + 1) }

        mutating func add(_ words: UnsafeMutablePointer<Int64>) {
            for index in buckets.indices { buckets[index] += fluxgate_counter_load(words + index) }
            sumNs += fluxgate_counter_load(words + buckets.count)
            count += fluxgate_counter_load(words + buckets.count + 1)
        }

        public mutating func add(_ other: Histogram) {
            for index in buckets.indices { buckets[index] += other.buckets[index] }
            sumNs += other.sumNs
            count += other.count
        }
    }

    public struct Upstream: Sendable, Equatable {
        public var requestBodyBytes: Int64 = 0
        public var responseBodyBytes: Int64 = 0
        public var errors = Array(repeating: Int64(0), count: MetricsSchema.UpstreamErrorReason.allCases.count)
        public var duration = Histogram(bounds: MetricsSchema.durationBoundsNs.count)
        public var upstreamResponse = Histogram(bounds: MetricsSchema.durationBoundsNs.count)

        public init() {}

        mutating func add(_ entry: UnsafeMutablePointer<Int64>) {
            typealias L = MetricsRegion.Layout
            requestBodyBytes += fluxgate_counter_load(entry + L.requestBody)
            responseBodyBytes += fluxgate_counter_load(entry + L.responseBody)
            for index in errors.indices { errors[index] += fluxgate_counter_load(entry + L.errors + index) }
            duration.add(entry + L.duration)
            upstreamResponse.add(entry + L.upstreamResponse)
        }

        public mutating func add(_ other: Upstream) {
            requestBodyBytes += other.requestBodyBytes
            responseBodyBytes += other.responseBodyBytes
            for index in errors.indices { errors[index] += other.errors[index] }
            duration.add(other.duration)
            upstreamResponse.add(other.upstreamResponse)
        }
    }

    /// Requests finished (every worker's, for `fluxgate status`).
    public var served: Int64 = 0
    /// A gauge: only live regions add to it (a dead worker's connections are closed).
    public var openConnections: Int64 = 0
    /// Rate-limit checks that found Redis unavailable.
    public var rateLimitBackendErrors: Int64 = 0
    public var rejected = Array(repeating: Int64(0), count: MetricsSchema.RejectionReason.allCases.count)
    public var overhead = Histogram(bounds: MetricsSchema.overheadBoundsNs.count)
    public var upstreams: [Int64: Upstream] = [:]
    public var requests: [RequestSeries: Int64] = [:]
    /// `fluxgate_upstream_attempts_total`: (target, upstream, 0) → a count per `AttemptResult`.
    public var attempts: [SeriesKey: SIMD8<Int64>] = [:]
    /// `fluxgate_rate_limited_total`: (client key, 0, 0) → a count per `RateLimit`.
    public var rateLimited: [SeriesKey: SIMD8<Int64>] = [:]
    /// `fluxgate_tokens_total`: (model code, upstream, client key) → a count per `TokenType`.
    public var tokens: [SeriesKey: SIMD8<Int64>] = [:]

    public init() {}

    /// Adds `other`'s counters (not its gauge).
    public mutating func add(_ other: MetricsTotals) {
        served += other.served
        rateLimitBackendErrors += other.rateLimitBackendErrors
        for index in rejected.indices { rejected[index] += other.rejected[index] }
        overhead.add(other.overhead)
        for (key, value) in other.upstreams { upstreams[key, default: Upstream()].add(value) }
        for (key, value) in other.requests { requests[key, default: 0] += value }
        for (key, value) in other.attempts { attempts[key, default: SIMD8()] &+= value }
        for (key, value) in other.rateLimited { rateLimited[key, default: SIMD8()] &+= value }
        for (key, value) in other.tokens { tokens[key, default: SIMD8()] &+= value }
    }

    /// A departing worker's counters, kept by the master: everything but the gauge.
    public mutating func retain(_ region: MetricsRegion) {
        var folded = MetricsTotals()
        region.add(to: &folded)
        add(folded)
    }
}
