/// `Encodable` → JSON text, for the control channel (replaces Foundation's JSONEncoder). Keys are
/// written in the order the type encodes them; `nil` optionals are left out, as synthesized
/// conformances use `encodeIfPresent`.
public struct ControlJSONEncoder {
    public init() {}

    public func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        try tree(value).serialized()
    }

    public func tree<T: Encodable>(_ value: T) throws -> JSONValue {
        let root = EncodingNode()
        try value.encode(to: TreeEncoder(node: root, codingPath: []))
        return root.resolved()
    }
}

/// What one encoder call produced so far. A class because containers hand out children that are
/// filled in after they were attached to their parent.
final class EncodingNode {
    var scalar: JSONValue?
    var elements: [EncodingNode]?
    var members: [(key: String, node: EncodingNode)]?

    func resolved() -> JSONValue {
        if let elements { return .array(elements.map { $0.resolved() }) }
        if let members {
            var object = JSONObject()
            for member in members { object.set(member.key, member.node.resolved()) }
            return .object(object)
        }
        // A value that encoded nothing is an empty object, as with Foundation's encoder.
        return scalar ?? .object(JSONObject())
    }

    func becomeObject() {
        if members == nil { members = []; elements = nil; scalar = nil }
    }

    func becomeArray() {
        if elements == nil { elements = []; members = nil; scalar = nil }
    }

    func addMember(_ key: String) -> EncodingNode {
        let child = EncodingNode()
        members!.append((key, child))
        return child
    }

    func addElement() -> EncodingNode {
        let child = EncodingNode()
        elements!.append(child)
        return child
    }
}

struct TreeEncoder: Encoder {
    let node: EncodingNode
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.becomeObject()
        return KeyedEncodingContainer(KeyedEncoder<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        node.becomeArray()
        return UnkeyedEncoder(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueEncoder(node: node, codingPath: codingPath)
    }

    static func put<T: Encodable>(_ value: T, into node: EncodingNode, codingPath: [any CodingKey]) throws {
        if let scalar = value as? any JSONScalar {
            node.scalar = try scalar.jsonValue
        } else {
            try value.encode(to: TreeEncoder(node: node, codingPath: codingPath))
        }
    }
}

struct KeyedEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: EncodingNode
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { node.addMember(key.stringValue).scalar = .null }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try TreeEncoder.put(value, into: node.addMember(key.stringValue), codingPath: codingPath + [key])
    }

    // The primitive overloads `KeyedEncodingContainerProtocol` requires, all one path.
    mutating func encode(_ value: Bool, forKey key: Key) throws { try scalar(value, key) }
    mutating func encode(_ value: String, forKey key: Key) throws { try scalar(value, key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { try scalar(value, key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { try scalar(value, key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { try scalar(value, key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try scalar(value, key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try scalar(value, key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try scalar(value, key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try scalar(value, key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try scalar(value, key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try scalar(value, key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try scalar(value, key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try scalar(value, key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try scalar(value, key) }

    private mutating func scalar(_ value: some JSONScalar, _ key: Key) throws {
        node.addMember(key.stringValue).scalar = try value.jsonValue
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        TreeEncoder(node: node.addMember(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        TreeEncoder(node: node.addMember(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder {
        TreeEncoder(node: node.addMember("super"), codingPath: codingPath)
    }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        TreeEncoder(node: node.addMember(key.stringValue), codingPath: codingPath + [key])
    }
}

struct UnkeyedEncoder: UnkeyedEncodingContainer {
    let node: EncodingNode
    let codingPath: [any CodingKey]
    var count: Int { node.elements?.count ?? 0 }

    mutating func encodeNil() throws { node.addElement().scalar = .null }
    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = codingPath + [IndexKey(count)]
        try TreeEncoder.put(value, into: node.addElement(), codingPath: path)
    }

    mutating func encode(_ value: Bool) throws { try scalar(value) }
    mutating func encode(_ value: String) throws { try scalar(value) }
    mutating func encode(_ value: Double) throws { try scalar(value) }
    mutating func encode(_ value: Float) throws { try scalar(value) }
    mutating func encode(_ value: Int) throws { try scalar(value) }
    mutating func encode(_ value: Int8) throws { try scalar(value) }
    mutating func encode(_ value: Int16) throws { try scalar(value) }
    mutating func encode(_ value: Int32) throws { try scalar(value) }
    mutating func encode(_ value: Int64) throws { try scalar(value) }
    mutating func encode(_ value: UInt) throws { try scalar(value) }
    mutating func encode(_ value: UInt8) throws { try scalar(value) }
    mutating func encode(_ value: UInt16) throws { try scalar(value) }
    mutating func encode(_ value: UInt32) throws { try scalar(value) }
    mutating func encode(_ value: UInt64) throws { try scalar(value) }

    private mutating func scalar(_ value: some JSONScalar) throws {
        node.addElement().scalar = try value.jsonValue
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = codingPath + [IndexKey(count)]
        return TreeEncoder(node: node.addElement(), codingPath: path).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = codingPath + [IndexKey(count)]
        return TreeEncoder(node: node.addElement(), codingPath: path).unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder {
        let path = codingPath + [IndexKey(count)]
        return TreeEncoder(node: node.addElement(), codingPath: path)
    }
}

struct SingleValueEncoder: SingleValueEncodingContainer {
    let node: EncodingNode
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { node.scalar = .null }
    mutating func encode<T: Encodable>(_ value: T) throws {
        try TreeEncoder.put(value, into: node, codingPath: codingPath)
    }

    mutating func encode(_ value: Bool) throws { try scalar(value) }
    mutating func encode(_ value: String) throws { try scalar(value) }
    mutating func encode(_ value: Double) throws { try scalar(value) }
    mutating func encode(_ value: Float) throws { try scalar(value) }
    mutating func encode(_ value: Int) throws { try scalar(value) }
    mutating func encode(_ value: Int8) throws { try scalar(value) }
    mutating func encode(_ value: Int16) throws { try scalar(value) }
    mutating func encode(_ value: Int32) throws { try scalar(value) }
    mutating func encode(_ value: Int64) throws { try scalar(value) }
    mutating func encode(_ value: UInt) throws { try scalar(value) }
    mutating func encode(_ value: UInt8) throws { try scalar(value) }
    mutating func encode(_ value: UInt16) throws { try scalar(value) }
    mutating func encode(_ value: UInt32) throws { try scalar(value) }
    mutating func encode(_ value: UInt64) throws { try scalar(value) }

    private mutating func scalar(_ value: some JSONScalar) throws {
        node.scalar = try value.jsonValue
    }
}

/// An array position in a coding path (`entries.0.name` in error messages).
struct IndexKey: CodingKey {
    let intValue: Int?
    init(_ index: Int) { intValue = index }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { return nil }
    var stringValue: String { intValue.map(String.init) ?? "" }
}
