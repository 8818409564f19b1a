import Testing
@testable import Common

// docs/observability.md "Model names": one host-wide table, first 100 names per upstream, then
// `other`; every worker's view gives a name the same code.
@Suite struct ModelNameTableTests {
    let openai = MetricsSchema.key("openai")
    let anthropic = MetricsSchema.key("anthropic")

    @Test func twoWorkersMeetingANameGetTheSameCodeAndTheMasterItsName() throws {
        let segment = try MetricsSegment.create()
        let worker = try #require(MetricsSegment.attach(segment.descriptor))
        let first = segment.modelNames.code(upstream: openai, name: "gpt-4o")
        #expect(worker.modelNames.code(upstream: openai, name: "gpt-4o") == first)
        #expect((1...100).contains(first))
        #expect(segment.modelNames.name(upstream: openai, code: first) == "gpt-4o")
        // Another upstream has its own hundred.
        #expect(segment.modelNames.name(upstream: anthropic, code: first) == nil)
    }

    @Test func theHundredAndFirstNameOfAnUpstreamIsOther() throws {
        let table = try MetricsSegment.create().modelNames
        let codes = (0..<100).map { table.code(upstream: openai, name: "model-\($0)") }
        #expect(Set(codes) == Set(1...100))
        #expect(table.code(upstream: openai, name: "model-100") == ModelNameTable.otherCode)
        #expect(table.code(upstream: openai, name: "model-7") == codes[7], "a known name keeps its slot")
        #expect(table.code(upstream: anthropic, name: "model-100") != ModelNameTable.otherCode)
    }

    @Test func anEmptyOrOverlongNameIsOther() throws {
        let table = try MetricsSegment.create().modelNames
        #expect(table.code(upstream: openai, name: "") == ModelNameTable.otherCode)
        #expect(table.code(upstream: openai, name: String(repeating: "m", count: 113)) == ModelNameTable.otherCode)
        let longest = String(repeating: "m", count: 112)
        let code = table.code(upstream: openai, name: longest)
        #expect(table.name(upstream: openai, code: code) == longest)
    }

    @Test func tokensCountUnderTheirSeriesAndAFullTableUnderOther() throws {
        let segment = try MetricsSegment.create()
        let region = segment.region(0)
        let alice = MetricsSchema.key("alice")
        region.countTokens(upstream: openai, key: alice, model: 3, input: 7, output: 3, cacheRead: 2, cacheWrite: 0)
        region.countTokens(upstream: openai, key: alice, model: 3, input: 1, output: 1, cacheRead: 0, cacheWrite: 5)
        let max = MetricsRegion.SeriesTable.tokens.maxSeries
        for index in 0..<(max + 10) {
            region.countTokens(
                upstream: openai, key: MetricsSchema.key("k\(index)"), model: 1, input: 1, output: 0, cacheRead: 0, cacheWrite: 0)
        }
        var totals = MetricsTotals()
        region.add(to: &totals)
        let series = try #require(totals.tokens[.init(tag: 3, first: openai, second: alice)])
        #expect(series[0] == 8 && series[1] == 4 && series[2] == 2 && series[3] == 5)
        #expect(totals.tokens.count == max + 1)
        #expect(totals.tokens[MetricsTotals.SeriesKey.otherTokens]?[0] == 11)
        #expect(totals.tokens.values.reduce(0) { $0 + $1[0] } == 8 + Int64(max) + 10, "no token is lost")
    }
}
