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

    /// `target` is the request's request-target, as the prefix routing parsed it.
    static func run(
        _ request: PipelineRequest, head: RequestHead, permitted: UpstreamSet, target: RequestTarget
    )
        -> StageVerdict
    {
        let snapshot = request.snapshot
        guard !snapshot.models.isEmpty, let endpoint = Router.modelEndpoint(head, target: target) else {
            return .reject(.noRoute)
        }
        switch endpoint {
        case .listing:
            let entries = snapshot.models.listing(staticKey: request.staticKey, permitted: permitted)
            return .reject(.document(ModelListing.body(entries, anthropic: head.hasAnthropicVersion)))
        case .routedByModel:
            request.modelTarget = target
            return routeByBody(request, head: head, permitted: permitted, target: target)
        }
    }

    /// A `POST` to a model endpoint: the top-level `model` of the body's first bytes, asking
    /// for more until it is known.
    /// `target` is the request's, parsed.
    static func routeByBody(
        _ request: PipelineRequest, head: RequestHead, permitted: UpstreamSet, target: RequestTarget
    )
        -> StageVerdict
    {
        guard let body = request.body else { return .needBody(bytes: firstPeekBytes) }
        let snapshot = request.snapshot
        let table = snapshot.models
        // Exactly the first 1 MiB is searched, however much the last read brought.
        let searched = body.withUnsafeReadableBytes { all -> Searched in
            let bytes = UnsafeRawBufferPointer(rebasing: all[..<min(all.count, RequestPipeline.maxBodyPeekBytes)])
            let literal: Range<Int>
            switch ModelMember.locate(in: bytes) {
            case .literal(let range): literal = range
            case .other(let outcome): return .other(outcome)
            }
            let inner = UnsafeRawBufferPointer(rebasing: bytes[(literal.lowerBound + 1)..<(literal.upperBound - 1)])
            // An exact name as the configuration spells it: its entry's text is the name.
            if !ModelMember.hasBackslash(inner), let entry = table.exactEntry(inner) {
                return .found(literal: literal, name: entry.name, entry: entry)
            }
            guard let name = ModelMember.decode(UnsafeRawBufferPointer(rebasing: bytes[literal])) else {
                return .other(.notAString)
            }
            return .found(literal: literal, name: name, entry: nil)
        }
        switch searched {
        case .found(let literal, let name, let entry):
            return routed(
                request, head: head, permitted: permitted, target: target, body: body, literal: literal, name: name,
                entry: entry ?? table.entry(for: name), snapshot: snapshot)
        case .other(.needMore):
            let have = body.readableBytes
            if have >= RequestPipeline.maxBodyPeekBytes { return .reject(.modelBeyondLimit) }
            if request.bodyComplete { return .reject(.modelMissing) }
            return .needBody(bytes: min(2 * max(have, firstPeekBytes), RequestPipeline.maxBodyPeekBytes))
        case .other:
            return .reject(.modelMissing)
        }
    }

    /// What the body's search found: the name (and its exact entry, looked up by its bytes), or
    /// the search's other outcome (never `found`).
    private enum Searched {
        case found(literal: Range<Int>, name: String, entry: ModelTable.Entry?)
        case other(ModelMember.Outcome)
    }

    private static func routed(
        _ request: PipelineRequest, head: RequestHead, permitted: UpstreamSet, target: RequestTarget, body: ByteBuffer,
        literal: Range<Int>, name: String, entry: ModelTable.Entry?, snapshot: WorkerSnapshot
    ) -> StageVerdict {
        let table = snapshot.models
        // Longer names are never matched, and not logged.
        request.model = ModelDecision(name: name.utf8.count <= Configuration.maxModelNameBytes ? name : nil)
        guard let entry, table.allows(name, entry, staticKey: request.staticKey, permitted: permitted),
            let match = snapshot.router.match(upstream: entry.upstream, target: target)
        else {
            request.model?.notFound = true
            return .reject(.modelNotFound)
        }
        request.match = match
        if let upstreamModel = entry.upstreamModel, upstreamModel != name {
            let renamed = ModelRename.splice(body, literal: literal, with: upstreamModel, allocator: ByteBufferAllocator())
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
