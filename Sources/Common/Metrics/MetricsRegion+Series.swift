import CLinux

// The region's series tables of docs/observability.md: `fluxgate_upstream_attempts_total`,
// `fluxgate_rate_limited_total` and `fluxgate_tokens_total`. One open-addressed table shape for
// all three: an entry is a tag (published last, 0 = empty), two more key words, then up to five
// counts, so one probe finds a series and all of its counts.
extension MetricsRegion {
    /// Where a table lives in the region and how full it may get.
    public struct SeriesTable: Sendable {
        public static let words = 8
        /// Counts per entry, after the three key words.
        public static let counts = 5
        let offset: Int
        public let entries: Int
        /// At most 3/4 of the entries, so a probe always ends; past it new series count as `other`.
        public let maxSeries: Int
        let inUseWord: Int

        public static var attempts: SeriesTable {
            SeriesTable(offset: Layout.attemptsOffset, entries: 2048, maxSeries: 1536, inUseWord: Layout.attemptSeriesInUse)
        }
        public static var rateLimited: SeriesTable {
            SeriesTable(offset: Layout.rateLimitedOffset, entries: 1024, maxSeries: 768, inUseWord: Layout.rateLimitedSeriesInUse)
        }
        public static var tokens: SeriesTable {
            SeriesTable(offset: Layout.tokensOffset, entries: 16384, maxSeries: 12288, inUseWord: Layout.tokenSeriesInUse)
        }
    }

    /// The counts of series (`tag`, `first`, `second`) in `table`, added when new; a full table
    /// gives `other`'s counts (so sums stay right).
    @inline(__always)
    func counts(
        _ table: SeriesTable, _ tag: Int64, _ first: Int64, _ second: Int64, other: MetricsTotals.SeriesKey
    )
        -> UnsafeMutablePointer<Int64>
    {
        let mask = table.entries - 1
        var hash = first &* -7_046_029_254_386_353_131
        hash = (hash ^ second) &* -7_046_029_254_386_353_131
        hash = (hash ^ tag) &* -7_046_029_254_386_353_131
        var index = Int(truncatingIfNeeded: hash >> 17) & mask
        while true {
            let entry = base + table.offset + index * SeriesTable.words
            let found = fluxgate_published(entry)
            if found == tag, entry[1] == first, entry[2] == second { return entry + 3 }
            if found == MetricsSchema.emptyKey {
                let isOther = tag == other.tag && first == other.first && second == other.second
                if !isOther, fluxgate_counter_load(base + table.inUseWord) >= table.maxSeries {
                    return counts(table, other.tag, other.first, other.second, other: other)
                }
                add(table.inUseWord, 1)
                entry[1] = first
                entry[2] = second
                fluxgate_publish(entry, tag)
                return entry + 3
            }
            index = (index + 1) & mask
        }
    }

    /// `fluxgate_upstream_attempts_total{upstream, target, result}` += 1.
    public func countAttempt(upstream: Int64, target: Int64, _ result: MetricsSchema.AttemptResult) {
        let counts = counts(.attempts, target, upstream, 0, other: MetricsTotals.SeriesKey.otherAttempt)
        fluxgate_counter_add(counts + result.rawValue, 1)
    }

    /// `fluxgate_rate_limited_total{key, limit}` += 1.
    public func countRateLimited(key: Int64, _ limit: MetricsSchema.RateLimit) {
        let counts = counts(.rateLimited, key, 0, 0, other: MetricsTotals.SeriesKey.otherRateLimited)
        fluxgate_counter_add(counts + limit.rawValue, 1)
    }

    /// `fluxgate_tokens_total{upstream, key, model, type}` += each count (`model`: a code of
    /// `ModelNameTable`).
    public func countTokens(upstream: Int64, key: Int64, model: Int64, input: Int64, output: Int64, cacheRead: Int64, cacheWrite: Int64) {
        Self.addTokens(
            tokenCounts(upstream: upstream, key: key, model: model), input: input, output: output, cacheRead: cacheRead,
            cacheWrite: cacheWrite)
    }

    /// Where the counts of `fluxgate_tokens_total{upstream, key, model}` are (or those of its
    /// `other` series, once the table is full). A series, once placed, stays where it is while the
    /// region's worker lives (the master clears a region only after its worker is gone), so the
    /// worker may keep the address rather than find it again.
    public func tokenCounts(upstream: Int64, key: Int64, model: Int64) -> UnsafeMutablePointer<Int64> {
        counts(.tokens, model, upstream, key, other: MetricsTotals.SeriesKey.otherTokens)
    }

    /// Adds each count to the series at `counts` (from `tokenCounts`).
    public static func addTokens(
        _ counts: UnsafeMutablePointer<Int64>, input: Int64, output: Int64, cacheRead: Int64, cacheWrite: Int64
    ) {
        if input != 0 { fluxgate_counter_add(counts + MetricsSchema.TokenType.input.rawValue, input) }
        if output != 0 { fluxgate_counter_add(counts + MetricsSchema.TokenType.output.rawValue, output) }
        if cacheRead != 0 { fluxgate_counter_add(counts + MetricsSchema.TokenType.cacheRead.rawValue, cacheRead) }
        if cacheWrite != 0 { fluxgate_counter_add(counts + MetricsSchema.TokenType.cacheWrite.rawValue, cacheWrite) }
    }

    /// Adds every series of `table` to `totals`.
    func add(_ table: SeriesTable, to totals: inout [MetricsTotals.SeriesKey: SIMD8<Int64>]) {
        for index in 0..<table.entries {
            let entry = base + table.offset + index * SeriesTable.words
            let tag = fluxgate_published(entry)
            guard tag != MetricsSchema.emptyKey else { continue }
            var counts = SIMD8<Int64>()
            for word in 0..<SeriesTable.counts { counts[word] = fluxgate_counter_load(entry + 3 + word) }
            totals[MetricsTotals.SeriesKey(tag: tag, first: entry[1], second: entry[2]), default: SIMD8()] &+= counts
        }
    }
}

extension MetricsTotals {
    /// A series of the attempts, rate-limited and tokens tables: the tag (target key, client key,
    /// model code) and two more keys (the upstream, the client key; 0 when unused).
    public struct SeriesKey: Hashable, Sendable {
        public var tag: Int64
        public var first: Int64
        public var second: Int64
        public init(tag: Int64, first: Int64, second: Int64) {
            self.tag = tag
            self.first = first
            self.second = second
        }

        static let otherAttempt = SeriesKey(tag: MetricsSchema.otherKey, first: MetricsSchema.otherKey, second: 0)
        static let otherRateLimited = SeriesKey(tag: MetricsSchema.otherKey, first: 0, second: 0)
        static let otherTokens = SeriesKey(tag: ModelNameTable.otherCode, first: MetricsSchema.otherKey, second: MetricsSchema.otherKey)
    }
}
