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
    /// The body's length once renamed, when the upstream's name differs in length: the
    /// `Content-Length` sent upstream.
    var forwardedLength: Int?
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
        // Exactly the first 1 MiB is searched, however much the last read brought.
        let searched = body.withUnsafeReadableBytes {
            ModelMember.find(in: UnsafeRawBufferPointer(rebasing: $0.prefix(RequestPipeline.maxBodyPeekBytes)))
        }
        switch searched {
        case .found(let literal, let name):
            return routed(request, head: head, permitted: permitted, target: target, body: body, literal: literal, name: name)
        case .needMore:
            let have = body.readableBytes
            if have >= RequestPipeline.maxBodyPeekBytes { return .reject(.modelBeyondLimit) }
            if request.bodyComplete { return .reject(.modelMissing) }
            return .needBody(bytes: min(2 * max(have, firstPeekBytes), RequestPipeline.maxBodyPeekBytes))
        case .notAnObject, .missing, .notAString, .invalid:
            return .reject(.modelMissing)
        }
    }

    private static func routed(
        _ request: PipelineRequest, head: RequestHead, permitted: UpstreamSet, target: RequestTarget, body: ByteBuffer,
        literal: Range<Int>, name: String
    ) -> StageVerdict {
        let table = request.snapshot.models
        // Longer names are never matched, and not logged.
        request.model = ModelDecision(name: name.utf8.count <= Configuration.maxModelNameBytes ? name : nil)
        guard let entry = table.entry(for: name), table.allows(name, entry, staticKey: request.staticKey, permitted: permitted),
            let match = request.snapshot.router.match(upstream: entry.upstream, target: target)
        else {
            request.model?.notFound = true
            return .reject(.modelNotFound)
        }
        request.match = match
        if let upstreamModel = entry.upstreamModel, upstreamModel != name {
            let renamed = ModelRename.splice(body, literal: literal, with: upstreamModel, allocator: ByteBufferAllocator())
            // What follows the collected bytes is still the client's, streamed as it comes.
            request.bodyParts.removeAll(keepingCapacity: true)
            request.bodyParts.append(renamed)
            if head.facts.framing == .contentLength {
                request.model?.forwardedLength = head.facts.contentLength - body.readableBytes + renamed.readableBytes
            }
            request.body = renamed
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
