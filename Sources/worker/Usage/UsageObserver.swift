/// The usage reader on the response tap (`ResponseObserver`) for the requests of one client
/// connection whose upstream has `usage: auto` (docs/usage.md). It reads the relayed payload where
/// it lies and holds nothing back; its result is in the request's facts when the request ends
/// (`WorkerContext.requestEnded`), for the request line and whoever settles on the counts.
///
/// One per connection, reused request after request (`begin`, `finish`): its reader is a
/// kilobyte of state that is reset in place rather than built and copied for every response.
final class UsageObserver: ResponseObserver {
    private var reader = UsageReader()
    /// The worker's model names (`WorkerContext.usageModelNames`).
    private let names: UsageModelNames
    /// Between `begin` and `finish`: calls from an exchange that has ended are ignored.
    private var active = false
    /// A response head came.
    private var reading = false

    init(names: UsageModelNames = UsageModelNames()) {
        self.names = names
    }

    /// A request is forwarded: its response is the next to read.
    func begin() {
        active = true
        reading = false
    }

    func responseHead(_ facts: ResponseFacts) {
        guard active else { return }
        // A retried exchange reports the head of the response it relays: that one is read.
        reading = true
        let head = facts.head
        // Most responses have no `Content-Encoding`: no call to read one.
        var coding = UsageReader.ContentCoding.identity
        if facts.fields.hasContentEncoding, let range = facts.fields.contentEncoding {
            coding = .init(headerValue: UnsafeRawBufferPointer(rebasing: head[range]))
        }
        reader.restart(
            status: facts.status,
            contentType: .init(headerValue: facts.fields.contentType.map { UnsafeRawBufferPointer(rebasing: head[$0]) }),
            contentEncoding: coding)
    }

    func responsePayload(_ bytes: UnsafeRawBufferPointer) {
        guard reading else { return }
        reader.feed(bytes)
    }

    func responseEnded(complete: Bool) {
        guard reading else { return }
        reader.stop(complete: complete)
    }

    /// The usage of the response once the request has ended: nil when no response head came (the
    /// proxy answered, or the upstream never did). A response still open counts as cut. The
    /// result is made here, once (the reader holds no `UsageResult` between calls).
    func finish() -> UsageResult? {
        active = false
        guard reading else { return nil }
        reading = false
        return reader.end(complete: false, names: names)
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

    /// Either, or both paired, or nil. (Inlined: the usual `usage` alone is handed on as it
    /// came, without a retain of its own and the caller's release.)
    @inline(__always)
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
