import Common
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// docs/routing-and-forwarding.md "Routing", built once per configuration snapshot: routes sorted
/// longest prefix first so the first permitted match wins.
struct Router: Sendable {
    /// A class: a match hands it to the exchange with one retain instead of copying the
    /// upstream's strings.
    final class Route: Sendable {
        /// Position in `Configuration.Upstreams.entries` (the index used by `UpstreamSet`).
        let index: Int
        /// The upstream's series key for the metrics' `upstream` label (`MetricsSchema.key`).
        let metricKey: Int64
        /// `request_path` without trailing `/`; `""` for `/`, which matches every path.
        let prefix: String
        let upstream: Configuration.Upstream
        /// The upstream's first target: where every request of a one-target upstream goes.
        let target: UpstreamTarget
        /// Every target of the upstream, and the choice among them.
        let group: TargetGroup
        /// The `fallback` upstreams' targets, in order.
        let fallbacks: [TargetGroup]
        /// More than one target may serve a request (several targets or a fallback): the
        /// exchange chooses and keeps health. False keeps the one-target path as it was.
        let failover: Bool
        /// Tries in all (`retry.attempts` or its default).
        let maxTries: Int
        /// `retry.on`, as the exchange reads it.
        let retryRules: RetryRules
        /// `retry.attempt_timeout_ms`, when set.
        let attemptTimeout: TimeAmount?
        /// `prefix`'s bytes, compared per request.
        let prefixBytes: [UInt8]
        /// `stream_usage: inject` (docs/usage.md): read per request, so kept apart from `upstream`.
        let injectsStreamUsage: Bool

        init(index: Int, prefix: String, upstream: Configuration.Upstream, group: TargetGroup, fallbacks: [TargetGroup]) {
            self.index = index
            self.metricKey = MetricsSchema.key(upstream.name)
            self.prefix = prefix
            self.upstream = upstream
            self.group = group
            self.target = group.targets[0]
            self.fallbacks = fallbacks
            self.maxTries = upstream.maxAttempts
            self.retryRules = RetryRules(upstream.retry.on)
            self.failover = group.targets.count > 1 || !fallbacks.isEmpty || maxTries > 1
            self.attemptTimeout = upstream.retry.attemptTimeoutMs.map { .milliseconds(Int64(clamping: $0)) }
            self.prefixBytes = Array(prefix.utf8)
            self.injectsStreamUsage = upstream.streamUsage == .inject
        }
    }

    /// A route and where its pieces of the upstream request-target are in the client's:
    /// `target_url`'s base path + `/` + the remainder + `?query` when the request has one.
    /// Offsets into the request-target's bytes, so a match makes no string.
    struct Match: Sendable {
        var route: Route
        var remainder: Range<Int>
        var query: Range<Int>?

        var upstream: Configuration.Upstream { route.upstream }

        /// Bytes of the upstream request-target on `upstreamTarget`.
        func targetByteCount(on upstreamTarget: UpstreamTarget) -> Int {
            upstreamTarget.basePathBytes.count + 1 + remainder.count + (query.map { 1 + $0.count } ?? 0)
        }

        /// Writes the upstream request-target on `upstreamTarget`, reading the pieces from
        /// `target` (the client's).
        func writeTarget(on upstreamTarget: UpstreamTarget, from target: UnsafeRawBufferPointer, into out: inout HeadWriter) {
            upstreamTarget.basePathBytes.withUnsafeBytes { out.write($0) }
            out.write("/")
            out.write(UnsafeRawBufferPointer(rebasing: target[remainder]))
            if let query {
                out.write("?")
                out.write(UnsafeRawBufferPointer(rebasing: target[query]))
            }
        }

        /// The full target URL on `upstreamTarget` (the route's own by default), for the request
        /// log; `uri` is the client's request-target.
        func targetURL(uri: String, on upstreamTarget: UpstreamTarget? = nil) -> String {
            var uri = uri
            return uri.withUTF8 {
                withTargetURL(target: UnsafeRawBufferPointer($0), on: upstreamTarget) { String(decoding: $0, as: UTF8.self) }
            }
        }

        /// Calls `body` with the full target URL's bytes on `upstreamTarget` (the route's own by
        /// default), written on the stack: the request line writes them as they are, and no
        /// string is made (`target` is the client's request-target).
        func withTargetURL<R>(
            target: UnsafeRawBufferPointer, on upstreamTarget: UpstreamTarget? = nil, _ body: (UnsafeRawBufferPointer) -> R
        ) -> R {
            let upstreamTarget = upstreamTarget ?? route.target
            let origin = upstreamTarget.origin
            return withUnsafeTemporaryAllocation(byteCount: origin.utf8.count + targetByteCount(on: upstreamTarget), alignment: 1) {
                bytes in
                var out = HeadWriter(bytes)
                out.write(string: origin)
                writeTarget(on: upstreamTarget, from: target, into: &out)
                return body(UnsafeRawBufferPointer(rebasing: bytes[..<out.count]))
            }
        }
    }

    enum Outcome: Sendable {
        case matched(Match)
        /// No permitted upstream's prefix covers the path → 404, or model routing: `target` is
        /// the request-target, parsed, so the model stage does not parse it again, and
        /// `endpoint` the model endpoint its method and path are (read with the head's bytes at
        /// hand: `Router.modelEndpoint(method:path:)`).
        case noRoute(target: RequestTarget, endpoint: ModelEndpoint?)
        /// A `.`/`..` segment or an unroutable request-target → 400.
        case invalidPath
    }

    /// Longest prefix first (internal for `Router+Models.swift`).
    let routes: [Route]
    /// Each upstream's route by its position in `Configuration.Upstreams.entries`: a model's
    /// entry holds its upstream's (`ModelTable.Entry.route`), found by index, not by a search of
    /// `routes`.
    let routeByUpstream: [Route?]
    /// The routes' prefixes in the same order, as plain values over one block of bytes: the
    /// prefix loop touches no `Route` (a retain and a release of each route it passed, and of
    /// each prefix's array, cost ~50 instructions a route per request).
    private let prefixes: [Prefix]
    private let prefixBlock: [UInt8]

    private struct Prefix {
        /// The route's `index` (`UpstreamSet`).
        var upstream: Int
        /// Its prefix's bytes in `prefixBlock`.
        var bytes: Range<Int>
    }

    init(upstreams: [Configuration.Upstream], requestTimeoutMs: UInt64 = Configuration.Defaults.requestTimeoutMs) {
        var groups: [String: TargetGroup] = [:]
        for upstream in upstreams {
            groups[upstream.name] = TargetGroup(upstream, attemptTimeoutMs: upstream.retry.attemptTimeoutMs ?? requestTimeoutMs)
        }
        let routes = upstreams.enumerated().map { index, upstream in
            Route(
                index: index, prefix: Self.normalise(upstream.requestPath), upstream: upstream,
                group: groups[upstream.name]!, fallbacks: upstream.fallback.compactMap { groups[$0] })
        }
        // Stable order for equal lengths: validation makes prefixes unique, so ties cannot match
        // the same path anyway.
        self.routes = routes.enumerated()
            .sorted { ($0.element.prefix.utf8.count, -$0.offset) > ($1.element.prefix.utf8.count, -$1.offset) }
            .map(\.element)
        var byUpstream = [Route?](repeating: nil, count: upstreams.count)
        for route in routes { byUpstream[route.index] = route }
        routeByUpstream = byUpstream
        var block: [UInt8] = []
        prefixes = self.routes.map { route in
            let start = block.count
            block += route.prefixBytes
            return Prefix(upstream: route.index, bytes: start..<block.count)
        }
        prefixBlock = block
    }

    var isEmpty: Bool { routes.isEmpty }

    /// Routes on the request-target's bytes: no `Substring` and no `String` is made (the
    /// string version cost about 3,700 instructions per request).
    func route(_ request: RequestHead, permitted: UpstreamSet) -> Outcome {
        request.headerBytes.withUnsafeReadableBytes {
            let bytes = UnsafeRawBufferPointer(rebasing: $0[request.target])
            let outcome = route(target: bytes, permitted: permitted)
            guard case .noRoute(let target, _) = outcome else { return outcome }
            return .noRoute(
                target: target,
                endpoint: Self.modelEndpoint(method: request.method, path: UnsafeRawBufferPointer(rebasing: bytes[target.path])))
        }
    }

    /// The same for a request-target given as text (the routing tests).
    func route(uri: String, permitted: UpstreamSet) -> Outcome {
        var uri = uri
        return uri.withUTF8 { route(target: UnsafeRawBufferPointer($0), permitted: permitted) }
    }

    private func route(target bytes: UnsafeRawBufferPointer, permitted: UpstreamSet) -> Outcome {
        guard let target = RequestTarget(bytes), !target.hasDotSegment(bytes) else { return .invalidPath }
        let path = target.path.isEmpty ? Self.root : UnsafeRawBufferPointer(rebasing: bytes[target.path])
        let found = prefixBlock.withUnsafeBytes { block -> (position: Int, remainder: Range<Int>)? in
            for (position, prefix) in prefixes.enumerated() where permitted.contains(prefix.upstream) {
                guard let remainder = Self.remainder(of: path, after: UnsafeRawBufferPointer(rebasing: block[prefix.bytes])) else {
                    continue
                }
                // An empty remainder may point into `root`: its position does not matter.
                let start = remainder.isEmpty ? 0 : bytes.baseAddress!.distance(to: remainder.baseAddress!)
                return (position, start..<start + remainder.count)
            }
            return nil
        }
        guard let found else { return .noRoute(target: target, endpoint: nil) }
        return .matched(Match(route: routes[found.position], remainder: found.remainder, query: target.query))
    }

    /// `/`, in the binary's constant data.
    private static var root: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: ("/" as StaticString).utf8Start, count: 1) }

    /// The path after `prefix` with its leading `/` removed, when `prefix` ends at a segment
    /// boundary of `path` (docs/routing-and-forwarding.md "Differences from Fluxgate": `/api` does
    /// not capture `/api-admin`).
    static func remainder(of path: UnsafeRawBufferPointer, after prefix: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let count = prefix.count
        guard path.count >= count else { return nil }
        if count > 0 {
            // The segment boundary and the prefix's last byte first: most routes a path passes
            // fail there, without the call to memcmp.
            guard count == path.count || path[count] == UInt8(ascii: "/"), path[count &- 1] == prefix[count &- 1],
                memcmp(path.baseAddress!, prefix.baseAddress!, count) == 0
            else { return nil }
        }
        if count == path.count { return UnsafeRawBufferPointer(rebasing: path[count...]) }
        guard path[count] == UInt8(ascii: "/") else { return nil }
        return UnsafeRawBufferPointer(rebasing: path[(count + 1)...])
    }

    static func normalise(_ requestPath: String) -> String {
        var prefix = Substring(requestPath)
        while prefix.hasSuffix("/") { prefix = prefix.dropLast() }
        return String(prefix)
    }
}
