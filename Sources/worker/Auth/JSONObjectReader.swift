/// Just enough JSON (RFC 8259) to read a JWT header or payload: the whole text is validated,
/// the members of the top-level object are returned with strings decoded and numbers kept as
/// their literal text (so "is `exp` an integer?" is answered exactly, unlike `JSONSerialization`
/// whose `NSNumber` cannot tell `1` from `1.0` on Linux). Duplicate member names are rejected:
/// two `exp` members must not let a token choose which one a reader sees.
enum JSONValue: Equatable {
    case string(String)
    case number(String)
    case bool(Bool)
    case null
    case array
    case object
}

struct JSONObjectReader {
    /// Nesting deeper than this is rejected: a header or claim set never needs it.
    static let maximumDepth = 16

    static func members(of bytes: [UInt8]) -> [String: JSONValue]? {
        var reader = JSONObjectReader(bytes: bytes)
        reader.skipWhitespace()
        guard reader.peek() == UInt8(ascii: "{"), let members = reader.parseObject(depth: 0) else { return nil }
        reader.skipWhitespace()
        guard reader.index == bytes.count else { return nil }
        return members
    }

    private let bytes: [UInt8]
    private var index = 0

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let c = peek(), c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { index += 1 }
    }

    private mutating func expect(_ c: UInt8) -> Bool {
        guard peek() == c else { return false }
        index += 1
        return true
    }

    private mutating func parseObject(depth: Int) -> [String: JSONValue]? {
        guard depth < Self.maximumDepth, expect(UInt8(ascii: "{")) else { return nil }
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if expect(UInt8(ascii: "}")) { return members }
        while true {
            skipWhitespace()
            guard let name = parseString() else { return nil }
            skipWhitespace()
            guard expect(UInt8(ascii: ":")) else { return nil }
            skipWhitespace()
            guard let value = parseValue(depth: depth + 1), members[name] == nil else { return nil }
            members[name] = value
            skipWhitespace()
            if expect(UInt8(ascii: ",")) { continue }
            guard expect(UInt8(ascii: "}")) else { return nil }
            return members
        }
    }

    private mutating func parseArray(depth: Int) -> Bool {
        guard depth < Self.maximumDepth, expect(UInt8(ascii: "[")) else { return false }
        skipWhitespace()
        if expect(UInt8(ascii: "]")) { return true }
        while true {
            skipWhitespace()
            guard parseValue(depth: depth + 1) != nil else { return false }
            skipWhitespace()
            if expect(UInt8(ascii: ",")) { continue }
            return expect(UInt8(ascii: "]"))
        }
    }

    private mutating func parseValue(depth: Int) -> JSONValue? {
        switch peek() {
        case UInt8(ascii: "{"): return parseObject(depth: depth) == nil ? nil : .object
        case UInt8(ascii: "["): return parseArray(depth: depth) ? .array : nil
        case UInt8(ascii: "\""): return parseString().map(JSONValue.string)
        case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
        case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
        case UInt8(ascii: "n"): return literal("null") ? .null : nil
        default: return parseNumber().map(JSONValue.number)
        }
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        for i in 0..<count where bytes[index + i] != word.utf8Start[i] { return false }
        index += count
        return true
    }

    private mutating func digits() -> Int {
        let start = index
        while let c = peek(), c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") { index += 1 }
        return index - start
    }

    private mutating func parseNumber() -> String? {
        let start = index
        _ = expect(UInt8(ascii: "-"))
        if peek() == UInt8(ascii: "0") {
            index += 1
        } else if digits() == 0 {
            return nil
        }
        if expect(UInt8(ascii: ".")) { guard digits() > 0 else { return nil } }
        if expect(UInt8(ascii: "e")) || expect(UInt8(ascii: "E")) {
            if !expect(UInt8(ascii: "+")) { _ = expect(UInt8(ascii: "-")) }
            guard digits() > 0 else { return nil }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func parseString() -> String? {
        guard expect(UInt8(ascii: "\"")) else { return nil }
        var scalars = String.UnicodeScalarView()
        var raw = [UInt8]()
        func flush() -> Bool {
            guard !raw.isEmpty else { return true }
            guard let text = String(validating: raw, as: UTF8.self) else { return false }
            scalars.append(contentsOf: text.unicodeScalars)
            raw.removeAll(keepingCapacity: true)
            return true
        }
        while let c = peek() {
            index += 1
            switch c {
            case UInt8(ascii: "\""):
                return flush() ? String(scalars) : nil
            case UInt8(ascii: "\\"):
                guard flush(), let scalar = parseEscape() else { return nil }
                scalars.append(scalar)
            case 0x00..<0x20:
                return nil
            default:
                raw.append(c)
            }
        }
        return nil
    }

    private mutating func parseEscape() -> Unicode.Scalar? {
        guard let c = peek() else { return nil }
        index += 1
        switch c {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            guard let high = hex4() else { return nil }
            if (0xD800..<0xDC00).contains(high) {
                guard expect(UInt8(ascii: "\\")), expect(UInt8(ascii: "u")), let low = hex4(),
                      (0xDC00..<0xE000).contains(low) else { return nil }
                return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
            }
            return Unicode.Scalar(high)
        default: return nil
        }
    }

    private mutating func hex4() -> UInt32? {
        guard index + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            index += 1
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: return nil
            }
            value = value << 4 | digit
        }
        return value
    }
}
