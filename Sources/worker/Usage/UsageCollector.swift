#if canImport(Glibc)
import Glibc
#endif

/// Connects the event splitter and the JSON scanner to the tally.
struct UsageCollector: SSEEventSink {
    var scanner = UsageJSONScanner()
    var tally = UsageTally()
    var skippedEvents = 0
    /// The current event is a content delta by its `event` name: its data is not read.
    private var namedDelta = false
    /// How the last event the prefilter passed began and ended (`EventTemplate`).
    private var template = EventTemplate()

    /// For a new response, in place.
    mutating func reset() {
        resetDocument()
        skippedEvents = 0
        namedDelta = false
        template.clear()
    }

    /// For a new response after a JSON body, which used only the scanner and the tally.
    @inline(__always)
    mutating func resetDocument() {
        scanner.reset()
        tally.reset()
    }

    /// Events named as content deltas (`content_block_delta`, `response.….delta`: most of an
    /// Anthropic or Responses API stream) are counted by name, their data not scanned: such events
    /// carry no usage and no model.
    mutating func eventDataBegins(type: borrowing SSEEventSplitter.EventType) -> Bool {
        guard type.count > 0 else { return true }
        let kind = UsageTally.EventKind(type)
        namedDelta = kind == .contentBlockDelta || kind == .responseDelta
        return !namedDelta
    }

    /// An event whole in one slice: read here when `UsageEventPrefilter` shows that the scanner
    /// would find nothing in it but content deltas.
    mutating func wholeEvent(_ event: SSEWholeEvent, type: borrowing SSEEventSplitter.EventType) -> Bool {
        let data = event.data
        let kind = UsageTally.EventKind(type)
        if kind == .contentBlockDelta || kind == .responseDelta {
            // Unread, but a CR alone in its data line would end the line: the splitter's to read.
            guard let base = data.baseAddress, memchr(base, 0x0D, data.count) != nil else {
                tally.addDelta()
                return true
            }
            return false
        }
        let start = template.start(in: data)
        var marks = UsageEventPrefilter.Marks()
        guard
            let deltas = UsageEventPrefilter.contentDeltas(
                data, from: start, modelKnown: tally.knowsModel, countsDeltas: kind == .other, marks: &marks)
        else { return false }
        if let model = marks.model { tally.name(UnsafeRawBufferPointer(rebasing: data[model])) }
        template.keep(event, from: start, marks: marks)
        tally.addDeltas(deltas)
        return true
    }

    /// The last event the prefilter passed, but for its delta object (`EventTemplate`).
    mutating func repeatedEvent(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        // No `event` line has begun (the splitter asks only then): the deltas of chunks count.
        guard let (end, deltas) = template.repeated(bytes, from: start, modelKnown: tally.knowsModel) else { return nil }
        tally.addDeltas(deltas)
        return end
    }

    mutating func eventData(_ bytes: UnsafeRawBufferPointer) {
        scanner.scan(bytes)
    }

    mutating func eventEnded(type: borrowing SSEEventSplitter.EventType) {
        if namedDelta {
            tally.addDelta()
            namedDelta = false
            return
        }
        if scanner.finish() { scanner.report(to: &tally, eventKind: UsageTally.EventKind(type)) }
        scanner.reset()
    }

    mutating func eventOversized() {
        skippedEvents &+= 1
        scanner.reset()
    }

    /// The end of a JSON body.
    mutating func bodyEnded() {
        if scanner.finish() { scanner.report(to: &tally, eventKind: .other) }
    }
}
