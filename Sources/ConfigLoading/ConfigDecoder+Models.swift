import Common

// The `models:` section and the `models:` lists of static keys (docs/configuration.md "Keys",
// docs/routing-and-forwarding.md "Model routing").
extension ConfigDecoder {
    static let modelKeys: Set<String> = ["upstream", "model"]

    /// `models:`; `upstreamNames` are every configured upstream, valid or not (an upstream with
    /// errors of its own is not reported again here). nil after an error.
    mutating func decodeModels(_ node: YAMLNode, upstreamNames: Set<String>) -> [Configuration.ModelRoute]? {
        guard let entries = entries(node, "models") else { return nil }
        var routes: [Configuration.ModelRoute] = []
        var valid = true
        // Names with runs of `*` collapsed (`a**` matches what `a*` does) → the line of the first.
        var seen: [String: Int] = [:]
        for entry in entries {
            let path = "models.\(Self.quoted(entry.name))"
            guard let name = modelName(entry.name, entry.key, path) else { valid = false; continue }
            let canonical = Self.collapsingStars(name)
            if let line = seen[canonical] {
                error("model.duplicate", entry.key, path, "model \(Self.quoted(name)) matches the same names as the entry on line \(line)")
                valid = false
                continue
            }
            seen[canonical] = entry.key.mark.line
            guard let route = decodeModel(entry, name: name, path, upstreamNames: upstreamNames) else { valid = false; continue }
            routes.append(route)
        }
        return valid ? routes : nil
    }

    private mutating func decodeModel(
        _ entry: Entry, name: String, _ path: String, upstreamNames: Set<String>
    ) -> Configuration.ModelRoute? {
        guard let fields = entries(entry.value, path, nullIsEmpty: false) else { return nil }
        warnUnknown(fields, known: Self.modelKeys, path)
        var upstream: String?
        if let node = required("upstream", fields, in: entry.value, path), let text = string(node, Self.join(path, "upstream")) {
            if upstreamNames.contains(text) {
                upstream = text
            } else {
                error(
                    "model.upstream_unknown", node, Self.join(path, "upstream"),
                    "upstream \(Self.quoted(text)) is not configured in upstreams")
            }
        }
        var upstreamModel: String?
        var valid = true
        if let node = fields.first(where: { $0.name == "model" })?.value {
            let modelPath = Self.join(path, "model")
            if let text = string(node, modelPath) {
                if text.trimmingWhitespace.isEmpty {
                    error("model.target_blank", node, modelPath, "must not be blank when given")
                    valid = false
                } else {
                    upstreamModel = text
                }
            } else {
                valid = false
            }
        }
        guard let upstream, valid else { return nil }
        return Configuration.ModelRoute(name: name, upstream: upstream, upstreamModel: upstreamModel)
    }

    /// A model name or pattern as a client would send it: not blank, not only `*`s when it is a
    /// key's pattern (that is `models` left out), at most `maxModelNameBytes`.
    private mutating func modelName(_ name: String, _ node: YAMLNode, _ path: String) -> String? {
        if node.isNull || name.trimmingWhitespace.isEmpty {
            error("model.name_blank", node, path, "a model name or pattern must not be empty or blank")
            return nil
        }
        if name.utf8.count > Configuration.maxModelNameBytes {
            error(
                "model.name_too_long", node, path,
                "must be at most \(Configuration.maxModelNameBytes) bytes (a client's longer name is never matched)")
            return nil
        }
        return name
    }

    /// `api_keys.static[].models`: names and patterns. nil after an error.
    mutating func decodeKeyModels(_ node: YAMLNode, _ path: String) -> [String]? {
        guard let items = items(node, path) else { return nil }
        var names: [String] = []
        var valid = true
        for (position, item) in items.enumerated() {
            let itemPath = "\(path)[\(position)]"
            guard let text = string(item, itemPath) else { valid = false; continue }
            guard let name = modelName(text, item, itemPath) else { valid = false; continue }
            names.append(name)
        }
        return valid ? names : nil
    }

    static func collapsingStars(_ name: String) -> String {
        var out = ""
        var previousStar = false
        for c in name {
            if c == "*" && previousStar { continue }
            previousStar = c == "*"
            out.append(c)
        }
        return out
    }
}
