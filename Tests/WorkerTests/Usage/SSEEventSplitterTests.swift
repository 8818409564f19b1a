import Testing
@testable import FluxgateWorker

/// The event splitter follows WHATWG's "Interpreting an event stream", whatever the slices.
@Suite struct SSEEventSplitterTests {
    struct Event: Equatable, CustomStringConvertible {
        var type: String?
        var data: String

        var description: String { "\(type ?? "-"): \(data.debugDescription)" }
    }

    struct Recorder: SSEEventSink {
        var events: [Event] = []
        var oversized = 0
        var current: [UInt8] = []

        mutating func eventDataBegins(type: SSEEventSplitter.EventType) -> Bool { true }

        mutating func eventData(_ bytes: UnsafeRawBufferPointer) { current += bytes }

        mutating func eventEnded(type: SSEEventSplitter.EventType) {
            events.append(Event(type: type.isSet ? type.string : nil, data: String(decoding: current, as: UTF8.self)))
            current = []
        }

        mutating func eventOversized() {
            oversized += 1
            current = []
        }
    }

    /// Splits `stream` whole, cut at every byte boundary, and one byte at a time: all must agree.
    func split(_ stream: [UInt8]) -> Recorder {
        var reference: Recorder?
        for cuts in UsageFeed.everySplit(count: stream.count) {
            var splitter = SSEEventSplitter()
            var recorder = Recorder()
            stream.withUnsafeBytes { all in
                var start = 0
                for cut in cuts where cut > start && cut < all.count {
                    splitter.split(UnsafeRawBufferPointer(rebasing: all[start..<cut]), into: &recorder)
                    start = cut
                }
                splitter.split(UnsafeRawBufferPointer(rebasing: all[start...]), into: &recorder)
            }
            if let reference {
                #expect(recorder.events == reference.events, "cut at \(cuts.prefix(3))")
            } else {
                reference = recorder
            }
        }
        return reference!
    }

    func split(_ stream: String) -> [Event] { split(Array(stream.utf8)).events }

    @Test func lfCrlfAndCrEndLinesAlike() {
        let expected = [Event(type: "a", data: "1"), Event(type: nil, data: "2")]
        #expect(split("event: a\ndata: 1\n\ndata: 2\n\n") == expected)
        #expect(split("event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n") == expected)
        #expect(split("event: a\rdata: 1\r\rdata: 2\r\r") == expected)
        #expect(split("event: a\r\ndata: 1\n\rdata: 2\r\r\n") == expected)
    }

    @Test func dataLinesAreJoinedWithLF() {
        #expect(split("data: {\"a\":\ndata: 1}\ndata:\n\n") == [Event(data: "{\"a\":\n1}\n")])
    }

    @Test func oneSpaceAfterTheColonIsDropped() {
        #expect(split("data:x\n\ndata: x\n\ndata:  x\n\n") == [Event(data: "x"), Event(data: "x"), Event(data: " x")])
    }

    @Test func aFieldWithoutColonHasAnEmptyValue() {
        #expect(split("data\n\ndata\ndata\n\nevent\ndata: x\n\n") == [Event(data: ""), Event(data: "\n"), Event(type: "", data: "x")])
    }

    @Test func commentsAndOtherFieldsAreIgnored() {
        let stream = ": hello\nid: 7\nretry: 100\ndatum: no\ndata2: no\nDATA: no\nfoo\n:\ndata: yes\n: bye\n\n"
        #expect(split(stream) == [Event(data: "yes")])
    }

    @Test func anEventWithoutDataIsNotDispatched() {
        #expect(split("event: ping\n\n: only a comment\n\n\n\nid: 3\n\ndata: x\n\n") == [Event(data: "x")])
    }

    @Test func theEventTypeIsTheLastAndIsForgottenAfterTheEvent() {
        #expect(split("event: a\nevent: b\ndata: 1\n\ndata: 2\n\n") == [Event(type: "b", data: "1"), Event(data: "2")])
    }

    @Test func anEventTheStreamEndsInsideIsNotDispatched() {
        #expect(split("data: 1\n\ndata: 2\n") == [Event(data: "1")])
        #expect(split("data: 1\n\ndata: 2") == [Event(data: "1")])
    }

    @Test func aLeadingBOMIsSkippedOnlyAtTheStart() {
        #expect(split("\u{FEFF}data: 1\n\n") == [Event(data: "1")])
        // A BOM later is part of the line: a field named "\u{FEFF}data", which is not data.
        #expect(split("data: 1\n\n\u{FEFF}data: 2\n\n") == [Event(data: "1")])
        // Bytes that start like a BOM but are not one make an unknown field.
        #expect(split(Array([0xEF, 0xBB, 0x41]) + Array(":x\ndata: 1\n\n".utf8)).events == [Event(data: "1")])
    }

    @Test func anEventOverTheCapIsSkippedAndTheNextIsRead() {
        let cap = SSEEventSplitter.maximumEventBytes
        var splitter = SSEEventSplitter()
        var recorder = Recorder()
        let atCap = "data: " + String(repeating: "a", count: cap) + "\n\n"
        let overCap = "data: " + String(repeating: "b", count: cap / 2) + "\ndata: " + String(repeating: "b", count: cap / 2) + "\n\n"
        for part in [atCap, overCap, "data: next\n\n"] {
            var bytes = Array(part.utf8)
            bytes.withUnsafeMutableBytes { splitter.split(UnsafeRawBufferPointer($0), into: &recorder) }
        }
        #expect(recorder.events.map(\.data.count) == [cap, 4])
        #expect(recorder.oversized == 1)
    }

    /// Its state is a few inline values (`BitwiseCopyable`: no reference, so no buffer).
    @Test func theSplitterHoldsNoEvent() {
        func inline<T: BitwiseCopyable>(_: T.Type) -> Int { MemoryLayout<T>.size }
        #expect(inline(SSEEventSplitter.self) < 256)
    }
}
