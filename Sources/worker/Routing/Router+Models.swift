import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// The paths of docs/routing-and-forwarding.md "Model routing": where no `request_path`
/// matched, these are routed by the body's `model` (the `POST`s) or answered by the proxy
/// (`GET /v1/models`).
extension Router {
    enum ModelEndpoint: Equatable {
        /// A `POST` routed by its body's `model`.
        case routedByModel
        /// `GET /v1/models`, answered from `models:`.
        case listing
    }

    static let modelRoutedPaths: [[UInt8]] = [
        "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/messages",
        "/v1/messages/count_tokens",
    ].map { Array($0.utf8) }
    static let modelListingPath = Array("/v1/models".utf8)

    /// Which model endpoint the request is for, if any (the path exactly, the query aside);
    /// `target` is its request-target, parsed.
    static func modelEndpoint(_ request: RequestHead, target: RequestTarget) -> ModelEndpoint? {
        // Case patterns: `HTTPMethod`'s `==` builds both raw-value strings.
        let isGET: Bool
        switch request.method {
        case .GET: isGET = true
        case .POST: isGET = false
        default: return nil
        }
        return request.headerBytes.withUnsafeReadableBytes { all in
            let bytes = UnsafeRawBufferPointer(rebasing: all[request.target])
            let path = UnsafeRawBufferPointer(rebasing: bytes[target.path])
            if isGET { return equals(path, modelListingPath) ? .listing : nil }
            // By length first: one `memcmp` at most (a generic `elementsEqual` over the six
            // paths cost ~300 instructions per request).
            for candidate in modelRoutedPaths where equals(path, candidate) { return .routedByModel }
            return nil
        }
    }

    private static func equals(_ path: UnsafeRawBufferPointer, _ candidate: [UInt8]) -> Bool {
        guard path.count == candidate.count, let base = path.baseAddress else { return false }
        return candidate.withUnsafeBytes { memcmp(base, $0.baseAddress!, path.count) == 0 }
    }

    /// The request whose request-target is `target` (as `modelEndpoint` parsed it) routed to
    /// the upstream at `index` (a position in `Configuration.Upstreams.entries`) with its path
    /// unchanged: the upstream receives `target_url`'s base path + the path + the query.
    func match(upstream index: Int, target: RequestTarget) -> Match? {
        guard target.path.count > 1, let route = routes.first(where: { $0.index == index }) else { return nil }
        // `writeTarget` puts the `/` back between the base path and the remainder.
        return Match(route: route, remainder: (target.path.lowerBound + 1)..<target.path.upperBound, query: target.query)
    }
}
