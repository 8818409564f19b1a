import Common
import NIOCore

/// What model routing decided for a request (docs/routing-and-forwarding.md "Model routing"),
/// for forwarding and the request's facts.
struct ModelDecision {
    /// The name the client sent; nil when longer than `Configuration.maxModelNameBytes` (never
    /// matched, never logged).
    var name: String?
    /// Answered 404 `model_not_found` (unknown, or not the key's): the metric
    /// `fluxgate_rejected_requests_total{reason="unknown_model"}` counts these.
    var notFound = false
}

/// Step 8's second half: a request no `request_path` matched, on one of the model endpoints,
/// when `models:` is configured. A `POST` is routed by its body's top-level `model`, read only as
/// far as that member (`ModelMember`, asking the connection for a longer prefix of the body each
/// time, up to `RequestPipeline.maxBodyPeekBytes`); `GET /v1/models` is answered here. Entered
/// from `RouteStage` on no match only, so a request a prefix routes pays nothing for it.
enum ModelRouteStage {
    /// The first prefix asked for: most request bodies are smaller, and a body whose `model`
    /// comes after a long `messages` gets twice as much each time.
    static let firstPeekBytes = 16 * 1024

    /// `table` is the snapshot's `models` (read from the route stage's snapshot: each read through
    /// the request retained it), `target` the request's request-target, as the prefix routing
    /// parsed it, and
    /// `endpoint` the model endpoint it is for (`Router.modelEndpoint(method:path:)`);
    /// `bodySource` the connection, for a body at hand (`RequestPipeline.run`). The caller's
    /// upstreams are `request.permitted` (the route stage found them there).
    static func run(
        _ request: PipelineRequest, head: RequestHead, table: ModelTable, target: RequestTarget,
        endpoint: Router.ModelEndpoint?, bodySource: PipelineBodySource?
    )
        -> StageVerdict
    {
        guard let endpoint, !table.isEmpty else { return .reject(.noRoute) }
        switch endpoint {
        case .listing:
            let entries = table.listing(staticKey: request.staticKey, permitted: request.permitted!)
            return .reject(.document(ModelListing.body(entries, anthropic: head.hasAnthropicVersion)))
        case .routedByModel:
            return routeByBody(request, head: head, target: target, table: table, bodySource: bodySource)
        }
    }

    /// A `POST` to a model endpoint: the top-level `model` of the body's first bytes, asking
    /// for more until it is known. A body at hand (it came whole with its head) is taken from
    /// the connection at once, so the request is routed in the pass that found no prefix.
    /// `target` is the request's, parsed; `table` the snapshot's `models`; the caller's upstreams
    /// `request.permitted` (never nil here: the route stage checked).
    static func routeByBody(
        _ request: PipelineRequest, head: RequestHead, target: RequestTarget, table: ModelTable, bodySource: PipelineBodySource?
    )
        -> StageVerdict
    {
        if request.body == nil, bodySource?.bodyAtHand(request, head: head, bytes: firstPeekBytes) != true {
            request.modelTarget = target
            return .needBody(bytes: firstPeekBytes)
        }
        // Moved out of the request for its read and back after it: read through the request, its
        // storage was retained and released around the read.
        let body = request.body.take()!
        // The SDKs' shape with one of the few configured names: the literal and the entry at once,
        // with no pass over the name (`ModelTable.leadingExact`). A closure of its own, small
        // enough to be inlined: with the search below in it, it was called (~30 instructions).
        // The whole body: a form (at most 267 bytes) lies within the first 1 MiB.
        let leading = body.withUnsafeReadableBytes { table.leadingExact($0) }
        request.body = consume body
        guard let leading else { return routeBySearch(request, head: head, target: target, table: table) }
        if let route = table.plainRoute(leading.position) {
            return routedPlainly(request, target: target, route: route, position: leading.position, table: table)
        }
        let entry = table.exact[leading.position]
        return routed(request, head: head, target: target, literal: leading.literal, name: entry.name, entry: entry, table: table)
    }

    /// `routeByBody` for a body that does not start with an exact name's SDK form: the top-level
    /// `model` searched, its name decoded when it has to be. Out of line: the usual request's
    /// stage stays a small function (its frame and spills, docs/performance.md "session 16,
    /// gateway").
    @inline(never)
    private static func routeBySearch(
        _ request: PipelineRequest, head: RequestHead, target: RequestTarget, table: ModelTable
    ) -> StageVerdict {
        // Where the literal is (quotes included), and what the search found as a plain number
        // (`Found`): an enum of the name and the entry was copied out of the closure and destroyed
        // (~100 instructions of retains and releases), and a name captured by it was released on
        // every request.
        var literal = 0..<0
        let body = request.body.take()!
        let have = body.readableBytes
        // Exactly the first 1 MiB is searched, however much the last read brought. The body is
        // read where it lies, not copied.
        let found = body.withUnsafeReadableBytes { all -> Int in
            let bytes = UnsafeRawBufferPointer(rebasing: all[..<min(all.count, RequestPipeline.maxBodyPeekBytes)])
            // The SDKs' shape has no escape in the name (`leadingModel`): not searched again.
            let plain: Bool
            if let range = ModelMember.leadingModel(bytes) {
                literal = range
                plain = true
            } else {
                switch ModelMember.locate(in: bytes) {
                case .literal(let range): literal = range
                case .other(.needMore): return Found.needMore
                case .other: return Found.missing
                }
                plain = false
            }
            let inner = UnsafeRawBufferPointer(rebasing: bytes[(literal.lowerBound + 1)..<(literal.upperBound - 1)])
            // An exact name as the configuration spells it: its entry's text is the name.
            if plain || !ModelMember.hasBackslash(inner), let position = table.exactPosition(inner) { return position }
            return Found.decoded
        }
        request.body = consume body
        if found >= 0 {
            if let route = table.plainRoute(found) {
                return routedPlainly(request, target: target, route: route, position: found, table: table)
            }
            let entry = table.exact[found]
            return routed(request, head: head, target: target, literal: literal, name: entry.name, entry: entry, table: table)
        }
        switch found {
        case Found.decoded:
            // An escape, or not an exact name: its text, decoded (invalid JSON text is no string).
            guard
                let name = request.body!.withUnsafeReadableBytes({
                    ModelMember.decode(UnsafeRawBufferPointer(rebasing: $0[literal]))
                })
            else { return .reject(.modelMissing) }
            return routed(
                request, head: head, target: target, literal: literal, name: name, entry: table.entry(for: name), table: table)
        case Found.needMore:
            if have >= RequestPipeline.maxBodyPeekBytes { return .reject(.modelBeyondLimit) }
            if request.bodyComplete { return .reject(.modelMissing) }
            request.modelTarget = target
            return .needBody(bytes: min(2 * max(have, firstPeekBytes), RequestPipeline.maxBodyPeekBytes))
        default:
            return .reject(.modelMissing)
        }
    }

    /// What `routeByBody`'s search found when not an exact entry's position (0 or more).
    private enum Found {
        /// The literal's text is to be decoded (an escape, or not an exact name).
        static let decoded = -1
        /// The bytes end before the answer is known.
        static let needMore = -2
        /// No top-level string `model` (not an object, none, not a string, broken grammar).
        static let missing = -3
    }

    /// `routed` for the exact entry at `position` of a plain route (`ModelTable.plainRoute`):
    /// the same decision from plain values, with no `Entry` retained and passed along.
    @inline(__always)
    private static func routedPlainly(
        _ request: PipelineRequest, target: RequestTarget, route: Router.Route, position: Int, table: ModelTable
    ) -> StageVerdict {
        // An exact name is never longer than `Configuration.maxModelNameBytes` (`exactPosition`).
        request.model = ModelDecision(name: table.exactName(position))
        guard request.permitted!.contains(table.exactUpstream(position)), let match = Router.match(route: route, target: target)
        else {
            request.model?.notFound = true
            return .reject(.modelNotFound)
        }
        request.match = match
        return .proceed
    }

    @inline(never)
    private static func routed(
        _ request: PipelineRequest, head: RequestHead, target: RequestTarget, literal: Range<Int>, name: String,
        entry: ModelTable.Entry?, table: ModelTable
    ) -> StageVerdict {
        // Longer names are never matched, and not logged.
        request.model = ModelDecision(name: name.utf8.count <= Configuration.maxModelNameBytes ? name : nil)
        guard let entry, let route = entry.route,
            table.allows(name, entry, staticKey: request.staticKey, permitted: request.permitted!),
            let match = Router.match(route: route, target: target)
        else {
            request.model?.notFound = true
            return .reject(.modelNotFound)
        }
        request.match = match
        if let upstreamModel = entry.upstreamModel, upstreamModel != name {
            let renamed = ModelRename.splice(request.body!, literal: literal, with: upstreamModel, allocator: ByteBufferAllocator())
            request.replaceCollectedBody(with: renamed, head: head)
        }
        return .proceed
    }
}

extension RequestHead {
    /// The request carries `anthropic-version` (the Anthropic SDK always sends it).
    var hasAnthropicVersion: Bool {
        headerBytes.withUnsafeReadableBytes { bytes in
            fields.contains { ASCIIBytes.equals(bytes, $0.name, lowercase: "anthropic-version") }
        }
    }
}
