#if canImport(Glibc)
import Glibc
#endif

// The splitter's fast path (`docs/usage.md`, "Cost"): an event that lies whole in the slice being
// read, as nearly every event of a stream does, is found with memchr and offered to the sink at
// once, which can then skip it without the JSON scanner (`UsageEventPrefilter`). Anything this
// path does not handle simply (several `data` lines, a CR alone ending a line, an `event` line
// after the data, an event over the cap, or one the slice does not hold whole) is left, untouched,
// to the byte-by-byte path, which gives the same result.

extension SSEEventSplitter {
    /// What `wholeEvent` did with the event at a line's start.
    enum WholeEventOutcome {
        /// The event was whole and the sink dealt with it (or it had no data): it ends before this
        /// index.
        case read(Int)
        /// For the ordinary path (nothing changed).
        case ordinary
        /// The slice ends inside the event: it holds no blank line from the event's start
        /// (nothing changed).
        case incomplete
    }

    /// At the start of an event's first line: whether the event is whole in `bytes` and the sink
    /// dealt with it; changes nothing unless it was read.
    mutating func wholeEvent<Sink: SSEEventSink>(
        _ bytes: UnsafeRawBufferPointer, from start: Int, into sink: inout Sink
    ) -> WholeEventOutcome {
        if Self.isData(bytes, at: start) {
            switch dataLineEvent(bytes, from: start, into: &sink) {
            case .read(let next): return .read(next)
            case .declined: return .ordinary
            case .incomplete: return Self.noCR(bytes, from: start) ? .incomplete : .ordinary
            case .otherShape: break
            }
        }
        guard let base = bytes.baseAddress else { return .ordinary }
        let n = bytes.count
        var i = start
        var data: Range<Int>?
        var type = EventType()
        while true {
            let lf: Int
            if i < n && bytes[i] == 0x0A {
                lf = i  // a blank line, as after nearly every data line
            } else {
                guard let found = memchr(base + i, 0x0A, n &- i) else {
                    // No line here was blank; without a CR (which could end one alone), no
                    // blank line follows in the slice.
                    return Self.noCR(bytes, from: start) ? .incomplete : .ordinary
                }
                lf = base.distance(to: UnsafeRawPointer(found))
            }
            var end = lf
            if end > i && bytes[end &- 1] == 0x0D { end &-= 1 }
            // A CR alone ends a line. A data line's is left to the sink's prefilter, which finds
            // any CR (`UsageEventPrefilter`) and then has the event read the ordinary way.
            if end > i && !Self.isData(bytes, at: i), memchr(base + i, 0x0D, end &- i) != nil { return .ordinary }
            if end == i {
                if let data {
                    let event = SSEWholeEvent(data: UnsafeRawBufferPointer(rebasing: bytes[data]))
                    guard sink.wholeEvent(event, type: type) else { return .ordinary }
                }
                return .read(lf &+ 1)
            }
            guard Self.field(bytes, i..<end, data: &data, type: &type) else { return .ordinary }
            i = lf &+ 1
        }
    }

    @inline(__always)
    private static func noCR(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Bool {
        start >= bytes.count || memchr(bytes.baseAddress! + start, 0x0D, bytes.count &- start) == nil
    }

    private enum DataLineOutcome {
        /// The sink dealt with the event, which ends before this index.
        case read(Int)
        /// The sink left it to the ordinary path.
        case declined
        /// The slice ends in the data line or its blank line: no LF but its last byte, if any.
        case incomplete
        /// Not a data line and a blank line whole in the slice: for the general path.
        case otherShape
    }

    /// The commonest event, a `data` line and a blank line (LF or CRLF), at `start` (a `data:`
    /// line): handed to the sink with its bytes.
    @inline(__always)
    private mutating func dataLineEvent<Sink: SSEEventSink>(
        _ bytes: UnsafeRawBufferPointer, from start: Int, into sink: inout Sink
    ) -> DataLineOutcome {
        guard let base = bytes.baseAddress else { return .otherShape }
        let n = bytes.count
        var value = start &+ 5
        if value < n && bytes[value] == 0x20 { value &+= 1 }
        guard value < n else { return .incomplete }
        guard let found = memchr(base + value, 0x0A, n &- value) else { return .incomplete }
        let lf = base.distance(to: UnsafeRawPointer(found))
        let end = bytes[lf &- 1] == 0x0D && lf &- 1 >= value ? lf &- 1 : lf
        let eventEnd: Int
        if lf &+ 1 < n && bytes[lf &+ 1] == 0x0A {
            eventEnd = lf &+ 2
        } else if lf &+ 2 < n && bytes[lf &+ 1] == 0x0D && bytes[lf &+ 2] == 0x0A {
            eventEnd = lf &+ 3
        } else if lf &+ 1 == n {
            return .incomplete
        } else {
            return .otherShape
        }
        guard end &- value <= Self.maximumEventBytes else { return .otherShape }
        let event = SSEWholeEvent(
            data: UnsafeRawBufferPointer(rebasing: bytes[value..<end]),
            bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<eventEnd]), dataOffset: value &- start)
        return sink.wholeEvent(event, type: eventType) ? .read(eventEnd) : .declined
    }

    /// The line at `i` is a `data` field with a colon (the one whose CR the prefilter looks for).
    @inline(__always)
    private static func isData(_ bytes: UnsafeRawBufferPointer, at i: Int) -> Bool {
        i &+ 5 <= bytes.count && bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self) == 0x6174_6164
            && bytes[i &+ 4] == UInt8(ascii: ":")
    }

    /// One line of the event, not blank: false when the ordinary path must read the event.
    private static func field(
        _ bytes: UnsafeRawBufferPointer, _ line: Range<Int>, data: inout Range<Int>?, type: inout EventType
    ) -> Bool {
        if bytes[line.lowerBound] == UInt8(ascii: ":") { return true }  // a comment
        var colon = line.lowerBound
        while colon < line.upperBound && bytes[colon] != UInt8(ascii: ":") && colon &- line.lowerBound < 6 {
            colon &+= 1
        }
        let nameLength = colon &- line.lowerBound
        var value = min(colon &+ 1, line.upperBound)..<line.upperBound
        if value.lowerBound < value.upperBound && bytes[value.lowerBound] == 0x20 {
            value = (value.lowerBound &+ 1)..<value.upperBound
        }
        let atEnd = colon == line.upperBound || bytes[colon] == UInt8(ascii: ":")
        // Field names are case-sensitive (WHATWG): compared as they are.
        let head = nameLength >= 4 ? bytes.loadUnaligned(fromByteOffset: line.lowerBound, as: UInt32.self) : 0
        if nameLength == 4 && atEnd && head == 0x6174_6164 {  // data
            guard data == nil, value.count <= maximumEventBytes else { return false }
            data = value
        } else if nameLength == 5 && atEnd && head == 0x6E65_7665 && bytes[line.lowerBound &+ 4] == 0x74 {  // event
            guard data == nil else { return false }
            type.begin()
            type.append(UnsafeRawBufferPointer(rebasing: bytes[value]))
        }
        return true
    }
}
