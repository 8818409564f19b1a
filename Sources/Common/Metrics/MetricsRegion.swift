import CLinux

/// One worker's counters inside `MetricsSegment`: written by that worker only (plain relaxed
/// stores, no locked instruction, no allocation), read by the master.
///
/// Layout (Int64 words; a contract between the two executables):
///
///     header       64 words: served, open connections, overflow, rejections, the overhead
///                  histogram, the number of upstream entries in use
///     upstreams    512 entries of 64 words: series key (published last), body bytes, errors by
///                  reason, the two histograms
///     requests     32768 entries of 4 words: code (published last), upstream key, client key, count
///     attempts     2048 entries of 8 words: target key (published last), upstream key, -, a count
///                  per `AttemptResult`
///     rate limited 1024 entries of 8 words: client key (published last), -, -, a count per limit
///     tokens       16384 entries of 8 words: model code (published last), upstream key, client
///                  key, a count per `TokenType`
///
/// Tables are open-addressed on the series keys of `MetricsSchema.key`. Each accepts at most 3/4
/// of its entries (so a probe always ends); past that, new series count under `other`.
public struct MetricsRegion: @unchecked Sendable {
    public enum Layout {
        public static let headerWords = 64
        public static let upstreamEntries = 512
        public static let upstreamWords = 64
        public static let maxUpstreams = 256
        public static let requestEntries = 32768
        public static let requestWords = 4
        public static let maxRequestSeries = 24576
        static let upstreamsOffset = headerWords
        static let requestsOffset = upstreamsOffset + upstreamEntries * upstreamWords
        static let attemptsOffset = requestsOffset + requestEntries * requestWords
        static let rateLimitedOffset = attemptsOffset + SeriesTable.attempts.entries * SeriesTable.words
        static let tokensOffset = rateLimitedOffset + SeriesTable.rateLimited.entries * SeriesTable.words
        static let words = tokensOffset + SeriesTable.tokens.entries * SeriesTable.words
        /// Rounded up to whole pages, so that clearing one region never touches another's pages.
        public static let regionBytes = (words * 8 + 4095) / 4096 * 4096

        // Header words.
        static let served = 0
        static let openConnections = 1
        static let upstreamsInUse = 2
        static let requestSeriesInUse = 3
        /// `fluxgate_ratelimit_backend_errors_total` (docs/rate-limits.md "When Redis is unavailable").
        static let rateLimitBackendErrors = 4
        /// Series in use in the attempts, rate-limited and tokens tables.
        static let attemptSeriesInUse = 5
        static let rateLimitedSeriesInUse = 6
        static let tokenSeriesInUse = 7
        static let rejected = 8  // + RejectionReason.rawValue (7 words)
        static let overhead = 16  // a histogram of overheadBoundsNs

        // Upstream entry words.
        static let requestBody = 1
        static let responseBody = 2
        static let errors = 3  // + UpstreamErrorReason.rawValue (6 words)
        static let duration = 9  // a histogram of durationBoundsNs (18 words)
        static let upstreamResponse = 27  // the same (18 words)
    }

    /// The code under which a series that found no room counts (`code="other"`).
    public static let otherCode: Int64 = 1

    let base: UnsafeMutablePointer<Int64>
    /// The host's model names, which `fluxgate_tokens_total`'s model codes index.
    public let modelNames: ModelNameTable

    init(base: UnsafeMutableRawPointer, modelNames: ModelNameTable) {
        self.base = base.assumingMemoryBound(to: Int64.self)
        self.modelNames = modelNames
    }

    // MARK: Writing (the worker)

    @inline(__always) func add(_ word: Int, _ value: Int64) { fluxgate_counter_add(base + word, value) }

    public func countServed() { add(Layout.served, 1) }
    public func countRateLimitBackendError() { add(Layout.rateLimitBackendErrors, 1) }
    public func connectionOpened() { add(Layout.openConnections, 1) }
    public func connectionClosed() { add(Layout.openConnections, -1) }
    public func countRejected(_ reason: MetricsSchema.RejectionReason) { add(Layout.rejected + reason.rawValue, 1) }
    public func observeOverhead(nanoseconds: Int64) {
        Self.observe(base + Layout.overhead, bucket: MetricsSchema.overheadBucket(nanoseconds), bounds: 13, nanoseconds)
    }

    /// The entry of upstream series `key`, added when new (an index to keep: entries never move).
    public func upstreamEntry(_ key: Int64) -> Int {
        let mask = Layout.upstreamEntries - 1
        var index = Int(truncatingIfNeeded: key &* -7_046_029_254_386_353_131) >> 7 & mask
        while true {
            let entry = base + Layout.upstreamsOffset + index * Layout.upstreamWords
            let found = fluxgate_counter_load(entry)
            if found == key { return index }
            if found == MetricsSchema.emptyKey {
                if key != MetricsSchema.otherKey, fluxgate_counter_load(base + Layout.upstreamsInUse) >= Layout.maxUpstreams {
                    return upstreamEntry(MetricsSchema.otherKey)
                }
                add(Layout.upstreamsInUse, 1)
                fluxgate_publish(entry, key)
                return index
            }
            index = (index + 1) & mask
        }
    }

    /// Counts one finished request on an upstream entry (from `upstreamEntry`).
    public func countUpstream(
        entry index: Int, requestBody: Int64, responseBody: Int64, durationNs: Int64, upstreamResponseNs: Int64?
    ) {
        let entry = base + Layout.upstreamsOffset + index * Layout.upstreamWords
        fluxgate_counter_add(entry + Layout.requestBody, requestBody)
        fluxgate_counter_add(entry + Layout.responseBody, responseBody)
        Self.observe(entry + Layout.duration, bucket: MetricsSchema.durationBucket(durationNs), bounds: 15, durationNs)
        if let upstreamResponseNs {
            Self.observe(
                entry + Layout.upstreamResponse, bucket: MetricsSchema.durationBucket(upstreamResponseNs), bounds: 15, upstreamResponseNs)
        }
    }

    public func countUpstreamError(entry index: Int, _ reason: MetricsSchema.UpstreamErrorReason) {
        add(Layout.upstreamsOffset + index * Layout.upstreamWords + Layout.errors + reason.rawValue, 1)
    }

    /// `fluxgate_requests_total{upstream, key, code}` += 1.
    public func countRequest(upstream: Int64, key: Int64, code: Int64) {
        let mask = Layout.requestEntries - 1
        var hash = upstream &* -7_046_029_254_386_353_131
        hash = (hash ^ key) &* -7_046_029_254_386_353_131
        hash ^= code
        var index = Int(truncatingIfNeeded: hash >> 17) & mask
        while true {
            let entry = base + Layout.requestsOffset + index * Layout.requestWords
            let found = fluxgate_published(entry)
            if found == code, entry[1] == upstream, entry[2] == key {
                fluxgate_counter_add(entry + 3, 1)
                return
            }
            if found == 0 {
                if code != Self.otherCode, fluxgate_counter_load(base + Layout.requestSeriesInUse) >= Layout.maxRequestSeries {
                    return countRequest(upstream: MetricsSchema.otherKey, key: MetricsSchema.otherKey, code: Self.otherCode)
                }
                add(Layout.requestSeriesInUse, 1)
                entry[1] = upstream
                entry[2] = key
                entry[3] = 1
                fluxgate_publish(entry, code)
                return
            }
            index = (index + 1) & mask
        }
    }

    /// A histogram of `bounds` bounds at `words`: `bucket` gets the count, then the sum and the count.
    @inline(__always)
    static func observe(_ words: UnsafeMutablePointer<Int64>, bucket: Int, bounds: Int, _ value: Int64) {
        fluxgate_counter_add(words + bucket, 1)
        fluxgate_counter_add(words + bounds + 1, value)
        fluxgate_counter_add(words + bounds + 2, 1)
    }

    // MARK: Reading (the master)

    func load(_ word: Int) -> Int64 { fluxgate_counter_load(base + word) }

    public var served: Int64 { load(Layout.served) }
    public var openConnections: Int64 { load(Layout.openConnections) }

    /// Adds everything in this region to `totals`.
    public func add(to totals: inout MetricsTotals) {
        totals.served += served
        totals.openConnections += openConnections
        totals.rateLimitBackendErrors += load(Layout.rateLimitBackendErrors)
        for reason in MetricsSchema.RejectionReason.allCases {
            totals.rejected[reason.rawValue] += load(Layout.rejected + reason.rawValue)
        }
        totals.overhead.add(base + Layout.overhead)
        for index in 0..<Layout.upstreamEntries {
            let entry = base + Layout.upstreamsOffset + index * Layout.upstreamWords
            let key = fluxgate_published(entry)
            guard key != MetricsSchema.emptyKey else { continue }
            totals.upstreams[key, default: MetricsTotals.Upstream()].add(entry)
        }
        // Room for every series at once: growing the dictionary as it fills rehashed it ~14 times.
        totals.requests.reserveCapacity(totals.requests.count + Int(load(Layout.requestSeriesInUse)))
        for index in 0..<Layout.requestEntries {
            let entry = base + Layout.requestsOffset + index * Layout.requestWords
            let code = fluxgate_published(entry)
            guard code != 0 else { continue }
            let series = MetricsTotals.RequestSeries(upstream: entry[1], key: entry[2], code: code)
            totals.requests[series, default: 0] += fluxgate_counter_load(entry + 3)
        }
        add(.attempts, to: &totals.attempts)
        add(.rateLimited, to: &totals.rateLimited)
        add(.tokens, to: &totals.tokens)
    }
}
