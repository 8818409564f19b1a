import Common

// The `observability` section (docs/configuration.md "observability", docs/observability.md).
extension ConfigDecoder {
    static let observabilityKeys: Set<String> = ["listen", "propagate_request_id"]

    mutating func decodeObservability(_ node: YAMLNode, server: Configuration.Server?) -> Configuration.Observability? {
        // A null `observability:` is the same as an absent one: no listener.
        if node.isNull { return Configuration.Observability() }
        guard let entries = entries(node, "observability") else { return nil }
        warnUnknown(entries, known: Self.observabilityKeys, "observability")
        var observability = Configuration.Observability()
        var valid = true
        for entry in entries {
            let path = Self.join("observability", entry.name)
            switch entry.name {
            case "listen":
                if entry.value.isNull { break }
                guard let address = bindAddress(entry.value, path) else {
                    valid = false
                    continue
                }
                if let server, Self.overlaps(address, server.bindAddress) {
                    error(
                        "observability.listen_conflict", entry.value, path,
                        "\(address) is the proxy's own listener (server.bind_address \(server.bindAddress)); use another port")
                    valid = false
                }
                observability.listen = address
            case "propagate_request_id":
                if let value = boolean(entry.value, path) { observability.propagateRequestID = value } else { valid = false }
            default:
                break
            }
        }
        return valid ? observability : nil
    }

    /// Two listeners that cannot both be bound: the same port on the same address, or on a
    /// wildcard address of the same family (port 0 picks a free port and never clashes).
    static func overlaps(_ a: BindAddress, _ b: BindAddress) -> Bool {
        guard a.port == b.port, a.port != 0 else { return false }
        let wildcard: Set<String> = ["0.0.0.0", "::"]
        return a.host == b.host || (a.family == b.family && (wildcard.contains(a.host) || wildcard.contains(b.host)))
    }

    /// A plain `true` or `false` (YAML 1.2 core schema; `yes`/`no` are strings, and rejected).
    mutating func boolean(_ node: YAMLNode, _ path: String) -> Bool? {
        if let scalar = node.scalar, scalar.style == .plain || scalar.tag == "tag:yaml.org,2002:bool" {
            switch scalar.value {
            case "true", "True", "TRUE": return true
            case "false", "False", "FALSE": return false
            default: break
            }
        }
        typeError(node, path, expected: "true or false")
        return nil
    }
}
