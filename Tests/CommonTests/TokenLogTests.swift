import Testing
@testable import Common

// docs/rate-limits.md "Tokens": reservations in a sliding minute, settled to the usage reported.

private let second: Int64 = 1_000_000_000
private let window = 60 * second

private final class Tokens {
    let storage: UnsafeMutableBufferPointer<Int64>
    var log: TokenLog

    init(capacity: Int) {
        storage = .allocate(capacity: 3 * capacity)
        storage.initialize(repeating: 0)
        log = TokenLog(head: 0, count: 0, total: 0, nextSequence: 0, entries: storage)
    }

    deinit { storage.deallocate() }

    func admit(_ reserve: Int64, at now: Int64, limit: Int64) -> Int64? {
        log.expire(now: now, window: window)
        guard log.hasRoom(reserve, limit: limit) else { return nil }
        return log.append(now, reserve: reserve)
    }
}

@Test func admissionStopsOnceReservedTokensReachTheLimit() {
    let tokens = Tokens(capacity: 8)
    #expect(tokens.admit(60, at: 0, limit: 100) != nil)
    #expect(tokens.admit(50, at: second, limit: 100) == nil)
    #expect(tokens.admit(40, at: 2 * second, limit: 100) != nil)
    #expect(tokens.log.total == 100)
    #expect(tokens.admit(1, at: 3 * second, limit: 100) == nil)
    // The first reservation leaves the window at 60 s, and frees its 60.
    #expect(tokens.log.waitUntilRoom(1, limit: 100, now: 3 * second, window: window) == 57 * second)
    #expect(tokens.admit(60, at: 60 * second, limit: 100) != nil)
}

@Test func settlingFreesWhatTheReservationOverEstimated() throws {
    let tokens = Tokens(capacity: 8)
    let first = try #require(tokens.admit(1000, at: 0, limit: 1000))
    #expect(tokens.admit(100, at: second, limit: 1000) == nil)
    tokens.log.settle(first, tokens: 250)
    #expect(tokens.log.total == 250)
    #expect(tokens.admit(700, at: 2 * second, limit: 1000) != nil)
    // An entry that left the window is settled to nothing.
    tokens.log.expire(now: 61 * second, window: window)
    tokens.log.settle(first, tokens: 5000)
    #expect(tokens.log.total == 700)
}

@Test func aReservationOverTheLimitNeverFits() {
    let tokens = Tokens(capacity: 4)
    #expect(tokens.admit(101, at: 0, limit: 100) == nil)
    #expect(tokens.log.waitUntilRoom(101, limit: 100, now: 0, window: window) == nil)
}

@Test func aFullRingWaitsForItsOldestEntry() {
    let tokens = Tokens(capacity: 2)
    #expect(tokens.admit(1, at: 0, limit: 100) != nil)
    #expect(tokens.admit(1, at: second, limit: 100) != nil)
    #expect(tokens.admit(1, at: 2 * second, limit: 100) == nil, "never writes outside its ring")
    #expect(tokens.log.waitUntilRoom(1, limit: 100, now: 2 * second, window: window) == 58 * second)
}
