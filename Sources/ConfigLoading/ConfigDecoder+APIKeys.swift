import Common

// The `api_keys` section: static client keys and JWT signing keys (docs/configuration.md "Keys",
// docs/authentication.md "Client credentials"). Every message here names a key by its index and
// id, never by its value (docs/configuration.md "Differences from Fluxgate").
extension ConfigDecoder {
    static let apiKeysKeys: Set<String> = ["static", "jwt"]
    static let staticKeyKeys: Set<String> = ["id", "key", "upstreams", "limits", "models"]
    static let jwtKeyKeys: Set<String> = ["id", "key", "limits"]
    /// HMAC-SHA256 wants a key at least as long as its output (RFC 7518 §3.2).
    static let minJWTKeyBytes = 32

    struct DecodedAPIKeys {
        var keys: Configuration.APIKeys?
        /// Entries written in `api_keys.static`, valid or not: `upstreams.*.api_key` depends on it.
        var staticCount = 0
        var upstreamReferences: [(name: String, node: YAMLNode, path: String)] = []
    }

    mutating func decodeAPIKeys(_ node: YAMLNode) -> DecodedAPIKeys {
        guard let entries = entries(node, "api_keys") else { return DecodedAPIKeys(keys: nil) }
        warnUnknown(entries, known: Self.apiKeysKeys, "api_keys")
        var result = DecodedAPIKeys(keys: Configuration.APIKeys())
        var valid = true
        if let list = entries.first(where: { $0.name == "static" }) {
            if let items = items(list.value, "api_keys.static") {
                result.staticCount = items.count
                if let keys = decodeStaticKeys(items, &result.upstreamReferences) {
                    result.keys?.staticKeys = keys
                } else {
                    valid = false
                }
            } else {
                valid = false
            }
        }
        if let list = entries.first(where: { $0.name == "jwt" }) {
            if let items = items(list.value, "api_keys.jwt"), let keys = decodeJWTKeys(items) {
                result.keys?.jwt = keys
            } else {
                valid = false
            }
        }
        if !valid { result.keys = nil }
        return result
    }

    /// " (id \"x\")" when the entry has a usable id, for messages that point at another entry.
    private static func named(_ id: String?) -> String { id.map { " (id \"\($0)\")" } ?? "" }

    private mutating func decodeStaticKeys(
        _ items: [YAMLNode], _ references: inout [(name: String, node: YAMLNode, path: String)]
    ) -> [Configuration.StaticKey]? {
        var keys: [Configuration.StaticKey] = []
        var valid = true
        var seenKeys: [String: (index: Int, id: String?)] = [:]
        var seenIDs: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let path = "api_keys.static[\(index)]"
            guard let fields = entries(item, path, nullIsEmpty: false) else { valid = false; continue }
            warnUnknown(fields, known: Self.staticKeyKeys, path)
            var entryValid = true

            var id: String?
            if let node = fields.first(where: { $0.name == "id" })?.value {
                entryValid = false
                if let text = string(node, "\(path).id") {
                    if text.trimmingWhitespace.isEmpty {
                        error("static_id.blank", node, "\(path).id", "must not be blank when given")
                    } else if let first = seenIDs[text] {
                        error("static_id.duplicate", node, "\(path).id", "id \"\(text)\" is already used by api_keys.static[\(first)]")
                    } else {
                        seenIDs[text] = index
                        id = text
                        entryValid = true
                    }
                }
            }

            var key: Secret?
            if let node = required("key", fields, in: item, path), let text = string(node, "\(path).key") {
                let secret = Secret(text)
                if secret.isBlank {
                    error("static_key.blank", node, "\(path).key", "must not be blank")
                } else if let first = seenKeys[text] {
                    error(
                        "static_key.duplicate", node, "\(path).key",
                        "duplicates the key of api_keys.static[\(first.index)]\(Self.named(first.id))")
                } else {
                    seenKeys[text] = (index, id)
                    key = secret
                }
            }

            var upstreams: [String] = []
            if let node = fields.first(where: { $0.name == "upstreams" })?.value {
                if let names = self.items(node, "\(path).upstreams") {
                    for (position, nameNode) in names.enumerated() {
                        let namePath = "\(path).upstreams[\(position)]"
                        guard let name = string(nameNode, namePath) else { entryValid = false; continue }
                        upstreams.append(name)
                        references.append((name, nameNode, namePath))
                    }
                } else {
                    entryValid = false
                }
            }
            let limits = optionalLimits(fields, path)
            if case .some(.some) = limits, id == nil, entryValid {
                // Limits are kept by key id (docs/rate-limits.md): without one they have no name.
                error("limits.needs_id", item, "\(path).limits", "limits need the key to have an id")
                entryValid = false
            }
            var models: [String]?
            if let node = fields.first(where: { $0.name == "models" })?.value {
                models = decodeKeyModels(node, "\(path).models")
                if models == nil { entryValid = false }
            }
            if let key, entryValid, let limits {
                keys.append(Configuration.StaticKey(id: id, key: key, upstreams: upstreams, limits: limits, models: models))
            } else {
                valid = false
            }
        }
        return valid ? keys : nil
    }

    private mutating func decodeJWTKeys(_ items: [YAMLNode]) -> [Configuration.JWTKey]? {
        var keys: [Configuration.JWTKey] = []
        var valid = true
        var seenIDs: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let path = "api_keys.jwt[\(index)]"
            guard let fields = entries(item, path, nullIsEmpty: false) else { valid = false; continue }
            warnUnknown(fields, known: Self.jwtKeyKeys, path)

            var id: String?
            if let node = required("id", fields, in: item, path), let text = string(node, "\(path).id") {
                if text.trimmingWhitespace.isEmpty {
                    error("jwt_id.blank", node, "\(path).id", "must not be blank")
                } else if let first = seenIDs[text] {
                    error("jwt_id.duplicate", node, "\(path).id", "id \"\(text)\" is already used by api_keys.jwt[\(first)]")
                } else {
                    seenIDs[text] = index
                    id = text
                }
            }

            var key: Secret?
            if let node = required("key", fields, in: item, path), let text = string(node, "\(path).key") {
                let secret = Secret(text)
                if secret.isBlank {
                    error("jwt_key.blank", node, "\(path).key", "must not be blank")
                } else if text.utf8.count < Self.minJWTKeyBytes {
                    error(
                        "jwt_key.too_short", node, "\(path).key",
                        "must be at least \(Self.minJWTKeyBytes) bytes for HMAC-SHA256, found \(text.utf8.count)")
                } else {
                    key = secret
                }
            }
            if let id, let key, let limits = optionalLimits(fields, path) {
                keys.append(Configuration.JWTKey(id: id, key: key, limits: limits))
            } else {
                valid = false
            }
        }
        return valid ? keys : nil
    }
}
