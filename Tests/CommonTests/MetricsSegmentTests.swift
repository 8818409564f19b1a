import Testing
@testable import Common

// docs/observability.md "How the counters are shared": each worker counts into its own region;
// the master sums the regions and keeps a departed worker's counts.

@Suite struct MetricsSegmentTests {
    let alice = MetricsSchema.key("alice")
    let openai = MetricsSchema.key("openai")

    @Test func aRegionCountsRequestsBySeries() throws {
        let segment = try MetricsSegment.create()
        let region = segment.region(3)
        for _ in 0..<5 { region.countRequest(upstream: openai, key: alice, code: 200) }
        region.countRequest(upstream: openai, key: alice, code: 500)
        region.countRequest(upstream: MetricsSchema.noneKey, key: MetricsSchema.noneKey, code: 401)
        var totals = MetricsTotals()
        region.add(to: &totals)
        #expect(totals.requests[.init(upstream: openai, key: alice, code: 200)] == 5)
        #expect(totals.requests[.init(upstream: openai, key: alice, code: 500)] == 1)
        #expect(totals.requests[.init(upstream: MetricsSchema.noneKey, key: MetricsSchema.noneKey, code: 401)] == 1)
        #expect(totals.requests.count == 3)
    }

    @Test func anAttachedSegmentSeesTheSameRegions() throws {
        let segment = try MetricsSegment.create()
        let worker = try #require(MetricsSegment.attach(segment.descriptor))
        worker.region(0).countServed()
        worker.region(0).countRequest(upstream: openai, key: alice, code: 200)
        #expect(segment.region(0).served == 1)
        #expect(segment.region(1).served == 0)
    }

    @Test func histogramsPutAValueInTheFirstBucketNotBelowIt() throws {
        let segment = try MetricsSegment.create()
        let region = segment.region(0)
        let entry = region.upstreamEntry(openai)
        // 7 ms → the 0.01 s bucket; exactly 5 ms → the 0.005 s bucket; 20 min → +Inf.
        for ns: Int64 in [7_000_000, 5_000_000, 1_200_000_000_000] {
            region.countUpstream(entry: entry, requestBody: 10, responseBody: 100, durationNs: ns, upstreamResponseNs: nil)
        }
        region.observeOverhead(nanoseconds: 12_000)
        var totals = MetricsTotals()
        region.add(to: &totals)
        let upstream = try #require(totals.upstreams[openai])
        #expect(upstream.duration.buckets[0] == 1)
        #expect(upstream.duration.buckets[1] == 1)
        #expect(upstream.duration.buckets.last == 1)
        #expect(upstream.duration.count == 3)
        #expect(upstream.upstreamResponse.count == 0)
        #expect(upstream.requestBodyBytes == 30 && upstream.responseBodyBytes == 300)
        #expect(totals.overhead.buckets[1] == 1)  // 12 µs: the 25 µs bucket
    }

    @Test func retainedTotalsSurviveTheRegionBeingCleared() throws {
        let segment = try MetricsSegment.create()
        let region = segment.region(7)
        for _ in 0..<4 { region.countRequest(upstream: openai, key: alice, code: 200) }
        region.connectionOpened()
        var retained = MetricsTotals()
        retained.retain(region)
        segment.clear(7)
        #expect(segment.region(7).served == 0)
        // The next worker on the cell starts from zero; the sum goes on from the retained count.
        segment.region(7).countRequest(upstream: openai, key: alice, code: 200)
        var sum = retained
        segment.region(7).add(to: &sum)
        #expect(sum.requests[.init(upstream: openai, key: alice, code: 200)] == 5)
        #expect(retained.openConnections == 0, "a gauge is not retained")
    }

    @Test func aFullRequestTableCountsNewSeriesAsOther() throws {
        let segment = try MetricsSegment.create()
        let region = segment.region(0)
        let series = MetricsRegion.Layout.maxRequestSeries + 100
        for index in 0..<series { region.countRequest(upstream: openai, key: MetricsSchema.key("k\(index)"), code: 200) }
        var totals = MetricsTotals()
        region.add(to: &totals)
        #expect(totals.requests.count == MetricsRegion.Layout.maxRequestSeries + 1)
        let other = MetricsTotals.RequestSeries(
            upstream: MetricsSchema.otherKey, key: MetricsSchema.otherKey, code: MetricsRegion.otherCode)
        #expect(totals.requests[other] == 100)
        #expect(totals.requests.values.reduce(0, +) == Int64(series), "no request is lost")
    }

    @Test func aFullUpstreamTableCountsNewUpstreamsAsOther() throws {
        let segment = try MetricsSegment.create()
        let region = segment.region(0)
        let entries = (0..<300).map { region.upstreamEntry(MetricsSchema.key("u\($0)")) }
        #expect(Set(entries).count == MetricsRegion.Layout.maxUpstreams + 1)
        #expect(region.upstreamEntry(MetricsSchema.key("u0")) == entries[0], "an entry never moves")
    }

    @Test func seriesKeysAvoidTheReservedValues() {
        #expect(MetricsSchema.key("none") != MetricsSchema.noneKey)
        #expect(MetricsSchema.key("") > 2 || MetricsSchema.key("") < 0)
        #expect(MetricsSchema.key("alice") != MetricsSchema.key("alicf"))
    }
}
