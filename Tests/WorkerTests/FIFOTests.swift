import Testing
@testable import FluxgateWorker

// A connection's queued request parts and the Redis commands awaiting replies leave in the order
// they came, however the queue drains and fills again between them.
@Suite struct FIFOTests {
    @Test func elementsLeaveInTheOrderTheyCameAcrossDrainsAndRefills() {
        var queue = FIFO<Int>()
        #expect(queue.isEmpty)
        #expect(queue.popFirst() == nil)
        var out: [Int] = []
        var next = 0
        for burst in [1, 3, 2, 5] {
            for _ in 0..<burst {
                queue.append(next)
                next += 1
            }
            // Take all but one, then add one more before draining: a head in the middle of the array.
            for _ in 0..<(burst - 1) { out.append(queue.popFirst()!) }
            queue.append(next)
            next += 1
            while let element = queue.popFirst() { out.append(element) }
            #expect(queue.isEmpty)
        }
        #expect(out == Array(0..<next))
    }

    @Test func removeAllEmptiesTheQueue() {
        var queue = FIFO<String>()
        queue.append("a")
        queue.append("b")
        _ = queue.popFirst()
        queue.removeAll()
        #expect(queue.isEmpty)
        #expect(queue.popFirst() == nil)
        queue.append("c")
        #expect(queue.popFirst() == "c")
    }
}
