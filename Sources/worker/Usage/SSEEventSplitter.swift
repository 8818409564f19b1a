#if canImport(Glibc)
import Glibc
#endif

/// What an `SSEEventSplitter` hands on, in stream order.
protocol SSEEventSink {
    /// The first `data` line of an event begins; `type` is its `event` name so far. false: the
    /// sink has no use for this event's data, which is then not handed on (`eventEnded` still
    /// comes).
    mutating func eventDataBegins(type: borrowing SSEEventSplitter.EventType) -> Bool
    /// Bytes of the current event's data: its `data` lines' values joined with LF, in pieces of
    /// any size (the data is streamed, not held).
    mutating func eventData(_ bytes: UnsafeRawBufferPointer)
    /// The whole event lies in one slice, with one `data` line and its last `event` name
    /// (`type`): true when the sink has dealt with it, so that the splitter moves past it; false
    /// and the splitter hands it on the ordinary way (`eventDataBegins`…`eventEnded`).
    mutating func wholeEvent(_ event: SSEWholeEvent, type: borrowing SSEEventSplitter.EventType) -> Bool
    /// At the start of a line, no event begun: the index after the blank line that ends the event
    /// beginning at `start`, when the sink knows it for a repeat of an event it was handed whole
    /// (`SSEWholeEvent.bytes`) and has dealt with it; nil to read it the ordinary way.
    mutating func repeatedEvent(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int?
    /// A blank line ended an event with data (WHATWG "dispatch the event"); `type` is its last
    /// `event` field, unset when it had none.
    mutating func eventEnded(type: borrowing SSEEventSplitter.EventType)
    /// The current event's data passed `maximumEventBytes`: what was handed on of it is to be
    /// dropped, and nothing more of it comes; the stream goes on with the next event.
    mutating func eventOversized()
}

extension SSEEventSink {
    /// By default every event is handed on the ordinary way.
    mutating func wholeEvent(_ event: SSEWholeEvent, type: borrowing SSEEventSplitter.EventType) -> Bool {
        false
    }

    mutating func repeatedEvent(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? { nil }
}

/// An event whole in the slice being split, with one `data` line.
struct SSEWholeEvent {
    /// The `data` line's value.
    var data: UnsafeRawBufferPointer
    /// The event's bytes, from its first line to the end of the blank line that ends it, when it
    /// is its `data` line and that blank line alone; nil otherwise.
    var bytes: UnsafeRawBufferPointer?
    /// Where `data` begins in `bytes`.
    var dataOffset = 0
}

/// Splits a `text/event-stream` body (WHATWG HTML, "Interpreting an event stream") fed in slices
/// of any size: lines end with CRLF, LF or CR; a blank line ends an event; `data` lines are joined
/// with LF; `event` names the event; a line starting with `:` is a comment; a line without a colon
/// is a field with an empty value; one space after the colon is dropped; a leading BOM is skipped;
/// an event the stream ends inside is not dispatched (as in EventSource and the SDKs).
///
/// It holds no event: data bytes go to the sink as they arrive (the JSON scanner reads them in
/// place), so the only state is the line's position and the `event` name. An event whose data
/// passes `maximumEventBytes` (1 MiB, spec §2) is skipped and reported, and the next one is read
/// as usual.
struct SSEEventSplitter: BitwiseCopyable {
    static let maximumEventBytes = 1 << 20

    typealias EventType = KeptBytes<64>

    private enum LineState: UInt8 {
        /// At the start of a line: a blank line, a comment or a field name comes.
        case start
        case name
        /// After the colon: one space is dropped.
        case valueStart
        case value
        /// A comment, or a field the reader does not use.
        case ignored
    }

    private enum Field: UInt8 { case data, event, other }

    private var line = LineState.start
    /// The previous byte was CR: an LF right after it ends the same line.
    private var afterCR = false
    /// Bytes of a leading BOM (EF BB BF) matched so far; -1 once past the stream's start.
    private var bomMatched = 0
    /// The field name so far, when it can still be `data` or `event`.
    private var name: UInt64 = 0
    private var nameLength = 0
    private var field = Field.other
    private(set) var eventType = EventType()
    private var dataLines = 0
    private var eventBytes = 0
    private var oversized = false
    /// The sink reads this event's data.
    private var forwarding = true

    /// For a new stream, in place (what a new value is, without building and copying one).
    mutating func reset() {
        line = .start
        afterCR = false
        bomMatched = 0
        name = 0
        nameLength = 0
        field = .other
        eventType.clear()
        dataLines = 0
        eventBytes = 0
        oversized = false
        forwarding = true
    }

    /// Splits `bytes`, the stream's next slice, and returns where it stopped: `bytes.count`, or,
    /// when `holding` is at least the bytes left, the start of an event that the slice does not
    /// hold whole, with nothing of it read (`SSEEventCarry` keeps those bytes and feeds them again
    /// with the next slice's, so that the event is read whole; the state is as before them).
    @discardableResult
    mutating func split<Sink: SSEEventSink>(
        _ bytes: UnsafeRawBufferPointer, into sink: inout Sink, holding: Int = 0
    ) -> Int {
        var i = 0
        let n = bytes.count
        if bomMatched >= 0 { i = skipBOM(bytes) }
        while i < n {
            let b = bytes[i]
            if afterCR {
                afterCR = false
                if b == 0x0A { i &+= 1; continue }
            }
            switch line {
            case .start:
                if dataLines == 0, !eventType.isSet {
                    if let next = sink.repeatedEvent(bytes, from: i) {
                        i = next
                        continue
                    }
                    switch wholeEvent(bytes, from: i, into: &sink) {
                    case .read(let next):
                        i = next
                        continue
                    case .incomplete:
                        if n &- i <= holding { return i }
                    case .ordinary:
                        break
                    }
                }
                if b == 0x0A || b == 0x0D {
                    endEvent(into: &sink)
                    afterCR = b == 0x0D
                    i &+= 1
                    continue
                }
                if b == UInt8(ascii: ":") {
                    line = .ignored
                    i &+= 1
                    continue
                }
                name = 0
                nameLength = 0
                line = .name
            case .name:
                i = scanName(bytes, from: i, into: &sink)
            case .valueStart:
                if b == 0x20 { i &+= 1 }
                line = .value
            case .value:
                i = scanValue(bytes, from: i, into: &sink)
            case .ignored:
                i = Self.lineEnd(bytes, from: i)
                if i < n { endLine(bytes[i]); i &+= 1 }
            }
        }
        return n
    }

    /// Where the first blank line from `start` begins (its first byte), `bytes.count` when there
    /// is none: one begins at `start` when it is a line's start (`afterLineEnd`), or after a
    /// line's end (LF, CR alone, CRLF), so the bytes hold `LF LF`, `LF CR` or `CR CR` there.
    static func blankLine(_ bytes: UnsafeRawBufferPointer, from start: Int, afterLineEnd: Bool) -> Int {
        let n = bytes.count
        guard start < n, let base = bytes.baseAddress else { return n }
        if afterLineEnd && (bytes[start] == 0x0A || bytes[start] == 0x0D) { return start }
        var i = start
        var first = n
        while i < n, let found = memchr(base + i, 0x0A, n &- i) {
            let lf = base.distance(to: UnsafeRawPointer(found))
            if lf &+ 1 < n && (bytes[lf &+ 1] == 0x0A || bytes[lf &+ 1] == 0x0D) {
                first = lf &+ 1
                break
            }
            i = lf &+ 1
        }
        // A CR alone ends a line too (rare: streams end lines with LF or CRLF).
        i = start
        while i < first, let found = memchr(base + i, 0x0D, first &- i) {
            let cr = base.distance(to: UnsafeRawPointer(found))
            if cr &+ 1 < n && bytes[cr &+ 1] == 0x0D { return cr &+ 1 }
            i = cr &+ 1
        }
        return first
    }

    private static func lineEnd(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int {
        UsageByteScan.lineEnd(bytes, from: from)
    }

    private mutating func endLine(_ terminator: UInt8) {
        line = .start
        afterCR = terminator == 0x0D
    }

    private mutating func skipBOM(_ bytes: UnsafeRawBufferPointer) -> Int {
        let bom: (UInt8, UInt8, UInt8) = (0xEF, 0xBB, 0xBF)
        var i = 0
        while i < bytes.count && bomMatched >= 0 {
            let expected = bomMatched == 0 ? bom.0 : bomMatched == 1 ? bom.1 : bom.2
            guard bytes[i] == expected else {
                // Not a BOM: bytes matched so far began a field name no field has.
                if bomMatched > 0 { line = .name; nameLength = 8 }
                bomMatched = -1
                break
            }
            i &+= 1
            bomMatched &+= 1
            if bomMatched == 3 { bomMatched = -1 }
        }
        return i
    }

    private mutating func scanName(_ bytes: UnsafeRawBufferPointer, from start: Int, into sink: inout some SSEEventSink) -> Int {
        var i = start
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b == UInt8(ascii: ":") || b == 0x0A || b == 0x0D { break }
            if nameLength < 8 { name = name << 8 | UInt64(b) }
            nameLength &+= 1
            i &+= 1
        }
        guard i < n else { return i }
        field = nameLength == 4 && name == Self.data ? .data : nameLength == 5 && name == Self.event ? .event : .other
        beginValue(into: &sink)
        if bytes[i] == UInt8(ascii: ":") {
            line = field == .other ? .ignored : .valueStart
        } else {
            endLine(bytes[i])  // a field without a colon: its value is empty
        }
        return i &+ 1
    }

    private static let data: UInt64 = 0x6461_7461  // "data"
    private static let event: UInt64 = 0x65_7665_6E74  // "event"

    private mutating func beginValue(into sink: inout some SSEEventSink) {
        switch field {
        case .data:
            if dataLines > 0 {
                withUnsafeBytes(of: UInt8(0x0A)) { appendData($0, into: &sink) }
            } else {
                forwarding = sink.eventDataBegins(type: eventType)
            }
            dataLines &+= 1
        case .event:
            eventType.begin()
        case .other:
            break
        }
    }

    private mutating func scanValue(_ bytes: UnsafeRawBufferPointer, from start: Int, into sink: inout some SSEEventSink) -> Int {
        let end = Self.lineEnd(bytes, from: start)
        if end > start {
            let value = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
            switch field {
            case .data: appendData(value, into: &sink)
            case .event: eventType.append(value)
            case .other: break
            }
        }
        guard end < bytes.count else { return end }
        endLine(bytes[end])
        return end &+ 1
    }

    private mutating func appendData(_ bytes: UnsafeRawBufferPointer, into sink: inout some SSEEventSink) {
        guard !oversized else { return }
        eventBytes &+= bytes.count
        guard eventBytes <= Self.maximumEventBytes else {
            oversized = true
            sink.eventOversized()
            return
        }
        if forwarding { sink.eventData(bytes) }
    }

    /// A blank line: the event ends, and is handed on when it had data.
    private mutating func endEvent(into sink: inout some SSEEventSink) {
        if dataLines > 0 && !oversized { sink.eventEnded(type: eventType) }
        dataLines = 0
        eventBytes = 0
        oversized = false
        forwarding = true
        eventType.clear()
    }
}
