import Testing
@testable import FluxgateWorker

/// An event that a read cuts is kept (up to 4 KiB) and read whole with the next read's bytes; the
/// events handed on are the same however the stream is cut, kept or not.
@Suite struct SSEEventCarryTests {
    typealias Recorder = SSEEventSplitterTests.Recorder
    typealias Event = SSEEventSplitterTests.Event

    /// The stream fed in the slices that `cuts` make, through a carry; also what is kept after
    /// each slice.
    func read(_ stream: [UInt8], cuts: [Int]) -> (events: [Event], oversized: Int, kept: [Int]) {
        var carry = SSEEventCarry()
        var splitter = SSEEventSplitter()
        var recorder = Recorder()
        var kept: [Int] = []
        stream.withUnsafeBytes { all in
            var start = 0
            for cut in cuts + [all.count] where cut > start && cut <= all.count {
                carry.split(UnsafeRawBufferPointer(rebasing: all[start..<cut]), with: &splitter, into: &recorder)
                kept.append(carry.count)
                start = cut
            }
        }
        return (recorder.events, recorder.oversized, kept)
    }

    /// Whole, and cut at every byte boundary, and one byte at a time, and in slices of every size
    /// up to `slices`: all must give the events of the stream read whole.
    func expectSameEventsHoweverCut(_ stream: String, slices: Int = 40) {
        let bytes = Array(stream.utf8)
        let whole = read(bytes, cuts: [])
        var plans = UsageFeed.everySplit(count: bytes.count)
        for size in 1...slices { plans.append(Array(stride(from: size, to: bytes.count, by: size))) }
        for cuts in plans {
            let cut = read(bytes, cuts: cuts)
            #expect(cut.events == whole.events, "cut at \(cuts.prefix(3))")
            #expect(cut.oversized == whole.oversized)
        }
    }

    @Test func anEventSplitAcrossReadsAtEveryByteIsReadWhole() {
        let chunk = #"{"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#
        expectSameEventsHoweverCut("data: \(chunk)\n\ndata: \(chunk)\n\ndata: [DONE]\n\n")
        expectSameEventsHoweverCut("data: \(chunk)\r\n\r\ndata: \(chunk)\r\n\r\n")
        expectSameEventsHoweverCut("data: \(chunk)\r\rdata: \(chunk)\r\r: comment\r\r")
        expectSameEventsHoweverCut("event: message_delta\ndata: {\"a\":\ndata: 1}\n\nevent: ping\n\n: x\n\ndata: 2\n\n")
        expectSameEventsHoweverCut("data: 1\r\n\ndata: 2\n\r\ndata: 3\r\r\n")
    }

    @Test func theStartOfACutEventIsKeptAndDroppedOnceRead() {
        let event = Array("data: {\"x\":1}\n\n".utf8)
        let stream = event + event
        // Cut inside the second event: its first bytes are kept, then read with the rest.
        let cut = read(stream, cuts: [event.count + 3])
        #expect(cut.kept == [3, 0])
        #expect(cut.events == [Event(data: "{\"x\":1}"), Event(data: "{\"x\":1}")])
        // An event the stream ends inside is kept, never handed on.
        #expect(read(Array(stream.dropLast()), cuts: []).kept == [event.count - 1])
        #expect(read(Array(stream.dropLast()), cuts: []).events == [Event(data: "{\"x\":1}")])
    }

    /// The start of a cut event is kept when it fits in 4 KiB, whole or but for its last byte;
    /// one byte more and it is read the ordinary way. The events are the same either way.
    @Test func theCarryKeepsUpTo4KiBAndStreamsALargerEvent() {
        let overhead = "data: \n\n".utf8.count
        let first = "data: 0\n\n".utf8.count
        for eventBytes in (SSEEventCarry.capacity - 1)...(SSEEventCarry.capacity + 2) {
            let value = String(repeating: "v", count: eventBytes - overhead)
            let stream = Array("data: 0\n\ndata: \(value)\n\ndata: 2\n\n".utf8)
            let eventEnd = first + eventBytes
            for cut in [first + 1, eventEnd - 2, eventEnd - 1] {
                let result = read(stream, cuts: [cut])
                #expect(result.events.map(\.data) == ["0", value, "2"], "\(eventBytes) bytes cut at \(cut)")
                #expect(result.kept == [cut - first <= SSEEventCarry.capacity ? cut - first : 0, 0])
            }
            let many = read(stream, cuts: [first + 1, eventEnd - 2, eventEnd - 1])
            #expect(many.events.map(\.data) == ["0", value, "2"])
        }
    }

    @Test func anEventLargerThanTheCarryIsReadAcrossManyReads() {
        let value = String(repeating: "0123456789", count: 1_000)
        expectSameEventsHoweverCut("data: a\n\ndata: \(value)\ndata: \(value)\n\ndata: b\n\n", slices: 3)
        let cut = read(Array("data: \(value)\n\n".utf8), cuts: Array(stride(from: 700, to: 10_000, by: 700)))
        #expect(cut.events == [Event(data: value)])
        #expect(cut.kept.allSatisfy { $0 <= SSEEventCarry.capacity })
    }

    /// The splitter's 1 MiB cap for one event applies as before: the event is skipped and
    /// reported, the next one read.
    @Test func anEventOverTheCapIsStillSkippedWhenCut() {
        let value = String(repeating: "b", count: SSEEventSplitter.maximumEventBytes + 1)
        let stream = Array("data: \(value)\n\ndata: next\n\n".utf8)
        for cuts in [[3], [SSEEventCarry.capacity], Array(stride(from: 4_000, to: stream.count, by: 65_536))] {
            let cut = read(stream, cuts: cuts)
            #expect(cut.events == [Event(data: "next")])
            #expect(cut.oversized == 1)
        }
    }
}
