/// JSON text → `Decodable`, for the control channel (replaces Foundation's JSONDecoder). Errors
/// are `JSONParseError` for text that is not JSON and `DecodingError` for JSON of the wrong
/// shape; neither quotes a value from the input (frames carry provider keys).
public struct ControlJSONDecoder {
    public init() {}

    public func decode<T: Decodable, C: Collection>(_ type: T.Type, from bytes: C) throws -> T where C.Element == UInt8 {
        try decode(type, from: try JSONParser.parse(bytes))
    }

    public func decode<T: Decodable>(_ type: T.Type, from tree: JSONValue) throws -> T {
        try TreeDecoder.value(T.self, tree, [])
    }
}

struct TreeDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let object) = value else { throw Self.mismatch([String: Any].self, value, codingPath) }
        return KeyedDecodingContainer(KeyedDecoder<Key>(object: object, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let elements) = value else { throw Self.mismatch([Any].self, value, codingPath) }
        return UnkeyedDecoder(elements: elements, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValueDecoder(value: value, codingPath: codingPath)
    }

    static func value<T: Decodable>(_ type: T.Type, _ value: JSONValue, _ codingPath: [any CodingKey]) throws -> T {
        if let scalarType = T.self as? any JSONScalar.Type {
            return try scalar(scalarType, value, codingPath) as! T
        }
        return try T(from: TreeDecoder(value: value, codingPath: codingPath))
    }

    static func scalar<T: JSONScalar>(_ value: JSONValue, _ codingPath: [any CodingKey]) throws -> T {
        try scalar(T.self, value, codingPath)
    }

    private static func scalar<T: JSONScalar>(_ type: T.Type, _ value: JSONValue, _ codingPath: [any CodingKey]) throws -> T {
        guard let decoded = T(json: value) else { throw mismatch(T.self, value, codingPath) }
        return decoded
    }

    /// "expected UInt32, found a string" (or "a number" when it is out of range or not integral).
    static func mismatch(_ expected: Any.Type, _ found: JSONValue, _ codingPath: [any CodingKey]) -> DecodingError {
        .typeMismatch(expected, .init(codingPath: codingPath, debugDescription: "expected \(expected), found \(found.kindName)"))
    }
}

struct KeyedDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let object: JSONObject
    let codingPath: [any CodingKey]

    var allKeys: [Key] { object.keys.compactMap { Key(stringValue: $0) } }
    func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }

    private func member(_ key: Key) throws -> JSONValue {
        guard let value = object[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing member \"\(key.stringValue)\""))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { try member(key) == .null }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try TreeDecoder.value(type, try member(key), codingPath + [key])
    }

    // The primitive overloads `KeyedDecodingContainerProtocol` requires, all one path.
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try scalar(key) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try scalar(key) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try scalar(key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try scalar(key) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try scalar(key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try scalar(key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try scalar(key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try scalar(key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try scalar(key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try scalar(key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try scalar(key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try scalar(key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try scalar(key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try scalar(key) }
    private func scalar<T: JSONScalar>(_ key: Key) throws -> T {
        try TreeDecoder.scalar(try member(key), codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try TreeDecoder(value: try member(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try TreeDecoder(value: try member(key), codingPath: codingPath + [key]).unkeyedContainer()
    }
    func superDecoder() throws -> any Decoder {
        TreeDecoder(value: object["super"] ?? .null, codingPath: codingPath)
    }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        TreeDecoder(value: object[key.stringValue] ?? .null, codingPath: codingPath + [key])
    }
}

struct UnkeyedDecoder: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let codingPath: [any CodingKey]
    private(set) var currentIndex = 0

    init(elements: [JSONValue], codingPath: [any CodingKey]) {
        self.elements = elements
        self.codingPath = codingPath
    }

    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    /// The next element and its path; advances.
    private mutating func next(_ expected: Any.Type) throws -> (JSONValue, [any CodingKey]) {
        let path = codingPath + [IndexKey(currentIndex)]
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                expected, .init(codingPath: path, debugDescription: "array has only \(elements.count) elements"))
        }
        defer { currentIndex += 1 }
        return (elements[currentIndex], path)
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, elements[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, path) = try next(type)
        return try TreeDecoder.value(type, value, path)
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try scalar() }
    mutating func decode(_ type: String.Type) throws -> String { try scalar() }
    mutating func decode(_ type: Double.Type) throws -> Double { try scalar() }
    mutating func decode(_ type: Float.Type) throws -> Float { try scalar() }
    mutating func decode(_ type: Int.Type) throws -> Int { try scalar() }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try scalar() }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try scalar() }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try scalar() }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try scalar() }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try scalar() }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try scalar() }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try scalar() }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try scalar() }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try scalar() }
    private mutating func scalar<T: JSONScalar>() throws -> T {
        let (value, path) = try next(T.self)
        return try TreeDecoder.scalar(value, path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (value, path) = try next([String: Any].self)
        return try TreeDecoder(value: value, codingPath: path).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (value, path) = try next([Any].self)
        return try TreeDecoder(value: value, codingPath: path).unkeyedContainer()
    }
    mutating func superDecoder() throws -> any Decoder {
        let (value, path) = try next(Any.self)
        return TreeDecoder(value: value, codingPath: path)
    }
}

struct SingleValueDecoder: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { value == .null }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try TreeDecoder.value(type, value, codingPath) }

    func decode(_ type: Bool.Type) throws -> Bool { try TreeDecoder.scalar(value, codingPath) }
    func decode(_ type: String.Type) throws -> String { try TreeDecoder.scalar(value, codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try TreeDecoder.scalar(value, codingPath) }
    func decode(_ type: Float.Type) throws -> Float { try TreeDecoder.scalar(value, codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try TreeDecoder.scalar(value, codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try TreeDecoder.scalar(value, codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try TreeDecoder.scalar(value, codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try TreeDecoder.scalar(value, codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try TreeDecoder.scalar(value, codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try TreeDecoder.scalar(value, codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try TreeDecoder.scalar(value, codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try TreeDecoder.scalar(value, codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try TreeDecoder.scalar(value, codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try TreeDecoder.scalar(value, codingPath) }
}
