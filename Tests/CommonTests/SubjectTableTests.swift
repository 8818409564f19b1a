import Testing
@testable import Common

// docs/rate-limits.md "JWT keys": a JWT key's subjects, each with its own logs, in a table of
// fixed size: an idle subject's slot is reused, a full table places no one (the caller then
// counts per kid), and a raised limit keeps every subject's admissions.

private let window: Int64 = 60_000_000_000

private func jwtConfiguration(_ limits: Configuration.Limits) -> Configuration {
    Configuration(
        apiKeys: Configuration.APIKeys(jwt: [
            Configuration.JWTKey(id: "issuer", key: Secret(String(repeating: "s", count: 32)), limits: limits)
        ]))
}

/// A digest whose probe starts at `start` (its low word), told apart by `tag`.
private func digest(start: Int, tag: UInt8) -> SubjectTable.Digest {
    var bytes = [UInt8](repeating: 0, count: 32)
    bytes[0] = tag
    bytes[1] = 0x80
    var low = UInt64(start)
    for index in (8..<16).reversed() {
        bytes[index] = UInt8(low & 0xff)
        low >>= 8
    }
    return SubjectTable.Digest(sha256: bytes)
}

private func tables(_ limits: Configuration.Limits) throws -> (RateLimitSegment, SubjectTable, SubjectRequestsTable) {
    let segment = try RateLimitSegment.create()
    #expect(segment.prepare(for: jwtConfiguration(limits)).isEmpty)
    let directory = segment.directory()
    let table = segment.subjectTable(entry: try #require(directory["k/s/issuer"]))
    let requests = segment.subjectRequests(entry: try #require(directory["k/q/issuer"]))
    return (segment, table, requests)
}

@Test func aSubjectKeepsItsSlotAndTwoSubjectsHaveTwo() throws {
    let (_, table, requests) = try tables(Configuration.Limits(requestsPerMinute: 2))
    let alice = try #require(table.slot(for: digest(start: 7, tag: 1), now: 1, window: window, requests: requests))
    let bob = try #require(table.slot(for: digest(start: 7, tag: 2), now: 2, window: window, requests: requests))
    #expect(alice != bob)
    #expect(table.slot(for: digest(start: 7, tag: 1), now: 3, window: window, requests: requests) == alice)
    var log = requests.log(slot: alice).lock()
    #expect(log.log.capacity == 2 && log.log.hasRoom(limit: 2))
    log.log.append(3)
    log.unlock()
    let other = requests.log(slot: bob).lock()
    #expect(other.log.count == 0, "bob's log is his own")
    other.unlock()
}

@Test func aFullTablePlacesNoOneUntilASlotIsIdleForAWindow() throws {
    let (_, table, requests) = try tables(Configuration.Limits(requestsPerMinute: 1, maxInFlight: 1))
    let start = 100
    for tag in 0..<UInt8(SubjectTable.probes) {
        #expect(table.slot(for: digest(start: start, tag: tag), now: 20, window: window, requests: requests) != nil)
    }
    let newcomer = digest(start: start, tag: 200)
    #expect(table.slot(for: newcomer, now: 20, window: window, requests: requests) == nil, "every probed slot is live")
    // One subject keeps a request in flight past the window; the others go idle.
    let busy = try #require(table.slot(for: digest(start: start, tag: 0), now: 20, window: window, requests: requests))
    #expect(table.inFlight(slot: busy).tryAcquire(limit: 1, cell: 0))
    #expect(table.slot(for: newcomer, now: 20 + window - 1, window: window, requests: requests) == nil)
    let reused = try #require(table.slot(for: newcomer, now: 20 + window, window: window, requests: requests))
    #expect(reused != busy, "a slot with a request in flight is never reused")
    #expect(table.slot(for: newcomer, now: 30 + window, window: window, requests: requests) == reused)
}

@Test func aRaisedLimitKeepsEachSubjectsAdmissions() throws {
    let (segment, table, requests) = try tables(Configuration.Limits(requestsPerMinute: 2))
    let alice = try #require(table.slot(for: digest(start: 5, tag: 1), now: 1, window: window, requests: requests))
    var log = requests.log(slot: alice).lock()
    log.log.append(100)
    log.log.append(200)
    log.unlock()
    #expect(segment.prepare(for: jwtConfiguration(Configuration.Limits(requestsPerMinute: 5))).isEmpty)
    let moved = requests.log(slot: alice).lock()
    defer { moved.unlock() }
    #expect(moved.log.capacity >= 5)
    #expect(moved.log.count == 2 && moved.log.instant(0) == 100 && moved.log.instant(1) == 200)
}
