import NIOCore
import Testing

@testable import Common
@testable import FluxgateWorker

/// `fluxgate_tokens_total` through the worker's caches (`ModelCodeCache`, `LastTokenSeries`):
/// every count under its own series, as the region's own lookups put it, whatever the order in
/// which the series come.
@Suite struct WorkerMetricsTests {
    @Test func tokensCountUnderTheirSeriesWhateverTheOrder() throws {
        let segment = try MetricsSegment.create()
        let metrics = WorkerMetrics(region: segment.region(0))
        let openai = MetricsSchema.key("openai")
        let alice = MetricsSchema.key("alice")
        let bob = MetricsSchema.key("bob")
        var facts = RequestFacts(startedAt: .now())
        // The same series twice, another key, another model, then back to the first.
        let requests: [(key: Int64, model: String, input: Int)] = [
            (alice, "gpt-4o", 1), (alice, "gpt-4o", 2), (bob, "gpt-4o", 4), (alice, "o3", 8), (alice, "gpt-4o", 16),
            (bob, "gpt-4o", 32),
        ]
        for request in requests {
            facts.keyMetric = request.key
            let usage = UsageResult(model: request.model, inputTokens: request.input, outputTokens: 1, status: .reported)
            metrics.countTokens(usage, facts, upstream: openai)
        }
        var totals = MetricsTotals()
        segment.region(0).add(to: &totals)
        func counts(_ key: Int64, _ model: String) -> SIMD8<Int64>? {
            totals.tokens[.init(tag: segment.modelNames.code(upstream: openai, name: model), first: openai, second: key)]
        }
        #expect(counts(alice, "gpt-4o")?[0] == 19 && counts(alice, "gpt-4o")?[1] == 3)
        #expect(counts(bob, "gpt-4o")?[0] == 36 && counts(bob, "gpt-4o")?[1] == 2)
        #expect(counts(alice, "o3")?[0] == 8 && counts(alice, "o3")?[1] == 1)
        #expect(totals.tokens.count == 3)
    }
}
