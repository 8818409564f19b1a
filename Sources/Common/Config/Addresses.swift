#if canImport(Glibc)
import Glibc
#endif

/// A literal listening address: `a.b.c.d:port` or `[ipv6]:port` (docs/configuration.md "Keys": no
/// host names, so a value that validates can always be bound, unlike Fluxgate's `localhost:8080`).
public struct BindAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Family: String, Sendable, Hashable, Codable { case ipv4, ipv6 }

    /// The address without brackets, as written (`127.0.0.1`, `::1`).
    public let host: String
    public let port: UInt16
    public let family: Family

    public init?(parsing text: String) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let port = Self.parsePort(rest.dropFirst()),
                Self.isLiteral(host, family: AF_INET6)
            else { return nil }
            self.host = host
            self.port = port
            self.family = .ipv6
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            let host = String(text[..<colon])
            guard let port = Self.parsePort(text[text.index(after: colon)...]),
                Self.isLiteral(host, family: AF_INET)
            else { return nil }
            self.host = host
            self.port = port
            self.family = .ipv4
        }
    }

    public var description: String {
        family == .ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    private static func parsePort(_ digits: Substring) -> UInt16? {
        guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy(\.isASCIIDigit) else { return nil }
        return UInt16(digits)
    }

    private static func isLiteral(_ host: String, family: Int32) -> Bool {
        var storage = in6_addr()
        return host.withCString { inet_pton(family, $0, &storage) } == 1
    }
}

/// An upstream's `target_url`, split once at load so the hot path never parses it.
public struct TargetURL: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Scheme: String, Sendable, Hashable, Codable { case http, https }

    public let scheme: Scheme
    /// Lower-cased host name or IP literal, without brackets.
    public let host: String
    /// The port written in the URL, if any.
    public let explicitPort: UInt16?
    /// The URL's path with trailing `/` removed (`""` for none).
    public let basePath: String
    /// The URL's query without `?`, if any (replaced by the request's query when forwarding).
    public let query: String?

    public init(scheme: Scheme, host: String, explicitPort: UInt16?, basePath: String, query: String?) {
        self.scheme = scheme
        self.host = host
        self.explicitPort = explicitPort
        self.basePath = basePath
        self.query = query
    }

    public var port: UInt16 { explicitPort ?? (scheme == .https ? 443 : 80) }

    /// `Host` header value: `:port` only when it is not the scheme's default
    /// (docs/routing-and-forwarding.md "Request (client → upstream)").
    public var hostHeader: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        if let p = explicitPort, p != (scheme == .https ? 443 : 80) { return "\(bracketed):\(p)" }
        return bracketed
    }

    /// `scheme://host[:port]`: the key of a connection pool.
    public var origin: String { "\(scheme.rawValue)://\(hostHeader)" }

    public var description: String {
        origin + basePath + (query.map { "?\($0)" } ?? "")
    }
}

extension Character {
    package var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
