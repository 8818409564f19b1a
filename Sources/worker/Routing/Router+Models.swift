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

    /// Which model endpoint a request with `method` and `path` (its request-target's path, the
    /// query aside) is for, if any. The six paths have six lengths: the length picks the one
    /// candidate, compared with one `memcmp` (a generic `elementsEqual` over the six cost ~300
    /// instructions per request, a loop over an array of them ~110 with its retains).
    static func modelEndpoint(method: HTTPMethod, path: UnsafeRawBufferPointer) -> ModelEndpoint? {
        // Case patterns: `HTTPMethod`'s `==` builds both raw-value strings.
        switch method {
        case .GET: return equals(path, "/v1/models") ? .listing : nil
        case .POST: break
        default: return nil
        }
        let candidate: StaticString
        switch path.count {
        case 20: candidate = "/v1/chat/completions"
        case 15: candidate = "/v1/completions"
        case 14: candidate = "/v1/embeddings"
        case 13: candidate = "/v1/responses"
        case 12: candidate = "/v1/messages"
        case 25: candidate = "/v1/messages/count_tokens"
        default: return nil
        }
        return equals(path, candidate) ? .routedByModel : nil
    }

    /// By whole words, inlined (`ModelNameIndex.equalWords`: every candidate is 10 bytes or
    /// more): a `memcmp` call cost ~20 instructions more per model-routed request.
    @inline(__always)
    private static func equals(_ path: UnsafeRawBufferPointer, _ candidate: StaticString) -> Bool {
        guard path.count == candidate.utf8CodeUnitCount, let base = path.baseAddress else { return false }
        return ModelNameIndex.equalWords(base, candidate.utf8Start, count: path.count)
    }

    /// The request whose request-target is `target` (as the prefix routing parsed it) routed to
    /// `route` (a model's upstream's, `ModelTable.Entry.route`) with its path unchanged: the
    /// upstream receives `target_url`'s base path + the path + the query.
    static func match(route: Route, target: RequestTarget) -> Match? {
        guard target.path.count > 1 else { return nil }
        // `writeTarget` puts the `/` back between the base path and the remainder.
        return Match(route: route, remainder: (target.path.lowerBound + 1)..<target.path.upperBound, query: target.query)
    }
}
