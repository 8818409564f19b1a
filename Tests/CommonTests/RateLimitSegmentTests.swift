import Foundation  // only to start a process that exits (its id is then no one's)
import Testing

@testable import Common

// docs/rate-limits.md "On one host": regions named by the configuration, found again after a
// reload that reorders or grows them, and in-flight places of a dead worker given back.

private func configuration(_ keys: [(String, Configuration.Limits)]) -> Configuration {
    Configuration(
        apiKeys: Configuration.APIKeys(
            staticKeys: keys.map { Configuration.StaticKey(id: $0.0, key: Secret("key-\($0.0)"), limits: $0.1) }))
}

@Test func regionsAreNamedByKeyIDNotPosition() throws {
    let segment = try RateLimitSegment.create()
    let a = Configuration.Limits(requestsPerMinute: 2)
    let b = Configuration.Limits(requestsPerMinute: 3, maxInFlight: 1)
    #expect(segment.prepare(for: configuration([("a", a), ("b", b)])).isEmpty)
    let before = segment.directory()
    #expect(segment.prepare(for: configuration([("b", b), ("a", a)])).isEmpty)
    #expect(segment.directory() == before, "a reordered list finds the same regions")
    #expect(Set(before.keys) == ["k/r/a", "k/r/b", "k/f/b"])
}

@Test func aRaisedLimitMovesTheLogWithItsAdmissions() throws {
    let segment = try RateLimitSegment.create()
    #expect(segment.prepare(for: configuration([("a", Configuration.Limits(requestsPerMinute: 2))])).isEmpty)
    let entry = try #require(segment.directory()["k/r/a"])
    let region = segment.requestLog(entry: entry)
    var locked = region.lock()
    locked.log.append(100)
    locked.log.append(200)
    locked.unlock()
    #expect(segment.prepare(for: configuration([("a", Configuration.Limits(requestsPerMinute: 5))])).isEmpty)
    let moved = region.lock()
    defer { moved.unlock() }
    #expect(moved.log.capacity >= 5)
    #expect(moved.log.count == 2 && moved.log.instant(0) == 100 && moved.log.instant(1) == 200)
}

/// `lock(segmentBase:entry:)` and `lock(segmentBase:offsetWord:)` (the stage's plain words) lock
/// the very log `lock()` does, and follow a move as it does.
@Test func theLogLockedFromPlainWordsIsTheRegionsOwn() throws {
    let segment = try RateLimitSegment.create()
    #expect(segment.prepare(for: configuration([("a", Configuration.Limits(requestsPerMinute: 2))])).isEmpty)
    let region = segment.requestLog(entry: try #require(segment.directory()["k/r/a"]))
    let entry = try #require(region.directoryEntry)
    var locked = RequestLogRegion.lock(segmentBase: region.segmentBase, entry: entry)
    locked.log.append(100)
    locked.unlock()
    #expect(segment.prepare(for: configuration([("a", Configuration.Limits(requestsPerMinute: 5))])).isEmpty)
    var moved = RequestLogRegion.lock(segmentBase: region.segmentBase, offsetWord: region.regionOffsetWord)
    #expect(moved.log.capacity >= 5 && moved.log.count == 1 && moved.log.instant(0) == 100)
    moved.log.append(200)
    moved.unlock()
    let again = region.lock()
    defer { again.unlock() }
    #expect(again.log.count == 2 && again.log.instant(1) == 200)
}

/// The id of a process that has exited and been reaped, as a worker killed holding a lock is
/// once the master reaps it.
private func exitedProcessID() throws -> Int64 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/true")
    try process.run()
    process.waitUntilExit()
    return Int64(process.processIdentifier)
}

@Test func aLogLockedByAProcessThatDiedIsTakenOverWithItsAdmissions() throws {
    // docs/rate-limits.md "Locking": a worker killed while holding a log's lock does not block
    // the others; the next locker takes the lock over and finds the log as it was stored.
    let segment = try RateLimitSegment.create()
    #expect(segment.prepare(for: configuration([("a", Configuration.Limits(requestsPerMinute: 3))])).isEmpty)
    let entry = try #require(segment.directory()["k/r/a"])
    let region = segment.requestLog(entry: entry)
    var locked = region.lock()
    locked.log.append(100)
    locked.unlock()
    let lockWord = segment.word(segment.regionOffset(entry: entry) + 64)
    #expect(lockWord.pointee == 0, "an unlocked log's lock is free")
    lockWord.pointee = try exitedProcessID()
    var taken = region.lock()
    #expect(lockWord.pointee == Int64(getpid()), "taken over by this process")
    #expect(taken.log.count == 1 && taken.log.instant(0) == 100)
    taken.log.append(200)
    taken.unlock()
    #expect(lockWord.pointee == 0)
    let again = region.lock()
    defer { again.unlock() }
    #expect(again.log.count == 2 && again.log.instant(1) == 200)
}

@Test func aDeadWorkersInFlightPlacesAreGivenBack() throws {
    let segment = try RateLimitSegment.create()
    #expect(segment.prepare(for: configuration([("a", Configuration.Limits(maxInFlight: 2))])).isEmpty)
    let places = segment.inFlight(entry: try #require(segment.directory()["k/f/a"]))
    #expect(places.tryAcquire(limit: 2, cell: 7))
    #expect(places.tryAcquire(limit: 2, cell: 7))
    #expect(!places.tryAcquire(limit: 2, cell: 8))
    segment.reset(cell: 7)
    #expect(places.current == 0)
    #expect(places.tryAcquire(limit: 2, cell: 8))
}
