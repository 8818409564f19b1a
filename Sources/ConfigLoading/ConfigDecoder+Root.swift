import Common

// The root mapping and the `server` section (docs/configuration.md "Keys", "Validation").
extension ConfigDecoder {
    static let rootKeys: Set<String> = ["version", "server", "upstreams", "api_keys", "observability", "rate_limits", "models"]
    static let serverKeys: Set<String> = ["bind_address", "max_connections", "workers", "tls"]
    static let maxWorkers = 1024

    /// The whole file. Returns nil when a part could not be decoded; the loader also drops the
    /// value whenever any error was reported, so a partial configuration never escapes.
    mutating func decode(_ root: YAMLNode) -> Configuration? {
        guard case .mapping = root.content, let entries = entries(root, "", nullIsEmpty: false) else {
            error(
                "root.not_mapping", root, "",
                "the configuration must be a mapping with version, server, upstreams and api_keys, found \(root.kindDescription)")
            return nil
        }
        warnUnknown(entries, known: Self.rootKeys, "")
        func section(_ name: String) -> YAMLNode? { entries.first { $0.name == name }?.value }

        var version: Int?
        if let node = required("version", entries, in: root, ""),
            let value = unsigned(node, "version", max: UInt64(Int32.max))
        {
            if value == 1 {
                version = 1
            } else {
                error("version.unsupported", node, "version", "must be 1 (the only version of this format), found \(value)")
            }
        }
        var server: Configuration.Server? = Configuration.Server()
        if let node = section("server") { server = decodeServer(node) }
        var keys = DecodedAPIKeys(keys: Configuration.APIKeys())
        if let node = section("api_keys") { keys = decodeAPIKeys(node) }
        var upstreams = DecodedUpstreams(upstreams: Configuration.Upstreams())
        if let node = section("upstreams") { upstreams = decodeUpstreams(node, staticKeysExist: keys.staticCount > 0) }
        // Checked once both sections are read; an upstream that has errors of its own still counts
        // as configured, so that one mistake is not reported twice.
        for reference in keys.upstreamReferences where !upstreams.names.contains(reference.name) {
            error(
                "static_upstreams.unknown", reference.node, reference.path,
                "upstream \"\(reference.name)\" is not configured in upstreams")
        }
        var observability: Configuration.Observability? = Configuration.Observability()
        if let node = section("observability") { observability = decodeObservability(node, server: server) }
        var rateLimits: Configuration.RateLimits?? = .some(nil)
        if let node = section("rate_limits"), !node.isNull { rateLimits = decodeRateLimits(node).map { $0 } }
        if let apiKeys = keys.keys { checkLimitNames(apiKeys, root) }
        var models: [Configuration.ModelRoute]? = []
        if let node = section("models") { models = decodeModels(node, upstreamNames: upstreams.names) }
        guard let version, let server, let apiKeys = keys.keys, let upstreams = upstreams.upstreams, let observability,
            let rateLimits, let models
        else {
            return nil
        }
        return Configuration(
            version: version, server: server, upstreams: upstreams, apiKeys: apiKeys, observability: observability,
            rateLimits: rateLimits, models: models)
    }

    mutating func decodeServer(_ node: YAMLNode) -> Configuration.Server? {
        guard let entries = entries(node, "server") else { return nil }
        warnUnknown(entries, known: Self.serverKeys, "server")
        var server = Configuration.Server()
        var valid = true
        for entry in entries {
            let path = Self.join("server", entry.name)
            switch entry.name {
            case "bind_address":
                if let value = bindAddress(entry.value, path) { server.bindAddress = value } else { valid = false }
            case "max_connections":
                if let value = positive(entry.value, path, max: UInt64(UInt32.max)) {
                    server.maxConnections = UInt32(value)
                } else {
                    valid = false
                }
            case "workers":
                if let value = workers(entry.value, path) { server.workers = value } else { valid = false }
            case "tls":
                // A null `tls:` means plain HTTP, like an absent key.
                if entry.value.isNull { break }
                if let value = decodeServerTLS(entry.value, path) { server.tls = value } else { valid = false }
            default:
                break
            }
        }
        return valid ? server : nil
    }

    /// A literal `ip:port` **[differs]**: Fluxgate accepts `localhost:8080` and fails at start.
    mutating func bindAddress(_ node: YAMLNode, _ path: String) -> BindAddress? {
        guard let raw = string(node, path) else { return nil }
        let text = raw.trimmingWhitespace
        guard !text.isEmpty else {
            error("bind_address.blank", node, path, "must not be blank")
            return nil
        }
        guard text.utf8.count <= 256 else {
            error("bind_address.too_long", node, path, "must be at most 256 bytes")
            return nil
        }
        if let address = BindAddress(parsing: text) { return address }
        let example = "use an IP literal such as 127.0.0.1:8080 or [::1]:8080"
        let reason: String
        if !text.contains(":") {
            reason = "has no port; expected ip:port, e.g. 127.0.0.1:8080"
        } else if !text.hasPrefix("["), text.filter({ $0 == ":" }).count > 1 {
            reason = "is not a valid address; IPv6 addresses need brackets: [::1]:8080"
        } else if let port = text.split(separator: ":").last, !(port.allSatisfy(\.isASCIIDigit) && (UInt16(port) != nil)) {
            reason = "has an invalid port; the port must be a number from 0 to 65535"
        } else if text.contains(where: \.isLetter) && !text.hasPrefix("[") {
            reason = "is not an IP literal; host names are not accepted; \(example)"
        } else {
            reason = "is not a literal ip:port; \(example)"
        }
        error("bind_address.not_literal", node, path, "\"\(text)\" \(reason)")
        return nil
    }

    /// `"auto"` or an integer from 1 to `maxWorkers`.
    mutating func workers(_ node: YAMLNode, _ path: String) -> Configuration.WorkerCount? {
        guard let scalar = node.scalar, !scalar.isNull else {
            typeError(node, path, expected: "\"auto\" or an integer")
            return nil
        }
        if scalar.value == "auto" { return .auto }
        let digits = scalar.value.hasPrefix("+") ? scalar.value.dropFirst() : Substring(scalar.value)
        guard scalar.mayBeInteger, !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit) else {
            error(
                "workers.invalid", node, path, "must be \"auto\" or an integer from 1 to \(Self.maxWorkers), found \(node.kindDescription)")
            return nil
        }
        guard let count = Int(digits), (1...Self.maxWorkers).contains(count) else {
            error("workers.out_of_range", node, path, "must be from 1 to \(Self.maxWorkers)")
            return nil
        }
        return .count(count)
    }

    /// An unsigned integer greater than 0; the code is `<key>.not_positive` when it is 0.
    mutating func positive(_ node: YAMLNode, _ path: String, max: UInt64) -> UInt64? {
        guard let value = unsigned(node, path, max: max) else { return nil }
        guard value > 0 else {
            let key = path.split(separator: ".").last.map(String.init) ?? path
            error("\(key).not_positive", node, path, "must be greater than 0")
            return nil
        }
        return value
    }
}
