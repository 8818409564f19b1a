import NIOCore

/// The chunked transfer coding (RFC 9112 §7.1), both ways, for both sides of the relay: the
/// request parser reads a client's chunked body with it (and hands on the data), the response
/// reader follows an upstream's chunked body with it (and passes the bytes on as framed). The
/// encoding half, `ChunkedFraming`, is below.
///
/// A byte state machine: it keeps no bytes, so a body split anywhere across reads is scanned once,
/// without copying or waiting for a line to be whole, and what it reports are ranges of the bytes
/// it was given. Each side keeps its own strictness (`Rules`). Small (23 bytes), since it lives in
/// the request parser and the response reader, which are copied as values.
struct ChunkedScanner {
    /// What one side accepts beyond the common grammar (hex size, CRLF after every line and every
    /// chunk's data; a bare LF, a bare CR or a control byte in a line is refused on both).
    struct Rules: Equatable {
        /// Longest chunk-size line (size and extensions, without CRLF).
        var maxLineBytes: Int32
        /// Longest trailer section (its lines with their CRLFs, not the final empty line).
        var maxTrailerBytes: Int32
        /// The request side: extensions only after `;` (RFC 9112 §7.1.1, with BWS before it), and
        /// trailer lines `name: value` with a token name, checked like header fields. Off, any
        /// field-value bytes may follow the size and make a trailer line (the response side passes
        /// them on unread).
        var checksGrammar: Bool

        /// Limits are at most `Int32.max` (2 GiB; the response side's "no limit"), to keep the
        /// scanner small.
        init(checksGrammar: Bool, maxLineBytes: Int, maxTrailerBytes: Int) {
            self.maxLineBytes = Int32(clamping: maxLineBytes)
            self.maxTrailerBytes = Int32(clamping: maxTrailerBytes)
            self.checksGrammar = checksGrammar
        }

        /// A client's request body: the grammar checked and every line bounded, since whatever
        /// the proxy accepts is re-framed for the upstream (docs/routing-and-forwarding.md).
        static func request(maxTrailerBytes: Int) -> Rules {
            Rules(checksGrammar: true, maxLineBytes: 4096, maxTrailerBytes: maxTrailerBytes)
        }

        /// An upstream's response body: relayed as framed, so only the framing is followed.
        static let response = Rules(checksGrammar: false, maxLineBytes: .max, maxTrailerBytes: .max)
    }

    /// What `next` found.
    enum Step: Equatable {
        /// Chunk data: a range of the bytes given, the framing around it excluded.
        case data(Range<Int>)
        /// The bytes ran out inside the framing; all of them were scanned.
        case needsMore
        /// The body ended (after its trailer section's empty line).
        case finished
    }

    private enum State: UInt8 {
        case size
        /// Strict rules: whitespace after the size, before `;`.
        case sizeWhitespace
        case extensions
        case sizeLF
        /// `size` is the count of the chunk's data bytes still to come.
        case data
        case dataCR
        case dataLF
        /// At the start of a trailer line (or of the final empty line).
        case trailerLineStart
        case trailerName
        case trailerValue
        case trailerLF
        case finalLF
        case finished
    }

    /// The chunk size read so far (during the data, what is left of it).
    private var size = 0
    /// Bytes of the current chunk-size line (during the size, its digits), or of the trailer section.
    private var count: Int32 = 0
    private let rules: Rules
    private var state = State.size
    /// The size's significant digits: leading zeros are not, so however many of them come the
    /// value cannot overflow.
    private var significantDigits: UInt8 = 0

    init(rules: Rules) { self.rules = rules }

    var isFinished: Bool { if case .finished = state { return true } else { return false } }

    /// Scans `bytes` from `index` to the end of the next run of chunk data, to the body's end, or
    /// to the end of the bytes, and moves `index` past what it scanned (on `.needsMore` that is
    /// every byte; on `.finished`, the body's last byte: what follows is not the body's). A thrown
    /// error leaves the scanner where it failed; nothing is read after it.
    mutating func next(_ bytes: UnsafeRawBufferPointer, at index: inout Int) throws(ChunkedError) -> Step {
        let n = bytes.count
        var i = index
        defer { index = i }
        while i < n {
            let b = bytes[i]
            switch state {
            case .size:
                if let digit = Self.hexValue(b) {
                    if size != 0 || digit != 0 {
                        significantDigits &+= 1
                        guard significantDigits <= 15 else { throw .sizeTooLarge }
                    }
                    size = size << 4 | Int(digit)
                    try countLineByte()
                } else {
                    guard count > 0 else { throw .malformedSize }
                    switch b {
                    case Self.cr: state = .sizeLF
                    case Self.semicolon: state = .extensions
                    case Self.space, Self.tab: state = rules.checksGrammar ? .sizeWhitespace : .extensions
                    default: throw .malformedSize
                    }
                    if b != Self.cr { try countLineByte() }
                }
            case .sizeWhitespace:
                switch b {
                case Self.space, Self.tab: break
                case Self.semicolon: state = .extensions
                default: throw .malformedLine
                }
                try countLineByte()
            case .extensions:
                if b == Self.cr {
                    state = .sizeLF
                } else {
                    guard ASCIIBytes.isFieldValueByte(b) else { throw .malformedLine }
                    try countLineByte()
                }
            case .sizeLF:
                guard b == Self.lf else { throw .malformedLine }
                state = size == 0 ? .trailerLineStart : .data
                count = 0
            case .data:
                let take = min(size, n &- i)
                size &-= take
                if size == 0 { state = .dataCR }
                i &+= take
                return .data(i &- take..<i)
            case .dataCR:
                guard b == Self.cr else { throw .dataNotFollowedByCRLF }
                state = .dataLF
            case .dataLF:
                guard b == Self.lf else { throw .dataNotFollowedByCRLF }
                state = .size
                significantDigits = 0
            case .trailerLineStart:
                if b == Self.cr {
                    state = .finalLF
                    break
                }
                // Checked: a field name first. Not: any field-value bytes make the line.
                guard rules.checksGrammar ? ASCIIBytes.isTokenByte(b) : ASCIIBytes.isFieldValueByte(b) else {
                    throw .malformedTrailer
                }
                state = rules.checksGrammar ? .trailerName : .trailerValue
                try countTrailerByte()
            case .trailerName:
                if b == Self.colon {
                    state = .trailerValue
                } else {
                    guard ASCIIBytes.isTokenByte(b) else { throw .malformedTrailer }
                }
                try countTrailerByte()
            case .trailerValue:
                if b == Self.cr {
                    state = .trailerLF
                } else {
                    guard ASCIIBytes.isFieldValueByte(b) else { throw .malformedTrailer }
                }
                try countTrailerByte()
            case .trailerLF:
                guard b == Self.lf else { throw .malformedTrailer }
                state = .trailerLineStart
                try countTrailerByte()
            case .finalLF:
                guard b == Self.lf else { throw .malformedEnd }
                state = .finished
                i &+= 1
                return .finished
            case .finished:
                return .finished
            }
            i &+= 1
        }
        return isFinished ? .finished : .needsMore
    }

    @inline(__always)
    private mutating func countLineByte() throws(ChunkedError) {
        guard count < rules.maxLineBytes else { throw .lineTooLong }
        count &+= 1
    }

    @inline(__always)
    private mutating func countTrailerByte() throws(ChunkedError) {
        guard count < rules.maxTrailerBytes else { throw .trailersTooLarge }
        count &+= 1
    }

    @inline(__always)
    private static func hexValue(_ b: UInt8) -> UInt8? {
        if b &- UInt8(ascii: "0") < 10 { return b &- UInt8(ascii: "0") }
        let lower = b | 0x20
        if lower &- UInt8(ascii: "a") < 6 { return lower &- UInt8(ascii: "a") &+ 10 }
        return nil
    }

    private static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t"), semicolon = UInt8(ascii: ";"), colon = UInt8(ascii: ":")
}

/// Why a chunked body cannot be read. The response side reports `reason` (its body is then cut);
/// the request side answers 400.
enum ChunkedError: Error, Equatable {
    case sizeTooLarge, malformedSize, malformedLine, lineTooLong, dataNotFollowedByCRLF
    case malformedTrailer, trailersTooLarge, malformedEnd

    var reason: String {
        switch self {
        case .sizeTooLarge: return "chunk size too large"
        case .malformedSize: return "malformed chunk size"
        case .malformedLine: return "malformed chunk line"
        case .lineTooLong: return "chunk line too long"
        case .dataNotFollowedByCRLF: return "chunk data not followed by CRLF"
        case .malformedTrailer: return "malformed trailer"
        case .trailersTooLarge: return "trailer section too large"
        case .malformedEnd: return "malformed chunked body end"
        }
    }
}

/// The encoding half of the codec: the framing this side writes around bytes it chunks itself
/// (a response body that ends at the upstream's close; a request body, re-chunked for the upstream).
enum ChunkedFraming {
    /// Appends `size` in lower-case hex and CRLF: the line before a chunk's data (which must be
    /// followed by `crlf`). No `String` is made.
    static func writeSizeLine(_ size: Int, into out: inout ByteBuffer) {
        precondition(size > 0, "a chunk of no bytes would end the body")
        let digits = (Int.bitWidth &- size.leadingZeroBitCount &+ 3) / 4
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: digits + 2) { p in
            var rest = size
            for k in stride(from: digits - 1, through: 0, by: -1) {
                let d = UInt8(truncatingIfNeeded: rest & 15)
                p[k] = d < 10 ? UInt8(ascii: "0") &+ d : UInt8(ascii: "a") &+ d &- 10
                rest >>= 4
            }
            p[digits] = UInt8(ascii: "\r")
            p[digits + 1] = UInt8(ascii: "\n")
            return digits + 2
        }
    }

    /// After each chunk's data.
    static let crlf = ByteBuffer(staticString: "\r\n")
    /// The last chunk and the empty trailer section: the end of a body.
    static let lastChunk: StaticString = "0\r\n\r\n"
}
