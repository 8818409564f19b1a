/// A position in a JSON text's bytes that steps over white space, a string literal or a whole
/// value — a container by its strings and bracket depth (`UsageByteScan`'s searches find the
/// bytes that matter, many at a time) — without validating what it steps over: the upstream
/// parses the body anyway. The walkers of a request body's top-level object stand on it: the
/// model stage's `ModelMember` and `stream_usage: inject`'s `JSONObjectMembers`.
struct JSONCursor {
    let bytes: UnsafeRawBufferPointer
    var i: Int

    /// The bytes end first (`more`: a longer prefix may answer), or the grammar is broken.
    enum Stop: Error { case more, invalid }

    init(_ bytes: UnsafeRawBufferPointer, at i: Int = 0) {
        self.bytes = bytes
        self.i = i
    }

    /// At a non-white byte, or out of bytes.
    mutating func skipWhitespace() throws(Stop) {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
        throw .more
    }

    /// At a `"`: the literal's range, quotes included; `i` is after it.
    mutating func stringLiteral() throws(Stop) -> Range<Int> {
        let start = i
        i += 1
        while true {
            i = UsageByteScan.stringEnd(bytes, from: i)
            guard i < bytes.count else { throw .more }
            switch bytes[i] {
            case UInt8(ascii: "\""):
                i += 1
                return start..<i
            case UInt8(ascii: "\\"):
                // The escaped byte is never the closing quote; a `\u` escape's digits are plain.
                i += 2
                guard i <= bytes.count else { throw .more }
            default:
                throw .invalid  // a raw control byte (RFC 8259 §7)
            }
        }
    }

    /// At a value's first byte: steps over it; `i` is just after it.
    mutating func skipValue() throws(Stop) {
        switch bytes[i] {
        case UInt8(ascii: "\""):
            _ = try stringLiteral()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while true {
                i = UsageByteScan.structural(bytes, from: i)
                guard i < bytes.count else { throw .more }
                let b = bytes[i]
                if b == UInt8(ascii: "\"") {
                    _ = try stringLiteral()
                    continue
                }
                i += 1
                // `[` and `{` differ only in bit 5, as `]` and `}` do.
                if b | 0x20 == 0x7B {
                    depth += 1
                } else {
                    depth -= 1
                    if depth == 0 { return }
                }
            }
        default:
            // A scalar: to the byte that ends it; none at all (`"a":,`) is no value.
            let start = i
            while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), 0x20, 0x0A, 0x0D, 0x09:
                    if i == start { throw .invalid }
                    return
                case UInt8(ascii: "\""), UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: ":"):
                    throw .invalid
                default: i += 1
                }
            }
            throw .more
        }
    }

    /// How a walk of an object's members ended.
    enum ObjectWalk<Answer> {
        case notAnObject
        /// `visit` answered at a member.
        case answered(Answer)
        /// Every member visited; the closing brace is at this index.
        case closed(Int)
    }

    /// The object at the cursor (after white space), member by member: `visit` gets each key
    /// literal (quotes included) with the cursor at its value's first byte, and either steps over
    /// the value and returns nil, or returns the walk's answer. A broken grammar is `invalid`.
    mutating func walkObject<Answer>(
        _ visit: (inout JSONCursor, Range<Int>) throws(Stop) -> Answer?
    ) throws(Stop) -> ObjectWalk<Answer> {
        try skipWhitespace()
        guard bytes[i] == UInt8(ascii: "{") else { return .notAnObject }
        i += 1
        try skipWhitespace()
        if bytes[i] == UInt8(ascii: "}") { return .closed(i) }
        while true {
            guard bytes[i] == UInt8(ascii: "\"") else { throw .invalid }
            let key = try stringLiteral()
            try skipWhitespace()
            guard bytes[i] == UInt8(ascii: ":") else { throw .invalid }
            i += 1
            try skipWhitespace()
            if let answer = try visit(&self, key) { return .answered(answer) }
            try skipWhitespace()
            switch bytes[i] {
            case UInt8(ascii: ","):
                i += 1
                try skipWhitespace()
            case UInt8(ascii: "}"): return .closed(i)
            default: throw .invalid
            }
        }
    }
}
