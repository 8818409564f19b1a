/// The primitive types `Codable` hands to a container, and how each maps to a JSON value. One
/// conformance per type keeps the containers' dozens of required overloads to one line each.
protocol JSONScalar {
    var jsonValue: JSONValue { get throws(EncodingError) }
    /// nil when `value` is of the wrong kind or out of range.
    init?(json value: JSONValue)
}

extension Bool: JSONScalar {
    var jsonValue: JSONValue { .bool(self) }
    init?(json value: JSONValue) {
        guard case .bool(let b) = value else { return nil }
        self = b
    }
}

extension String: JSONScalar {
    var jsonValue: JSONValue { .string(self) }
    init?(json value: JSONValue) {
        guard case .string(let s) = value else { return nil }
        self = s
    }
}

/// Integers travel as their exact decimal text; "1.0" or "1e3" is not an integer.
protocol JSONInteger: JSONScalar, FixedWidthInteger {}

extension JSONInteger {
    var jsonValue: JSONValue { .number(String(self)) }
    init?(json value: JSONValue) {
        guard case .number(let text) = value, let n = Self(text, radix: 10) else { return nil }
        self = n
    }
}

extension Int: JSONInteger {}
extension Int8: JSONInteger {}
extension Int16: JSONInteger {}
extension Int32: JSONInteger {}
extension Int64: JSONInteger {}
extension UInt: JSONInteger {}
extension UInt8: JSONInteger {}
extension UInt16: JSONInteger {}
extension UInt32: JSONInteger {}
extension UInt64: JSONInteger {}

protocol JSONFloatingPoint: JSONScalar, BinaryFloatingPoint, LosslessStringConvertible {}

extension JSONFloatingPoint {
    /// JSON has no NaN or infinity. Swift's shortest round-trip text ("0.1", "1e-05") is valid JSON.
    var jsonValue: JSONValue {
        get throws(EncodingError) {
            guard isFinite else {
                throw EncodingError.invalidValue(self, .init(codingPath: [], debugDescription: "JSON has no NaN or infinity"))
            }
            return .number(description)
        }
    }
    init?(json value: JSONValue) {
        guard case .number(let text) = value, let x = Self(text), x.isFinite else { return nil }
        self = x
    }
}

extension Double: JSONFloatingPoint {}
extension Float: JSONFloatingPoint {}
