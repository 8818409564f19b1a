import NIOCore

/// Changes the body an upstream response relays to the client, where a key says so (the only one:
/// `stream_usage: inject`, docs/usage.md). Without one the reader relays the body byte for byte as
/// framed; with one that accepts the response, the reader gives it the payload (no chunk framing)
/// and chunks what it writes, so the client gets a chunked body. The observer (`ResponseObserver`)
/// still sees the upstream's payload, unfiltered.
///
/// Only bodies the reader frames by chunks or by the close are offered: a `Content-Length` body is
/// relayed as is (its length went out with the head).
protocol ResponseBodyFilter: AnyObject {
    /// A final response head came (`head` is its bytes, `fields` where the headers are): true to
    /// filter its body. Starts the filter afresh either way (a retried exchange reads another).
    func accepts(status: UInt, head: ByteBuffer, fields: ResponseFacts.Fields) -> Bool
    /// The next payload bytes; what the client gets of them (maybe none, maybe bytes held from
    /// earlier calls) is appended to `out`.
    func filter(_ payload: UnsafeRawBufferPointer, into out: inout ByteBuffer)
    /// The body is complete: whatever is still held goes to `out`.
    func finish(into out: inout ByteBuffer)
}
