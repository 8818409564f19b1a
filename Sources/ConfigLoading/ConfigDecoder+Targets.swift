import Common

// An upstream's targets and failover keys (docs/configuration.md "Keys", docs/routing-and-forwarding.md
// "Several targets"): `targets`, or Fluxgate's `target_url` + `api_key` as a one-target list;
// `retry`, `health` and `fallback`.
extension ConfigDecoder {
    static let failoverUpstreamKeys: Set<String> = ["targets", "retry", "health", "fallback"]
    static let targetKeys: Set<String> = ["target_url", "api_key", "weight", "api_key_header", "tls_ca_file"]
    static let retryKeys: Set<String> = ["attempts", "on", "attempt_timeout_ms", "replay_buffer_bytes"]
    static let healthKeys: Set<String> = ["failures", "cooldown_ms"]
    static let maxAttempts: UInt64 = 10
    /// The shared health cell counts consecutive failures in 8 bits.
    static let maxHealthFailures: UInt64 = 255
    static let maxWeight: UInt64 = 1_000_000
    /// An exchange remembers the targets it tried in one 64-bit mask.
    static let maxTargets = 64

    /// What a target inherits from its upstream.
    struct TargetDefaults {
        var apiKeyHeader: Configuration.UpstreamAuthHeader
        var tlsCA: Configuration.TrustedCA?
        var tlsCANode: YAMLNode?
        var staticKeysExist: Bool
    }

    struct FailoverKeys {
        var retry = Configuration.Retry()
        var health = Configuration.Health()
        var fallback: [String] = []
    }

    /// `targets:`, a non-empty sequence; the upstream must not also have `target_url` / `api_key`.
    mutating func decodeTargets(
        _ node: YAMLNode, _ upstreamFields: [Entry], _ path: String, defaults: TargetDefaults
    ) -> [Configuration.Target]? {
        let listPath = Self.join(path, "targets")
        var valid = true
        for entry in upstreamFields where entry.name == "target_url" || entry.name == "api_key" {
            error(
                "targets.conflict", entry.key, Self.join(path, entry.name),
                "\"\(entry.name)\" and \"targets\" cannot be used together: put the target in the targets list")
            valid = false
        }
        guard let items = items(node, listPath) else { return nil }
        guard !items.isEmpty else {
            error("targets.empty", node, listPath, "must list at least one target")
            return nil
        }
        guard items.count <= Self.maxTargets else {
            error("targets.too_many", node, listPath, "lists \(items.count) targets; at most \(Self.maxTargets) are supported")
            return nil
        }
        var targets: [Configuration.Target] = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(listPath)[\(index)]"
            guard let fields = entries(item, itemPath, nullIsEmpty: false) else {
                valid = false
                continue
            }
            warnUnknown(fields, known: Self.targetKeys, itemPath)
            if let target = decodeTarget(fields, in: item, itemPath, defaults: defaults, inList: true) {
                targets.append(target)
            } else {
                valid = false
            }
        }
        if valid, defaults.tlsCA != nil, let caNode = defaults.tlsCANode, targets.allSatisfy({ $0.targetURL.scheme == .http }) {
            warning(
                "tls_ca_file.unused", caNode, Self.join(path, "tls_ca_file"),
                "is ignored: every target is http://, and the file only applies to https upstreams")
        }
        return valid ? targets : nil
    }

    /// One target's keys: `target_url` and `api_key` required; in a `targets` list also `weight`,
    /// `api_key_header` and `tls_ca_file`.
    mutating func decodeTarget(
        _ fields: [Entry], in container: YAMLNode, _ path: String, defaults: TargetDefaults, inList: Bool = false
    ) -> Configuration.Target? {
        func field(_ name: String) -> YAMLNode? { fields.first { $0.name == name }?.value }
        var targetURL: TargetURL?
        if let node = required("target_url", fields, in: container, path), let text = string(node, Self.join(path, "target_url")) {
            switch TargetURL.parse(text) {
            case .success(let url): targetURL = url
            case .failure(let problem): error(problem.code, node, Self.join(path, "target_url"), problem.message)
            }
        }
        var apiKey: Secret?
        if let node = required("api_key", fields, in: container, path) {
            apiKey = providerKey(node, Self.join(path, "api_key"), staticKeysExist: defaults.staticKeysExist)
        }
        guard inList else {
            guard let targetURL, let apiKey else { return nil }
            if defaults.tlsCA != nil, let caNode = defaults.tlsCANode, targetURL.scheme == .http {
                // Harmless but surely not what was meant: say so rather than ignore it silently.
                warning(
                    "tls_ca_file.unused", caNode, Self.join(path, "tls_ca_file"),
                    "is ignored: target_url is http://, and the file only applies to https upstreams")
            }
            return Configuration.Target(targetURL: targetURL, apiKey: apiKey, apiKeyHeader: defaults.apiKeyHeader, tlsCA: defaults.tlsCA)
        }
        var valid = true
        var weight = 1
        if let node = field("weight") {
            if let value = positive(node, Self.join(path, "weight"), max: Self.maxWeight) { weight = Int(value) } else { valid = false }
        }
        var header = defaults.apiKeyHeader
        if let node = field("api_key_header") {
            if let value = authHeader(node, Self.join(path, "api_key_header")) { header = value } else { valid = false }
        }
        var tlsCA = defaults.tlsCA
        if let node = field("tls_ca_file"), !node.isNull {
            tlsCA = decodeTrustedCA(node, Self.join(path, "tls_ca_file"))
            if tlsCA == nil {
                valid = false
            } else if targetURL?.scheme == .http {
                warning(
                    "tls_ca_file.unused", node, Self.join(path, "tls_ca_file"),
                    "is ignored: target_url is http://, and the file only applies to https upstreams")
            }
        }
        guard valid, let targetURL, let apiKey else { return nil }
        return Configuration.Target(targetURL: targetURL, apiKey: apiKey, apiKeyHeader: header, tlsCA: tlsCA, weight: weight)
    }

    /// A provider key: a string without control characters, not blank when client keys exist.
    mutating func providerKey(_ node: YAMLNode, _ path: String, staticKeysExist: Bool) -> Secret? {
        guard let text = string(node, path, hint: " (write \"\" for an upstream that needs no key)") else { return nil }
        let key = Secret(text)
        if staticKeysExist, key.isBlank {
            error("api_key.blank", node, path, "must not be blank when api_keys.static has keys")
            return nil
        }
        if text.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }) {
            // The key goes into a request header verbatim: a line break would end the header
            // and start another one.
            error("api_key.invalid", node, path, "must not contain line breaks or other control characters")
            return nil
        }
        return key
    }

    mutating func authHeader(_ node: YAMLNode, _ path: String) -> Configuration.UpstreamAuthHeader? {
        guard let text = string(node, path) else { return nil }
        if let value = Configuration.UpstreamAuthHeader(rawValue: text.trimmingWhitespace.lowercased()) { return value }
        let choices = Configuration.UpstreamAuthHeader.allCases.map(\.rawValue).joined(separator: ", ")
        // The value is not quoted: it may be a misplaced key.
        error("api_key_header.invalid", node, path, "is not supported; use one of \(choices)")
        return nil
    }

    /// `retry`, `health` and `fallback`; nil after an error in any.
    mutating func decodeFailoverKeys(_ fields: [Entry], _ path: String) -> FailoverKeys? {
        var keys = FailoverKeys()
        var valid = true
        for entry in fields {
            let keyPath = Self.join(path, entry.name)
            switch entry.name {
            case "retry":
                if let retry = decodeRetry(entry.value, keyPath) { keys.retry = retry } else { valid = false }
            case "health":
                if let health = decodeHealth(entry.value, keyPath) { keys.health = health } else { valid = false }
            case "fallback":
                if let names = decodeFallbackNames(entry.value, keyPath) { keys.fallback = names } else { valid = false }
            default:
                continue
            }
        }
        return valid ? keys : nil
    }

    private mutating func decodeRetry(_ node: YAMLNode, _ path: String) -> Configuration.Retry? {
        guard let fields = entries(node, path) else { return nil }
        warnUnknown(fields, known: Self.retryKeys, path)
        var retry = Configuration.Retry()
        var valid = true
        for entry in fields {
            let keyPath = Self.join(path, entry.name)
            switch entry.name {
            case "attempts":
                if let n = positive(entry.value, keyPath, max: Self.maxAttempts) { retry.attempts = Int(n) } else { valid = false }
            case "on":
                if let on = decodeRetryOn(entry.value, keyPath) { retry.on = on } else { valid = false }
            case "attempt_timeout_ms":
                if let ms = positive(entry.value, keyPath, max: Self.maxTimeoutMs) { retry.attemptTimeoutMs = ms } else { valid = false }
            case "replay_buffer_bytes":
                if let n = unsigned(entry.value, keyPath, max: UInt64(Int32.max)) {
                    retry.replayBufferBytes = Int(n)
                } else {
                    valid = false
                }
            default:
                continue
            }
        }
        return valid ? retry : nil
    }

    /// `on`: connect, timeout, reset, 429 and 500–599; anything else is an error.
    private mutating func decodeRetryOn(_ node: YAMLNode, _ path: String) -> Configuration.RetryConditions? {
        guard let items = items(node, path) else { return nil }
        var on = Configuration.RetryConditions(connect: false, timeout: false, reset: false, statuses: [])
        var valid = true
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let text = string(item, itemPath)?.trimmingWhitespace.lowercased() else {
                valid = false
                continue
            }
            switch text {
            case "connect": on.connect = true
            case "timeout": on.timeout = true
            case "reset": on.reset = true
            default:
                if let status = UInt16(text), Configuration.RetryConditions.mayRetry(status: status) {
                    on.statuses.insert(status)
                } else {
                    // Not quoted: a bounded vocabulary, and the value may be anything.
                    error(
                        "retry_on.unknown", item, itemPath,
                        "is not a retry condition; use connect, timeout, reset, 429 or a status from 500 to 599")
                    valid = false
                }
            }
        }
        return valid ? on : nil
    }

    private mutating func decodeHealth(_ node: YAMLNode, _ path: String) -> Configuration.Health? {
        guard let fields = entries(node, path) else { return nil }
        warnUnknown(fields, known: Self.healthKeys, path)
        var health = Configuration.Health()
        var valid = true
        for entry in fields {
            let keyPath = Self.join(path, entry.name)
            switch entry.name {
            case "failures":
                if let n = positive(entry.value, keyPath, max: Self.maxHealthFailures) { health.failures = Int(n) } else { valid = false }
            case "cooldown_ms":
                if let ms = positive(entry.value, keyPath, max: Configuration.Health.maxCooldownMs) {
                    health.cooldownMs = ms
                } else {
                    valid = false
                }
            default:
                continue
            }
        }
        return valid ? health : nil
    }

    private mutating func decodeFallbackNames(_ node: YAMLNode, _ path: String) -> [String]? {
        guard let items = items(node, path) else { return nil }
        var names: [String] = []
        for (index, item) in items.enumerated() {
            guard let name = string(item, "\(path)[\(index)]") else { return nil }
            names.append(name)
        }
        return names
    }

    /// Every `fallback` names a configured upstream, and following fallbacks never leads back
    /// to where it started (a cycle would try the same targets again).
    mutating func checkFallbacks(_ upstreams: [Configuration.Upstream], names: Set<String>, nodes: [String: YAMLNode]) -> Bool {
        let byName = Dictionary(upstreams.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var valid = true
        for upstream in upstreams {
            guard !upstream.fallback.isEmpty, let node = nodes[upstream.name] else { continue }
            let path = Self.join(Self.join("upstreams", upstream.name), "fallback")
            for name in upstream.fallback where !names.contains(name) {
                error("fallback.unknown", node, path, "names \(Self.quoted(name)), which is not a configured upstream")
                valid = false
            }
            if let cycle = Self.cycle(from: upstream.name, byName) {
                error("fallback.cycle", node, path, "forms a cycle: \(cycle.map { Self.quoted($0) }.joined(separator: " → "))")
                valid = false
            }
        }
        return valid
    }

    /// A path of fallbacks from `start` back to `start`, if there is one.
    static func cycle(from start: String, _ byName: [String: Configuration.Upstream]) -> [String]? {
        var seen: Set<String> = []
        func walk(_ name: String, _ trail: [String]) -> [String]? {
            for next in byName[name]?.fallback ?? [] {
                if next == start { return trail + [next] }
                guard !seen.contains(next) else { continue }
                seen.insert(next)
                if let found = walk(next, trail + [next]) { return found }
            }
            return nil
        }
        return walk(start, [start])
    }
}
