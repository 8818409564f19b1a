import Common

/// Behaviour §4, built once per configuration snapshot: routes sorted longest prefix first so the
/// first permitted match wins.
struct Router: Sendable {
    /// A class: a match hands it to the exchange with one retain instead of copying the
    /// upstream's strings.
    final class Route: Sendable {
        /// Position in `Configuration.Upstreams.entries` (the index used by `UpstreamSet`).
        let index: Int
        /// `request_path` without trailing `/`; `""` for `/`, which matches every path.
        let prefix: String
        let upstream: Configuration.Upstream
        /// `target_url`'s `scheme://host[:port]`, built once here: `TargetURL.origin` formats it
        /// on every call, and the request log and the connection pool need it for every request.
        let origin: String
        /// The `Host` header sent upstream, built once for the same reason.
        let hostHeader: String

        init(index: Int, prefix: String, upstream: Configuration.Upstream) {
            self.index = index
            self.prefix = prefix
            self.upstream = upstream
            self.origin = upstream.targetURL.origin
            self.hostHeader = upstream.targetURL.hostHeader
        }
    }

    struct Match: Sendable {
        var route: Route
        /// `target_url`'s base path + `/` + the remainder + `?query` when the request has one.
        var targetPathAndQuery: String

        var upstream: Configuration.Upstream { route.upstream }
        /// The full target URL, for the request log.
        var targetURL: String { route.origin + targetPathAndQuery }
    }

    enum Outcome: Sendable {
        case matched(Match)
        /// No permitted upstream's prefix covers the path → 404.
        case noRoute
        /// A `.`/`..` segment or an unroutable request-target → 400.
        case invalidPath
    }

    private let routes: [Route]

    init(upstreams: [Configuration.Upstream]) {
        let routes = upstreams.enumerated().map { index, upstream in
            Route(index: index, prefix: Self.normalise(upstream.requestPath), upstream: upstream)
        }
        // Stable order for equal lengths: validation makes prefixes unique, so ties cannot match
        // the same path anyway.
        self.routes = routes.enumerated()
            .sorted { ($0.element.prefix.utf8.count, -$0.offset) > ($1.element.prefix.utf8.count, -$1.offset) }
            .map(\.element)
    }

    var isEmpty: Bool { routes.isEmpty }

    func route(uri: String, permitted: UpstreamSet) -> Outcome {
        guard let target = RequestTarget(uri: uri), !target.hasDotSegment else { return .invalidPath }
        return route(target, permitted: permitted)
    }

    func route(_ target: RequestTarget, permitted: UpstreamSet) -> Outcome {
        for route in routes where permitted.contains(route.index) {
            guard let remainder = Self.remainder(of: target.path, after: route.prefix) else { continue }
            let path = Self.targetPath(base: route.upstream.targetURL.basePath, remainder: remainder, query: target.query)
            return .matched(Match(route: route, targetPathAndQuery: path))
        }
        return .noRoute
    }

    /// The path after `prefix` with its leading `/` removed, when `prefix` ends at a segment
    /// boundary of `path` (behaviour §4 [differs]: `/api` does not capture `/api-admin`).
    static func remainder(of path: Substring, after prefix: String) -> Substring? {
        guard ASCIIBytes.hasPrefix(path, prefix) else { return nil }
        let utf8 = path.utf8
        let end = utf8.index(utf8.startIndex, offsetBy: prefix.utf8.count)
        if end == utf8.endIndex { return path[end...] }
        guard utf8[end] == UInt8(ascii: "/") else { return nil }
        return path[utf8.index(after: end)...]
    }

    /// `base` + `/` + `remainder` + `?query`, in one allocation (appending a `Substring` to a
    /// `String` piece by piece cost about 1,500 instructions per request).
    static func targetPath(base: String, remainder: Substring, query: Substring?) -> String {
        let count = base.utf8.count + 1 + remainder.utf8.count + (query.map { 1 + $0.utf8.count } ?? 0)
        return String(unsafeUninitializedCapacity: count) { out in
            var at = 0
            func copy(_ piece: some StringProtocol) {
                let copied: Void? = piece.utf8.withContiguousStorageIfAvailable { bytes in
                    UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(out)[at..<at + bytes.count])
                        .copyMemory(from: UnsafeRawBufferPointer(bytes))
                    at += bytes.count
                }
                if copied == nil {
                    for byte in piece.utf8 {
                        out[at] = byte
                        at += 1
                    }
                }
            }
            copy(base)
            out[at] = UInt8(ascii: "/")
            at += 1
            copy(remainder)
            if let query {
                out[at] = UInt8(ascii: "?")
                at += 1
                copy(query)
            }
            return at
        }
    }

    static func normalise(_ requestPath: String) -> String {
        var prefix = Substring(requestPath)
        while prefix.hasSuffix("/") { prefix = prefix.dropLast() }
        return String(prefix)
    }
}
