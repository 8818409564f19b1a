/// Follows a chunked body (RFC 9112 §7.1) to find its end and count its payload, without
/// changing a byte: chunk sizes, extensions and trailer fields go to the client as received.
struct ChunkedScanner {
    private enum State {
        case size(digits: Int, value: Int)
        /// After the size: extensions or whitespace until CR.
        case sizeTail
        case sizeLF
        case data(remaining: Int)
        case dataCR
        case dataLF
        /// At the start of a trailer line (or of the final empty line).
        case trailerLineStart
        case trailerLine
        case trailerLF
        case finalLF
        case finished
    }

    private var state = State.size(digits: 0, value: 0)
    private var lastChunk = false

    var isFinished: Bool { if case .finished = state { return true } else { return false } }

    /// Scans bytes until the body ends or they run out: (bytes that belong to the body, payload bytes among them).
    mutating func scan(_ bytes: UnsafeRawBufferPointer) throws(UpstreamResponseReader.ResponseError) -> (Int, Int) {
        typealias Failure = UpstreamResponseReader.ResponseError
        var i = 0
        var payload = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            switch state {
            case .size(let digits, let value):
                if let d = Self.hexValue(b) {
                    guard digits < 15 else { throw Failure(reason: "chunk size too large") }
                    state = .size(digits: digits + 1, value: value << 4 | d)
                } else {
                    guard digits > 0, b == UInt8(ascii: ";") || b == UInt8(ascii: " ") || b == UInt8(ascii: "\t")
                        || b == UInt8(ascii: "\r") else { throw Failure(reason: "malformed chunk size") }
                    lastChunk = value == 0
                    state = .sizeTail
                    pendingSize = value
                    continue  // re-read this byte as part of the tail
                }
            case .sizeTail:
                if b == UInt8(ascii: "\r") { state = .sizeLF }
                else if b == UInt8(ascii: "\n") || !ASCIIBytes.isFieldValueByte(b) {
                    throw Failure(reason: "malformed chunk line")
                }
            case .sizeLF:
                guard b == UInt8(ascii: "\n") else { throw Failure(reason: "malformed chunk line") }
                state = lastChunk ? .trailerLineStart : .data(remaining: pendingSize)
            case .data(let remaining):
                let take = min(remaining, n - i)
                payload += take
                i += take
                state = take == remaining ? .dataCR : .data(remaining: remaining - take)
                continue
            case .dataCR:
                guard b == UInt8(ascii: "\r") else { throw Failure(reason: "chunk data not followed by CRLF") }
                state = .dataLF
            case .dataLF:
                guard b == UInt8(ascii: "\n") else { throw Failure(reason: "chunk data not followed by CRLF") }
                state = .size(digits: 0, value: 0)
            case .trailerLineStart:
                if b == UInt8(ascii: "\r") { state = .finalLF }
                else if ASCIIBytes.isFieldValueByte(b) { state = .trailerLine }
                else { throw Failure(reason: "malformed trailer") }
            case .trailerLine:
                if b == UInt8(ascii: "\r") { state = .trailerLF }
                else if !ASCIIBytes.isFieldValueByte(b) { throw Failure(reason: "malformed trailer") }
            case .trailerLF:
                guard b == UInt8(ascii: "\n") else { throw Failure(reason: "malformed trailer") }
                state = .trailerLineStart
            case .finalLF:
                guard b == UInt8(ascii: "\n") else { throw Failure(reason: "malformed chunked body end") }
                state = .finished
                return (i + 1, payload)
            case .finished:
                return (i, payload)
            }
            i += 1
        }
        return (i, payload)
    }

    private var pendingSize = 0

    private static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(b - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}
