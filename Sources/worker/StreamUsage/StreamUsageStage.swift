import NIOCore

/// `stream_usage: inject` on the request (docs/usage.md "stream_usage: inject"): after the route
/// (its upstream has the key; the pipeline calls this stage only then), a `POST` to a path
/// ending in `/completions` (Chat Completions and Completions) has its body read whole, up to
/// `RequestPipeline.maxBodyPeekBytes` (model routing's bound), and edited as
/// `StreamUsageRequest` decides. A larger body is forwarded unchanged, and its stream too.
enum StreamUsageStage {
    static func run(_ request: PipelineRequest, head: RequestHead) -> StageVerdict {
        guard case .POST = head.method, head.facts.framing != .none, head.isCompletionsPath else { return .proceed }
        let limit = RequestPipeline.maxBodyPeekBytes
        if head.facts.framing == .contentLength, head.facts.contentLength > limit { return .proceed }
        guard let body = request.body, request.bodyComplete || body.readableBytes >= limit else {
            return .needBody(bytes: limit)
        }
        guard request.bodyComplete else { return .proceed }
        let decision = body.withUnsafeReadableBytes { StreamUsageRequest.decide($0) }
        guard case .inject(let edits) = decision else { return .proceed }
        request.replaceCollectedBody(with: BodySplice.apply(edits, to: body, allocator: ByteBufferAllocator()), head: head)
        request.injectedStreamUsage = true
        return .proceed
    }
}

extension RequestHead {
    /// The path (without the query) ends in `/completions`: `/v1/chat/completions`,
    /// `/v1/completions`, and the same below any prefix (Azure's `…/deployments/x/…`).
    var isCompletionsPath: Bool {
        headerBytes.withUnsafeReadableBytes { all in
            let bytes = UnsafeRawBufferPointer(rebasing: all[target])
            guard let target = RequestTarget(bytes) else { return false }
            let path = bytes[target.path]
            let suffix = "/completions".utf8
            return path.count >= suffix.count && path.suffix(suffix.count).elementsEqual(suffix)
        }
    }
}
