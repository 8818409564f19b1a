import Common
import Testing

@testable import FluxgateWorker

/// `RateLimitTable.hostLocalRequests` (the limits stage's plain words, docs/rate-limits.md "On one
/// host"): there exactly for a static key whose one limit is a host-local `requests_per_minute`,
/// and naming that key's own requests log.
@Suite struct HostLocalRequestsTests {
    static func configuration(redis: Bool) -> Configuration {
        Configuration(
            apiKeys: .init(staticKeys: [
                .init(id: "only", key: Secret("k1"), limits: .init(requestsPerMinute: 7)),
                .init(id: "more", key: Secret("k2"), limits: .init(requestsPerMinute: 7, maxInFlight: 2)),
                .init(id: "none", key: Secret("k3")),
                .init(id: nil, key: Secret("k4")),
            ]),
            rateLimits: redis ? .init(redis: .init(host: "127.0.0.1")) : nil)
    }

    @Test func theWordsAreThoseOfTheKeysOneRequestsLog() throws {
        let host = try #require(HostRateLimits.processLocal())
        let table = host.table(for: Self.configuration(redis: false))
        let words = try #require(table.hostLocalRequests(staticKey: 0))
        let log = try #require(table.staticKeys[0]?.requests)
        #expect(words.limit == 7 && words.segmentBase == log.segmentBase && words.entry == log.directoryEntry)
        #expect(words.offsetWord == log.regionOffsetWord)
        #expect(table.staticKeys[0]?.onlyRequestsLimit == 7)
        for position in 1..<6 { #expect(table.hostLocalRequests(staticKey: position) == nil) }
        // The words lock the log the key's `LimitSet` does.
        var locked = RequestLogRegion.lock(
            segmentBase: try #require(words.segmentBase), offsetWord: try #require(words.offsetWord))
        locked.log.append(42)
        locked.unlock()
        let again = log.lock()
        defer { again.unlock() }
        #expect(again.log.count == 1 && again.log.instant(0) == 42)
    }

    @Test func withRedisThereAreNoPlainWords() throws {
        let host = try #require(HostRateLimits.processLocal())
        let table = host.table(for: Self.configuration(redis: true))
        #expect(table.staticKeys[0]?.onlyRequestsLimit == 7)
        for position in 0..<4 { #expect(table.hostLocalRequests(staticKey: position) == nil) }
    }
}
