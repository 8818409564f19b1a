import Common

// An upstream's `usage` key (docs/configuration.md, docs/usage.md).
extension ConfigDecoder {
    /// `usage: auto | off`; absent or null is `auto`. nil after an error.
    mutating func decodeUsageMode(_ fields: [Entry], _ path: String) -> Configuration.UsageMode? {
        guard let node = fields.first(where: { $0.name == "usage" })?.value, !node.isNull else { return .auto }
        let keyPath = Self.join(path, "usage")
        guard let text = string(node, keyPath) else { return nil }
        if let mode = Configuration.UsageMode(rawValue: text.trimmingWhitespace.lowercased()) { return mode }
        let choices = Configuration.UsageMode.allCases.map(\.rawValue).joined(separator: ", ")
        error("usage.invalid", node, keyPath, "is not supported; use one of \(choices)")
        return nil
    }
}
