import Common
import Testing

/// `server.max_connections` across worker processes: one shared total, per-worker cells so a dead
/// worker's permits come back.
@Suite struct InFlightSegmentTests {
    @Test func theLimitHoldsAcrossCellsAndADeadWorkersPermitsComeBack() throws {
        let segment = try InFlightSegment.create()
        defer { segment.descriptor.close() }
        segment.limit = 3
        #expect(segment.tryAcquire(cell: 0))
        #expect(segment.tryAcquire(cell: 0))
        #expect(segment.tryAcquire(cell: 7))
        #expect(!segment.tryAcquire(cell: 7), "the fourth permit exceeds the limit of 3")
        #expect(segment.total == 3)
        segment.release(cell: 7)
        #expect(segment.tryAcquire(cell: 5))
        #expect(!segment.tryAcquire(cell: 0))
        // The worker using cell 0 dies holding two permits: the master resets its cell.
        segment.reset(cell: 0)
        #expect(segment.total == 1, "only cell 5's permit is still held")
        #expect(segment.tryAcquire(cell: 1))
        #expect(segment.tryAcquire(cell: 1))
        #expect(!segment.tryAcquire(cell: 1))
        // A worker's view through the inherited descriptor sees the same counts.
        let worker = try #require(InFlightSegment.attach(segment.descriptor))
        #expect(worker.total == 3)
        #expect(!worker.tryAcquire(cell: 2))
    }
}
