// Common's one JSON module, without Foundation: `JSONParser` reads a document into a
// `JSONValue`, `JSONValue.serialized()` writes one, `JSONText` escapes strings. The control
// channel (through its Codable bridge in Control/), JWT verification and the log formatter use
// it. Foundation's JSONEncoder/JSONDecoder were once the only reason both executables loaded
// libFoundation, libFoundationEssentials and ICU: about 9 MiB of resident pages per process.

/// A parsed or to-be-written JSON document. Numbers keep their literal text, so a `UInt64`
/// (sequence numbers, deadlines) round-trips exactly instead of passing through `Double`, and
/// "is `exp` an integer?" has an exact answer (`1` is, `1.0` and `1e0` are not).
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// What this value is, for error messages (which never quote the value itself: a document may
    /// carry provider keys or tokens).
    public var kindName: String {
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

// MARK: - Reading values

extension JSONValue {
    /// The member `key` of an object; nil for a missing member or when this is not an object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    public var objectValue: JSONObject? {
        guard case .object(let object) = self else { return nil }
        return object
    }

    public var arrayValue: [JSONValue]? {
        guard case .array(let elements) = self else { return nil }
        return elements
    }

    public var stringValue: String? {
        guard case .string(let text) = self else { return nil }
        return text
    }

    public var boolValue: Bool? {
        guard case .bool(let value) = self else { return nil }
        return value
    }

    /// A number written as an integer that fits in `Int64` (`1700000000`; not `1.7e9`, `1.0` or
    /// a value out of range).
    public var int64Value: Int64? {
        guard case .number(let text) = self else { return nil }
        return Int64(text, radix: 10)
    }

    public var isNull: Bool { self == .null }
}

// MARK: - Writing

extension JSONValue {
    /// Compact UTF-8 text (RFC 8259), strings escaped by `JSONText`.
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
        case .string(let s): JSONText.appendQuoted(s, to: &out)
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
                JSONText.appendQuoted(key, to: &out)
                out.append(UInt8(ascii: ":"))
                object[key]!.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }
}
