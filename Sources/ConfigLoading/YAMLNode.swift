import Common

// The small YAML tree that `YAMLReader` builds from libyaml's events. It keeps exactly what the
// validator needs: the shape, the scalar text with its style and tag, and where every node starts,
// so that each diagnostic can point at a line and column.

/// A 1-based position in the file (libyaml's marks are 0-based; the reader converts them).
struct YAMLMark: Sendable, Hashable {
    var line: Int
    var column: Int
}

struct YAMLScalar: Sendable, Hashable {
    enum Style: Sendable, Hashable { case plain, singleQuoted, doubleQuoted, literal, folded }

    var value: String
    var style: Style
    /// The resolved tag (`tag:yaml.org,2002:str` for `!!str`), nil when none was written.
    var tag: String?

    static let strTag = "tag:yaml.org,2002:str"
    static let intTag = "tag:yaml.org,2002:int"
    static let nullTag = "tag:yaml.org,2002:null"

    /// YAML 1.1 null: an untagged plain `~`, `null`, `Null`, `NULL` or nothing at all, or `!!null`.
    var isNull: Bool {
        if tag == Self.nullTag { return true }
        guard tag == nil, style == .plain else { return false }
        return value.isEmpty || value == "~" || value == "null" || value == "Null" || value == "NULL"
    }

    /// An untagged plain scalar or one tagged `!!int`: the only ones that may be read as integers.
    /// A quoted `"8080"` is a string, as in YAML and in Fluxgate (serde rejects it for a u32).
    var mayBeInteger: Bool {
        tag == Self.intTag || (tag == nil && style == .plain)
    }
}

struct YAMLNode: Sendable, Hashable {
    struct Pair: Sendable, Hashable {
        var key: YAMLNode
        var value: YAMLNode
    }

    enum Content: Sendable, Hashable {
        case scalar(YAMLScalar)
        /// Key/value pairs in file order; duplicate keys were already reported and dropped.
        case mapping([Pair])
        case sequence([YAMLNode])
    }

    var content: Content
    var mark: YAMLMark

    var scalar: YAMLScalar? {
        if case .scalar(let s) = content { return s }
        return nil
    }

    var isNull: Bool { scalar?.isNull ?? false }

    /// How a type error names what was found. Never includes the value: it may be a secret.
    var kindDescription: String {
        switch content {
        case .mapping: return "a mapping"
        case .sequence: return "a sequence"
        case .scalar(let s):
            if s.isNull { return "null" }
            guard s.mayBeInteger else { return "a string" }
            if s.value.hasPrefix("-"), s.value.dropFirst().allSatisfy(\.isASCIIDigit), s.value.count > 1 {
                return "a negative integer"
            }
            if Double(s.value) != nil, s.value.contains(".") { return "a floating-point number" }
            return "a string"
        }
    }
}
