/// The request line of a head that has not all arrived, checked as its bytes come in.
///
/// A request starts with a method token (RFC 9112 §3; empty lines before it are skipped by the
/// parser, §2.2), so bytes that cannot begin a request line — a TLS ClientHello sent to the plain
/// port, binary — are refused at the first byte that shows it, as nginx does, instead of waiting
/// for a line end that never comes until the header timeout. The grammar is the full parse's
/// (`RequestParser.parseHead`), one byte at a time: a method of 1–32 bytes (A–Z, `-`, `_`), one
/// space, a request-target of visible ASCII, one space, `HTTP/1.`, a digit, CRLF. Once the line has
/// ended nothing more is checked here: the header lines are parsed when the head is whole.
///
/// Only an incomplete head is checked (a head that arrives in one read, the usual case, is
/// parsed once), and each byte once, however the reads split the line.
struct RequestLinePrefix {
    private enum Part: UInt8 {
        case method, target, version, ended
    }

    /// Bytes of the line checked so far (offsets from its first byte), and where the current
    /// part started. (`Int32`: the parser, which holds this, is copied as a value; a head is
    /// refused long before 2 GiB.)
    private var checked: Int32 = 0
    private var partStart: Int32 = 0
    private var part = Part.method

    /// Checks the bytes of `line` (the head so far, from the request line's first byte) not yet
    /// checked: false when they cannot be the start of a request line.
    mutating func check(_ line: UnsafeRawBufferPointer) -> Bool {
        var i = Int(checked)
        defer { checked = Int32(truncatingIfNeeded: i) }
        while i < line.count {
            let b = line[i]
            switch part {
            case .method:
                if RequestParser.isMethodByte(b) {
                    guard i < Self.maxMethodBytes else { return false }
                } else if b == Self.space, i > 0 {
                    part = .target
                    partStart = Int32(truncatingIfNeeded: i + 1)
                } else if b == Self.cr, i == 0, line.count == 1 {
                    // Perhaps an empty line before the request line: its LF has not come yet.
                    return true
                } else {
                    return false
                }
            case .target:
                if b > 0x20 && b < 0x7F {
                    // Visible ASCII.
                } else if b == Self.space, i > Int(partStart) {
                    part = .version
                    partStart = Int32(truncatingIfNeeded: i + 1)
                } else {
                    return false
                }
            case .version:
                let k = i - Int(partStart)
                let fits: Bool
                switch k {
                case 0..<Self.version.utf8CodeUnitCount: fits = b == Self.version.utf8Start[k]
                case Self.version.utf8CodeUnitCount: fits = b &- UInt8(ascii: "0") < 10
                case Self.version.utf8CodeUnitCount + 1: fits = b == Self.cr
                default:
                    fits = b == Self.lf
                    part = .ended
                }
                guard fits else { return false }
            case .ended:
                return true
            }
            i += 1
        }
        return true
    }

    /// The full parse's limit (nginx has none; no registered method is longer than 17 bytes).
    private static let maxMethodBytes = 32
    private static let version: StaticString = "HTTP/1."
    private static let space = UInt8(ascii: " "), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
}
