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

// An upstream's `stream_usage` key (docs/configuration.md, docs/usage.md "stream_usage: inject").
extension ConfigDecoder {
    /// `stream_usage: passthrough | inject`; absent or null is `passthrough`. `inject` needs the
    /// usage it asks for to be read: with `usage: off` it is an error. nil after an error.
    mutating func decodeStreamUsageMode(
        _ fields: [Entry], _ path: String, usage: Configuration.UsageMode?
    ) -> Configuration.StreamUsageMode? {
        guard let node = fields.first(where: { $0.name == "stream_usage" })?.value, !node.isNull else { return .passthrough }
        let keyPath = Self.join(path, "stream_usage")
        guard let text = string(node, keyPath) else { return nil }
        guard let mode = Configuration.StreamUsageMode(rawValue: text.trimmingWhitespace.lowercased()) else {
            let choices = Configuration.StreamUsageMode.allCases.map(\.rawValue).joined(separator: ", ")
            error("stream_usage.invalid", node, keyPath, "is not supported; use one of \(choices)")
            return nil
        }
        if mode == .inject, usage == .off {
            error("stream_usage.needs_usage", node, keyPath, "inject asks for usage that usage: off would not read; remove one")
            return nil
        }
        return mode
    }
}
