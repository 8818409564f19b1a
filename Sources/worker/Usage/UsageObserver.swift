/// The usage reader on the response tap (`ResponseObserver`): one per forwarded request of an
/// upstream with `usage: auto` (docs/usage.md). It reads the relayed payload where it lies and
/// holds nothing back; its `result` is in the request's facts when the request ends
/// (`WorkerContext.requestEnded`), for the request line and whoever settles on the counts.
final class UsageObserver: ResponseObserver {
    private var reader: UsageReader?
    private var result: UsageResult?

    func responseHead(_ facts: ResponseFacts) {
        // A retried exchange reports the head of the response it relays: that one is read.
        result = nil
        let fields = facts.fields
        reader = facts.head.withUnsafeReadableBytes { head in
            UsageReader(
                status: facts.status,
                contentType: .init(headerValue: fields.contentType.map { UnsafeRawBufferPointer(rebasing: head[$0]) }),
                contentEncoding: .init(
                    headerValue: fields.contentEncoding.map { UnsafeRawBufferPointer(rebasing: head[$0]) }))
        }
    }

    func responsePayload(_ bytes: UnsafeRawBufferPointer) {
        reader?.feed(bytes)
    }

    func responseEnded(complete: Bool) {
        guard result == nil, reader != nil else { return }
        result = reader!.end(complete: complete)
        reader = nil
    }

    /// The usage of the response, once the request has ended: nil when no response head came (the
    /// proxy answered, or the upstream never did). A response still open counts as cut.
    func finish() -> UsageResult? {
        responseEnded(complete: false)
        return result
    }
}

/// Two observers on one tap (the usage reader and another, such as a test's).
final class ResponseObserverPair: ResponseObserver {
    private let first: ResponseObserver
    private let second: ResponseObserver

    init(_ first: ResponseObserver, _ second: ResponseObserver) {
        self.first = first
        self.second = second
    }

    /// Either, or both paired, or nil.
    static func combining(_ a: ResponseObserver?, _ b: ResponseObserver?) -> ResponseObserver? {
        guard let a else { return b }
        guard let b else { return a }
        return ResponseObserverPair(a, b)
    }

    func responseHead(_ facts: ResponseFacts) {
        first.responseHead(facts)
        second.responseHead(facts)
    }

    func responsePayload(_ bytes: UnsafeRawBufferPointer) {
        first.responsePayload(bytes)
        second.responsePayload(bytes)
    }

    func responseEnded(complete: Bool) {
        first.responseEnded(complete: complete)
        second.responseEnded(complete: complete)
    }
}
