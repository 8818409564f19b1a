import Common
#if canImport(Glibc)
import Glibc
#endif

extension TargetURL {
    /// Why a `target_url` was refused: a stable code and a message that never repeats the URL
    /// (it may carry `user:password@`).
    struct ParseProblem: Error, Equatable {
        var code: String
        var message: String
    }

    /// Parses `scheme://host[:port][/path][?query]`, scheme `http`/`https` in any case, host a
    /// reg-name, IPv4 or `[IPv6]` literal. Refuses userinfo and fragments, which a proxy target
    /// has no use for and which most often mean a pasted credential or a copy-paste mistake.
    static func parse(_ raw: String) -> Result<TargetURL, ParseProblem> {
        func fail(_ code: String, _ message: String) -> Result<TargetURL, ParseProblem> {
            .failure(ParseProblem(code: code, message: message))
        }
        let text = raw.trimmingWhitespace
        guard !text.isEmpty else { return fail("target_url.blank", "must not be blank") }
        guard let separator = text.firstRange(of: "://") else {
            return fail("target_url.invalid", "must be an absolute URL such as https://api.openai.com")
        }
        let schemeText = text[..<separator.lowerBound].lowercased()
        guard let scheme = Scheme(rawValue: schemeText) else {
            return fail(
                "target_url.scheme",
                schemeText.isEmpty || !schemeText.allSatisfy(\.isASCII)
                    ? "must be an absolute URL such as https://api.openai.com"
                    : "scheme \"\(schemeText)\" is not supported; use http or https")
        }
        guard !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            return fail("target_url.invalid", "must not contain spaces or control characters")
        }
        var rest = text[separator.upperBound...]
        if rest.contains("#") { return fail("target_url.fragment", "must not contain a fragment (#...)") }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        rest = rest[authorityEnd...]
        if authority.contains("@") {
            return fail(
                "target_url.userinfo",
                "must not contain credentials (user:password@); put the provider key in api_key")
        }
        let hostPort: (host: String, port: Substring?)
        switch splitHostPort(authority) {
        case .success(let value): hostPort = value
        case .failure(let problem): return .failure(problem)
        }
        var port: UInt16?
        if let digits = hostPort.port, !digits.isEmpty {  // `http://h:/` means the default port (RFC 3986 §3.2.3)
            guard digits.count <= 5, digits.allSatisfy(\.isASCIIDigit), let value = Int(digits),
                (1...65535).contains(value)
            else {
                return fail("target_url.port", "port must be a number from 1 to 65535")
            }
            port = UInt16(value)
        }
        var path = Substring(rest), query: String?
        if let mark = rest.firstIndex(of: "?") {
            path = rest[..<mark]
            query = String(rest[rest.index(after: mark)...])
        }
        while path.hasSuffix("/") { path = path.dropLast() }
        return .success(
            TargetURL(
                scheme: scheme, host: hostPort.host, explicitPort: port,
                basePath: String(path), query: query))
    }

    private static func splitHostPort(_ authority: Substring) -> Result<(host: String, port: Substring?), ParseProblem> {
        let missing = ParseProblem(code: "target_url.missing_host", message: "must name a host (https://host...)")
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                return .failure(ParseProblem(code: "target_url.invalid", message: "IPv6 address is missing its \"]\""))
            }
            let host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":") else {
                return .failure(ParseProblem(code: "target_url.invalid", message: "unexpected text after the IPv6 address"))
            }
            var storage = in6_addr()
            guard host.withCString({ inet_pton(AF_INET6, $0, &storage) }) == 1 else {
                return .failure(ParseProblem(code: "target_url.invalid", message: "host is not a valid IPv6 address"))
            }
            return .success((host.lowercased(), after.isEmpty ? nil : after.dropFirst()))
        }
        let colon = authority.firstIndex(of: ":")
        let host = String(authority[..<(colon ?? authority.endIndex)]).lowercased()
        let port = colon.map { authority[authority.index(after: $0)...] }
        guard !host.isEmpty else { return .failure(missing) }
        let allowed = host.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x2E || c == 0x5F || c == 0x7E
        }
        guard allowed else {
            return .failure(
                ParseProblem(
                    code: "target_url.invalid",
                    message: "host may contain only letters, digits, \"-\", \".\", \"_\" and \"~\""))
        }
        // All digits and dots looks like IPv4 and must be one (as WHATWG URL parsing decides).
        if host.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E }) {
            var storage = in_addr()
            guard host.withCString({ inet_pton(AF_INET, $0, &storage) }) == 1 else {
                return .failure(ParseProblem(code: "target_url.invalid", message: "host is not a valid IPv4 address"))
            }
        }
        return .success((host, port))
    }
}

extension StringProtocol {
    /// Without leading and trailing white space (YAML values are Unicode; Foundation is not needed).
    var trimmingWhitespace: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }),
            let last = lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return String(self[first...last])
    }
}
