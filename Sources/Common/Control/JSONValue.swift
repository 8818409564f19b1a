// The control channel's JSON, without Foundation. Foundation's JSONEncoder/JSONDecoder were the
// only reason both executables loaded libFoundation, libFoundationEssentials and ICU: about 9 MiB
// of resident pages in every process (issue 7, S7). The frames carry one `Codable` value tree
// (ControlMessage and the Configuration in it), so a small tree, a strict parser and a writer
// are all the protocol needs.

/// A parsed or to-be-written JSON document. Numbers keep their literal text so that a `UInt64`
/// (sequence numbers, deadlines) round-trips exactly instead of passing through `Double`.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// What this value is, for error messages (which never quote the value itself: a frame may
    /// carry provider keys).
    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// Members in the order they were written (so output is deterministic), with a lookup table.
public struct JSONObject: Sendable, Equatable {
    public private(set) var keys: [String] = []
    private var members: [String: JSONValue] = [:]

    public init() {}

    public subscript(key: String) -> JSONValue? { members[key] }

    /// Sets `key`; false when it was already present (the parser rejects duplicate keys).
    @discardableResult
    public mutating func set(_ key: String, _ value: JSONValue) -> Bool {
        if members.updateValue(value, forKey: key) != nil { return false }
        keys.append(key)
        return true
    }

    public var count: Int { keys.count }
}

extension JSONValue {
    /// Compact UTF-8 text (RFC 8259), strings escaped so that any Unicode text round-trips.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    private func write(into out: inout [UInt8]) {
        switch self {
        case .null: out += "null".utf8
        case .bool(let b): out += (b ? "true" : "false").utf8
        case .number(let text): out += text.utf8
        case .string(let s): Self.writeString(s, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                element.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            for (i, key) in object.keys.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                object[key]!.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// RFC 8259 §7: `"` and `\` escaped, control characters as short escapes or `\u00XX`;
    /// everything else is copied as UTF-8 (a Swift `String` is always valid Unicode).
    private static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += #"\""#.utf8
            case UInt8(ascii: "\\"): out += #"\\"#.utf8
            case UInt8(ascii: "\n"): out += #"\n"#.utf8
            case UInt8(ascii: "\r"): out += #"\r"#.utf8
            case UInt8(ascii: "\t"): out += #"\t"#.utf8
            case 0..<0x20:
                out += #"\u00"#.utf8
                out.append(hexDigit(byte >> 4))
                out.append(hexDigit(byte & 0xF))
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
