import NIOCore

/// The response half of `stream_usage: inject` (docs/usage.md "stream_usage: inject"): the events
/// of a `2xx` `text/event-stream` without a content coding go to the client as the provider
/// would have sent them without `include_usage` — the usage-only chunk (`choices: []` and a
/// `usage` object) is dropped with its blank line, and the `"usage":null` member that
/// `include_usage` adds to every other chunk is removed. The usage reader has read them already:
/// it sits on the tap, before this filter.
///
/// Events are held until their blank line (WHATWG: LF, CRLF or CR), then written or dropped; an
/// event whole in one read goes out in that read, so a client waits for nothing it could have
/// dispatched. An event held past `maximumHeldBytes` (1 MiB, the reader's cap) is written as it
/// is, and so is the rest of it. One per connection, started afresh by each response.
final class UsageChunkFilter: ResponseBodyFilter {
    static let maximumHeldBytes = 1 << 20

    /// The current event's bytes so far, when it began in an earlier read.
    private var held: [UInt8] = []
    /// At the start of a line (a line terminator here is a blank line: the event ends).
    private var lineStart = true
    /// The last byte ended a line with CR: an LF right after it belongs to it.
    private var afterCR = false
    /// A blank line made of a CR: the event ends after it, and after an LF that follows.
    private var blankCR = false
    /// The current event passed `maximumHeldBytes`: written as it comes until its end.
    private var passing = false

    func accepts(status: UInt, head: ByteBuffer, fields: ResponseFacts.Fields) -> Bool {
        held.removeAll(keepingCapacity: true)
        lineStart = true
        afterCR = false
        blankCR = false
        passing = false
        guard (200..<300).contains(status), let type = fields.contentType else { return false }
        return head.withUnsafeReadableBytes { bytes in
            // A coded body is not decoded and coded again: it is relayed as is (docs/usage.md).
            let coding = UsageReader.ContentCoding(headerValue: fields.contentEncoding.map { UnsafeRawBufferPointer(rebasing: bytes[$0]) })
            return coding == .identity && UsageReader.MediaType(headerValue: UnsafeRawBufferPointer(rebasing: bytes[type])) == .eventStream
        }
    }

    func filter(_ payload: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        var eventStart = 0
        var i = 0
        let n = payload.count
        while i < n {
            let b = payload[i]
            if blankCR {
                blankCR = false
                let end = b == 0x0A ? i + 1 : i
                eventEnded(payload, from: eventStart, to: end, into: &out)
                eventStart = end
                i = end
                continue
            }
            if afterCR {
                afterCR = false
                if b == 0x0A {
                    i += 1
                    continue
                }
            }
            switch b {
            case 0x0A:
                if lineStart {
                    eventEnded(payload, from: eventStart, to: i + 1, into: &out)
                    eventStart = i + 1
                }
                lineStart = true
            case 0x0D:
                if lineStart { blankCR = true } else { afterCR = true }
                lineStart = true
            default:
                lineStart = false
            }
            i += 1
        }
        keep(UnsafeRawBufferPointer(rebasing: payload[eventStart..<n]), into: &out)
    }

    func finish(into out: inout ByteBuffer) {
        // An event the stream ended inside: the client gets its bytes, as from the provider.
        out.writeBytes(held)
        held.removeAll(keepingCapacity: true)
        blankCR = false
    }

    /// The rest of a read, inside an event: held, or written when the event is too long to hold.
    private func keep(_ bytes: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        guard !bytes.isEmpty else { return }
        if passing {
            out.writeBytes(bytes)
        } else if held.count + bytes.count > Self.maximumHeldBytes {
            out.writeBytes(held)
            out.writeBytes(bytes)
            held.removeAll(keepingCapacity: false)
            passing = true
        } else {
            held.append(contentsOf: bytes)
        }
    }

    /// An event ends at `end` of `payload` (it began at `start`, after what is held).
    private func eventEnded(_ payload: UnsafeRawBufferPointer, from start: Int, to end: Int, into out: inout ByteBuffer) {
        let tail = UnsafeRawBufferPointer(rebasing: payload[start..<end])
        if passing {
            passing = false
            out.writeBytes(tail)
            return
        }
        if held.isEmpty { return Self.write(event: tail, into: &out) }
        held.append(contentsOf: tail)
        held.withUnsafeBytes { Self.write(event: $0, into: &out) }
        held.removeAll(keepingCapacity: held.count <= 64 * 1024)
    }

    /// One whole event (its blank line included) as the client gets it.
    static func write(event: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        switch UsageChunk.classify(event) {
        case .usageOnly: return
        case .other: out.writeBytes(event)
        case .nullUsage(let member):
            out.writeBytes(UnsafeRawBufferPointer(rebasing: event[..<member.lowerBound]))
            out.writeBytes(UnsafeRawBufferPointer(rebasing: event[member.upperBound...]))
        }
    }
}
