import Testing
@testable import Common

// docs/rate-limits.md "The algorithm": the exact sliding window as a value, with explicit
// instants (nanoseconds; the window is 60 s).

private let second: Int64 = 1_000_000_000
private let window = 60 * second

/// A log over a buffer of its own, and the admit step the limits stage performs.
private final class Log {
    let storage: UnsafeMutableBufferPointer<Int64>
    var log: AdmissionLog

    init(capacity: Int) {
        storage = .allocate(capacity: capacity)
        storage.initialize(repeating: 0)
        log = AdmissionLog(head: 0, count: 0, entries: storage)
    }

    deinit { storage.deallocate() }

    func admit(at now: Int64, limit: Int) -> Bool {
        log.expire(now: now, window: window)
        guard log.hasRoom(limit: limit) else { return false }
        log.append(now)
        return true
    }
}

@Test func aFullWindowRefusesUntilItsOldestAdmissionIsAMinuteOld() {
    let log = Log(capacity: 3)
    #expect(log.admit(at: 0, limit: 3))
    #expect(log.admit(at: 10 * second, limit: 3))
    #expect(log.admit(at: 20 * second, limit: 3))
    #expect(!log.admit(at: 59 * second, limit: 3))
    #expect(log.log.waitUntilRoom(limit: 3, now: 59 * second, window: window) == second)
    // At 60 s the first admission leaves the window (it counts for (t, t+60s)).
    #expect(log.admit(at: 60 * second, limit: 3))
    #expect(!log.admit(at: 69 * second, limit: 3))
    #expect(log.admit(at: 70 * second, limit: 3))
}

/// A bucket refilled for a minute after a full burst admits twice the limit within one window;
/// the log admits `limit` in every window, however the requests are spaced.
@Test func noSixtySecondWindowEverHoldsMoreThanTheLimit() {
    let limit = 5
    let log = Log(capacity: limit)
    var admitted: [Int64] = []
    for tick in 0..<600 {
        let now = Int64(tick) * second / 2
        if log.admit(at: now, limit: limit) { admitted.append(now) }
    }
    for start in admitted {
        #expect(admitted.filter { $0 >= start && $0 < start + window }.count <= limit)
    }
    // And never refused below the limit: one admission per 12 s on average, five per minute.
    #expect(admitted.count == 5 * 5)
}

@Test func aLoweredLimitWaitsForEnoughAdmissionsToExpire() {
    let log = Log(capacity: 4)
    for t in 0..<4 { #expect(log.admit(at: Int64(t) * second, limit: 4)) }
    #expect(!log.admit(at: 5 * second, limit: 2))
    // Three of the four must leave before one more fits under 2: the third oldest is at 2 s.
    #expect(log.log.waitUntilRoom(limit: 2, now: 5 * second, window: window) == 57 * second)
    #expect(!log.admit(at: 60 * second, limit: 2))
    #expect(log.admit(at: 62 * second, limit: 2))
}

@Test func aLimitAboveTheRingIsBoundedByTheRing() {
    let log = Log(capacity: 2)
    #expect(log.admit(at: 0, limit: 10))
    #expect(log.admit(at: 1, limit: 10))
    #expect(!log.admit(at: 2, limit: 10), "never writes outside its ring")
}

@Test func numbersLeftHalfWrittenByADeadHolderAreClampedToTheRing() {
    let storage = UnsafeMutableBufferPointer<Int64>.allocate(capacity: 4)
    defer { storage.deallocate() }
    storage.initialize(repeating: 0)
    let log = AdmissionLog(head: 9, count: -3, entries: storage)
    #expect(log.head == 3 && log.count == 0)
    #expect(AdmissionLog(head: 1, count: 7, entries: storage).count == 4)
}

/// `expire`'s test of the oldest admission alone and `append`'s wrap without a division keep the
/// window the list of the last minute's admissions would: every admission and refusal the same,
/// the ring wrapping many times.
@Test func theRingAdmitsAsAListOfTheLastMinutesAdmissions() {
    var generator = SystemRandomNumberGenerator()
    for capacity in [1, 2, 3, 7] {
        let log = Log(capacity: capacity)
        var list: [Int64] = []
        var now: Int64 = 0
        for step in 0..<2_000 {
            now += Int64.random(in: 0...(30 * second), using: &generator)
            let limit = Int.random(in: 1...(capacity + 1), using: &generator)
            list.removeAll { $0 <= now - window }
            let expected = list.count < min(limit, capacity)
            if expected { list.append(now) }
            #expect(log.admit(at: now, limit: limit) == expected, "capacity \(capacity), step \(step)")
            #expect(log.log.count == list.count)
            #expect((0..<list.count).map { log.log.instant($0) } == list)
        }
    }
}
