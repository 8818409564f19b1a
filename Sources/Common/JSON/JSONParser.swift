/// Why a document is not JSON: the byte offset and what was wrong there. Never the bytes
/// themselves, which may belong to a provider key or a token.
public struct JSONParseError: Error, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String

    public var description: String { "\(reason) at byte \(offset)" }
}

/// A strict RFC 8259 parser over one complete document: no comments, no trailing commas, no
/// duplicate keys (two `exp` members must not let a token choose which one a reader sees), no
/// lone surrogates, strings must be valid UTF-8. Nesting is limited so that a hostile document
/// cannot exhaust the stack (the recursion is one frame per level).
public struct JSONParser {
    public static let maxDepth = 64

    private let bytes: [UInt8]
    private var i = 0
    private var depth = 0

    public static func parse<C: Collection>(_ input: C) throws(JSONParseError) -> JSONValue where C.Element == UInt8 {
        var parser = JSONParser(bytes: Array(input))
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.i == parser.bytes.count else { throw parser.error("unexpected data after the document") }
        return value
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func error(_ reason: String) -> JSONParseError { JSONParseError(offset: i, reason: reason) }

    private var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    private mutating func skipWhitespace() {
        while let b = peek, b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { i += 1 }
    }

    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard let b = peek else { throw error("unexpected end of data") }
        switch b {
        case UInt8(ascii: "{"): return try nested { (p) throws(JSONParseError) in try p.parseObject() }
        case UInt8(ascii: "["): return try nested { (p) throws(JSONParseError) in try p.parseArray() }
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error("unexpected character")
        }
    }

    private mutating func nested(_ body: (inout JSONParser) throws(JSONParseError) -> JSONValue) throws(JSONParseError) -> JSONValue {
        guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
        depth += 1
        defer { depth -= 1 }
        return try body(&self)
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - i >= count,
            word.withUTF8Buffer({ $0.elementsEqual(bytes[i..<(i + count)]) })
        else { throw error("invalid literal") }
        i += count
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(JSONParseError) {
        guard peek == byte else { throw error("expected \(what)") }
        i += 1
    }

    private mutating func parseObject() throws(JSONParseError) -> JSONValue {
        i += 1  // {
        var object = JSONObject()
        skipWhitespace()
        if peek == UInt8(ascii: "}") { i += 1; return .object(object) }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else { throw error("expected a member name") }
            let keyOffset = i
            let key = try parseString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':'")
            skipWhitespace()
            guard object.set(key, try parseValue()) else {
                throw JSONParseError(offset: keyOffset, reason: "duplicate member name")
            }
            skipWhitespace()
            if peek == UInt8(ascii: ",") { i += 1; continue }
            try expect(UInt8(ascii: "}"), "',' or '}'")
            return .object(object)
        }
    }

    private mutating func parseArray() throws(JSONParseError) -> JSONValue {
        i += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if peek == UInt8(ascii: "]") { i += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            if peek == UInt8(ascii: ",") { i += 1; continue }
            try expect(UInt8(ascii: "]"), "',' or ']'")
            return .array(elements)
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, returned as its text.
    private mutating func parseNumber() throws(JSONParseError) -> String {
        let start = i
        if peek == UInt8(ascii: "-") { i += 1 }
        if peek == UInt8(ascii: "0") {
            i += 1
        } else {
            guard try digits() > 0 else { throw error("invalid number") }
        }
        if peek == UInt8(ascii: ".") {
            i += 1
            guard try digits() > 0 else { throw error("invalid number") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            i += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
            guard try digits() > 0 else { throw error("invalid number") }
        }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }

    private mutating func digits() throws(JSONParseError) -> Int {
        let start = i
        while let b = peek, b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") { i += 1 }
        return i - start
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        i += 1  // opening quote
        var utf8: [UInt8] = []
        while true {
            guard let b = peek else { throw error("unterminated string") }
            switch b {
            case UInt8(ascii: "\""):
                i += 1
                guard let s = String(validating: utf8, as: UTF8.self) else { throw error("string is not valid UTF-8") }
                return s
            case UInt8(ascii: "\\"):
                i += 1
                try parseEscape(into: &utf8)
            case 0..<0x20:
                throw error("control character in string")
            default:
                utf8.append(b)
                i += 1
            }
        }
    }

    private mutating func parseEscape(into utf8: inout [UInt8]) throws(JSONParseError) {
        guard let b = peek else { throw error("unterminated string") }
        i += 1
        switch b {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(b)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            var code = UInt32(try hex4())
            if (0xD800..<0xDC00).contains(code) {
                // A high surrogate must be followed by an escaped low one (RFC 8259 §7).
                guard peek == UInt8(ascii: "\\"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "u") else {
                    throw error("lone surrogate in \\u escape")
                }
                i += 2
                let low = UInt32(try hex4())
                guard (0xDC00..<0xE000).contains(low) else { throw error("lone surrogate in \\u escape") }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(code) {
                throw error("lone surrogate in \\u escape")
            }
            // Not a surrogate (excluded above), so always a valid scalar.
            UTF8.encode(Unicode.Scalar(code)!) { utf8.append($0) }
        default:
            throw error("invalid escape")
        }
    }

    private mutating func hex4() throws(JSONParseError) -> UInt16 {
        guard bytes.count - i >= 4 else { throw error("invalid \\u escape") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | UInt16(digit)
            i += 1
        }
        return value
    }
}
