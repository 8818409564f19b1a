import Common

// The `upstreams` section: two reserved timeout keys, every other key an upstream
// (docs/configuration.md "Keys").
extension ConfigDecoder {
    static let reservedUpstreamsKeys: Set<String> = ["request_timeout_ms", "stream_idle_timeout_ms"]
    static let upstreamKeys: Set<String> = [
        "target_url", "api_key", "request_path", "api_key_header", "tls_ca_file", "usage", "limits",
        "stream_usage",
    ]
    /// Timeouts become NIO `TimeAmount`s (Int64 nanoseconds): a larger value would trap there.
    static let maxTimeoutMs = UInt64(Int64.max / 1_000_000)

    struct DecodedUpstreams {
        /// nil when any part had an error.
        var upstreams: Configuration.Upstreams?
        /// Every configured name, valid or not, for the `api_keys.static[].upstreams` check.
        var names: Set<String> = []
    }

    mutating func decodeUpstreams(_ node: YAMLNode, staticKeysExist: Bool) -> DecodedUpstreams {
        guard let entries = entries(node, "upstreams") else { return DecodedUpstreams(upstreams: nil) }
        var result = Configuration.Upstreams()
        var valid = true
        var names: Set<String> = []
        // Normalised request_path -> the upstream that has it, for the uniqueness rule.
        var claimed: [String: (name: String, line: Int)] = [:]
        var fallbackNodes: [String: YAMLNode] = [:]
        for entry in entries {
            let path = Self.join("upstreams", entry.name)
            switch entry.name {
            case "request_timeout_ms":
                if let value = positive(entry.value, path, max: Self.maxTimeoutMs) {
                    result.requestTimeoutMs = value
                } else {
                    valid = false
                }
            case "stream_idle_timeout_ms":
                if let value = positive(entry.value, path, max: Self.maxTimeoutMs) {
                    result.streamIdleTimeoutMs = value
                } else {
                    valid = false
                }
            default:
                names.insert(entry.name)
                guard !entry.key.isNull, !entry.name.trimmingWhitespace.isEmpty else {
                    error("upstream.name_blank", entry.key, "upstreams.\"\(entry.name)\"", "an upstream name must not be blank")
                    valid = false
                    continue
                }
                guard let upstream = decodeUpstream(entry, path, staticKeysExist: staticKeysExist) else {
                    valid = false
                    continue
                }
                // `/api/` and `/api` route the same requests (docs/routing-and-forwarding.md
                // "Routing"), so they collide.
                let normalised = String(upstream.requestPath.reversed().drop { $0 == "/" }.reversed())
                let pathNode = requestPathNode(entry) ?? entry.value
                if let first = claimed[normalised] {
                    error(
                        "request_path.duplicate", pathNode, Self.join(path, "request_path"),
                        "request_path \"\(upstream.requestPath)\" is already used by upstream \"\(first.name)\" (line \(first.line))")
                    valid = false
                } else {
                    claimed[normalised] = (entry.name, pathNode.mark.line)
                }
                result.entries.append(upstream)
                if let node = Self.field("fallback", of: entry) { fallbackNodes[entry.name] = node }
            }
        }
        if !checkFallbacks(result.entries, names: names, nodes: fallbackNodes) { valid = false }
        return DecodedUpstreams(upstreams: valid ? result : nil, names: names)
    }

    private func requestPathNode(_ entry: Entry) -> YAMLNode? { Self.field("request_path", of: entry) }

    static func field(_ name: String, of entry: Entry) -> YAMLNode? {
        guard case .mapping(let pairs) = entry.value.content else { return nil }
        return pairs.first { $0.key.scalar?.value == name }?.value
    }

    mutating func decodeUpstream(_ entry: Entry, _ path: String, staticKeysExist: Bool) -> Configuration.Upstream? {
        guard let fields = entries(entry.value, path, nullIsEmpty: false) else { return nil }
        warnUnknown(fields, known: Self.upstreamKeys.union(Self.failoverUpstreamKeys), path)
        let container = entry.value
        func field(_ name: String) -> YAMLNode? { fields.first { $0.name == name }?.value }

        // The upstream's api_key_header and tls_ca_file are its targets' defaults.
        var headerValid = true
        var header = Configuration.Defaults.apiKeyHeader
        if let node = field("api_key_header") {
            if let value = authHeader(node, Self.join(path, "api_key_header")) { header = value } else { headerValid = false }
        }
        var tlsCA: Configuration.TrustedCA?
        var caValid = true
        if let node = field("tls_ca_file"), !node.isNull {
            tlsCA = decodeTrustedCA(node, Self.join(path, "tls_ca_file"))
            caValid = tlsCA != nil
        }
        let defaults = TargetDefaults(apiKeyHeader: header, tlsCA: tlsCA, tlsCANode: field("tls_ca_file"), staticKeysExist: staticKeysExist)
        let targets: [Configuration.Target]?
        if let node = field("targets") {
            targets = decodeTargets(node, fields, path, defaults: defaults)
        } else {
            targets = decodeTarget(fields, in: container, path, defaults: defaults).map { [$0] }
        }
        var requestPath: String?
        if let node = required("request_path", fields, in: container, path),
            let text = string(node, Self.join(path, "request_path"))
        {
            requestPath = checkedRequestPath(text, node, Self.join(path, "request_path"))
        }
        let failover = decodeFailoverKeys(fields, path)
        let usage = decodeUsageMode(fields, path)
        let limits = optionalLimits(fields, path)
        let streamUsage = decodeStreamUsageMode(fields, path, usage: usage)
        guard let targets, let requestPath, headerValid, caValid, let failover, let usage, let limits, let first = targets.first,
            let streamUsage
        else {
            return nil
        }
        var upstream = Configuration.Upstream(
            name: entry.name, targetURL: first.targetURL, apiKey: first.apiKey,
            requestPath: requestPath, apiKeyHeader: header, tlsCA: tlsCA,
            targets: targets, retry: failover.retry, health: failover.health, fallback: failover.fallback, usage: usage,
            limits: limits)
        upstream.streamUsage = streamUsage
        return upstream
    }

    /// Fluxgate's request_path rules, on the trimmed value; the first rule broken is reported.
    mutating func checkedRequestPath(_ raw: String, _ node: YAMLNode, _ path: String) -> String? {
        let text = raw.trimmingWhitespace
        let problem: (code: String, message: String)?
        if text.isEmpty {
            problem = ("request_path.blank", "must not be blank")
        } else if !text.hasPrefix("/") {
            problem = ("request_path.not_absolute", "\"\(text)\" must start with \"/\"")
        } else if text.contains("://") {
            problem = ("request_path.contains_scheme", "\"\(text)\" must be a path, not a URL (it contains \"://\")")
        } else if text.contains("?") {
            problem = ("request_path.contains_query", "\"\(text)\" must not contain a query (\"?\")")
        } else if Self.hasPort(text) {
            problem = ("request_path.contains_port", "\"\(text)\" must not contain a port (\":\" followed by a digit)")
        } else {
            problem = nil
        }
        if let problem {
            error(problem.code, node, path, problem.message)
            return nil
        }
        return text
    }

    private static func hasPort(_ text: String) -> Bool {
        var previousIsColon = false
        for c in text {
            if previousIsColon, c.isASCIIDigit { return true }
            previousIsColon = c == ":"
        }
        return false
    }
}
