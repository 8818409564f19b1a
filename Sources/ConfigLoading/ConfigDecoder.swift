import Common

// Turns the YAML tree into a `Configuration`, collecting every problem instead of stopping at the
// first (docs/configuration.md "Validation"). Each section lives in its own extension file; this
// one holds the typed accessors they share. Rule of this file: a message may name a key, a path or
// a kind of node, but never quotes a value it was not sure is harmless, because secrets go through
// the same accessors.

struct ConfigDecoder {
    let file: String
    private(set) var diagnostics: [ConfigDiagnostic] = []

    init(file: String) { self.file = file }

    /// One key of a mapping whose key is a scalar.
    struct Entry {
        var name: String
        var key: YAMLNode
        var value: YAMLNode
    }

    // MARK: Reporting

    mutating func error(_ code: String, _ node: YAMLNode, _ path: String, _ message: String) {
        diagnostics.append(
            ConfigDiagnostic(
                code: code, file: file, line: node.mark.line,
                column: node.mark.column, path: path, message: message))
    }

    mutating func warning(_ code: String, _ node: YAMLNode, _ path: String, _ message: String) {
        diagnostics.append(
            ConfigDiagnostic(
                severity: .warning, code: code, file: file, line: node.mark.line,
                column: node.mark.column, path: path, message: message))
    }

    mutating func typeError(_ node: YAMLNode, _ path: String, expected: String, hint: String = "") {
        error("type.mismatch", node, path, "expected \(expected), found \(node.kindDescription)\(hint)")
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// A name from the file in quotes, cut at 80 characters so that one odd key cannot make a
    /// megabyte-long message.
    static func quoted(_ name: String) -> String {
        name.count <= 80 ? "\"\(name)\"" : "\"\(name.prefix(80))…\""
    }

    // MARK: Shapes

    /// The entries of a mapping. A null section (`server:`) counts as empty when `nullIsEmpty`.
    /// nil after a type error.
    mutating func entries(_ node: YAMLNode, _ path: String, nullIsEmpty: Bool = true) -> [Entry]? {
        if nullIsEmpty, node.isNull { return [] }
        guard case .mapping(let pairs) = node.content else {
            typeError(node, path, expected: "a mapping")
            return nil
        }
        var result: [Entry] = []
        for pair in pairs {
            guard let name = pair.key.scalar?.value else {
                error("type.mismatch", pair.key, path, "keys must be strings, found \(pair.key.kindDescription)")
                continue
            }
            result.append(Entry(name: name, key: pair.key, value: pair.value))
        }
        return result
    }

    /// The items of a sequence; null counts as empty. nil after a type error.
    mutating func items(_ node: YAMLNode, _ path: String) -> [YAMLNode]? {
        if node.isNull { return [] }
        guard case .sequence(let items) = node.content else {
            typeError(node, path, expected: "a sequence")
            return nil
        }
        return items
    }

    /// Warns about every key not in `known` (Fluxgate ignores them silently;
    /// docs/configuration.md "Differences from Fluxgate").
    mutating func warnUnknown(_ entries: [Entry], known: Set<String>, _ path: String) {
        for entry in entries where !known.contains(entry.name) {
            var message = "unknown key \(Self.quoted(entry.name)) is ignored"
            if let guess = Self.closest(to: entry.name, in: known) { message += " (did you mean \"\(guess)\"?)" }
            warning("field.unknown", entry.key, Self.join(path, entry.name), message)
        }
    }

    /// The value of a required key, or a `field.missing` error at the containing mapping.
    mutating func required(_ name: String, _ entries: [Entry], in container: YAMLNode, _ path: String) -> YAMLNode? {
        if let entry = entries.first(where: { $0.name == name }) { return entry.value }
        error("field.missing", container, Self.join(path, name), "missing required key \"\(name)\"")
        return nil
    }

    // MARK: Scalars

    /// Any non-null scalar, whatever its style, is a string (`id: 5` is the id "5").
    mutating func string(_ node: YAMLNode, _ path: String, hint: String = "") -> String? {
        guard let s = node.scalar, !s.isNull else {
            typeError(node, path, expected: "a string", hint: hint)
            return nil
        }
        return s.value
    }

    /// A plain decimal unsigned integer (a leading `+` allowed) no larger than `max`.
    mutating func unsigned(_ node: YAMLNode, _ path: String, max: UInt64) -> UInt64? {
        guard let s = node.scalar, !s.isNull, s.mayBeInteger else {
            typeError(node, path, expected: "an unsigned integer")
            return nil
        }
        let digits = s.value.hasPrefix("+") ? s.value.dropFirst() : Substring(s.value)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit) else {
            typeError(node, path, expected: "an unsigned integer")
            return nil
        }
        guard let value = UInt64(digits), value <= max else {
            error("type.out_of_range", node, path, "must be at most \(max)")
            return nil
        }
        return value
    }

    /// A key name in `known` at edit distance ≤ 2, to suggest for a typo.
    static func closest(to name: String, in known: Set<String>) -> String? {
        let a = Array(name.utf8)
        var best: (String, Int)?
        for candidate in known.sorted() {
            let b = Array(candidate.utf8)
            guard abs(a.count - b.count) <= 2 else { continue }
            var row = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var previous = row[0]
                row[0] = i
                for j in 1...max(b.count, 1) where !b.isEmpty {
                    let saved = row[j]
                    row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                    previous = saved
                }
            }
            let distance = row[b.count]
            if distance <= 2, distance < (best?.1 ?? .max) { best = (candidate, distance) }
        }
        return best?.0
    }
}
