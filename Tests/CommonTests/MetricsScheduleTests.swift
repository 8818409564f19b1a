import Testing
@testable import Common

// docs/observability.md "Histogram buckets": the worker's constant bucket search puts every value
// where the documented bounds say.
@Suite struct MetricsScheduleTests {
    static func search(_ bounds: [Int64], _ value: Int64) -> Int {
        var bucket = 0
        while bucket < bounds.count, value > bounds[bucket] { bucket += 1 }
        return bucket
    }

    @Test func theConstantSearchesAgreeWithTheDocumentedBounds() {
        for (bounds, bucket) in [
            (MetricsSchema.durationBoundsNs, MetricsSchema.durationBucket),
            (MetricsSchema.overheadBoundsNs, MetricsSchema.overheadBucket),
        ] as [([Int64], (Int64) -> Int)] {
            let values = [Int64(0), 1, .max] + bounds.flatMap { [$0 - 1, $0, $0 + 1] }
            for value in values { #expect(bucket(value) == Self.search(bounds, value), "\(value)") }
        }
    }
}
