import NIOCore

/// The one way a stage changes a request body it collected (docs/routing-and-forwarding.md
/// "Model routing" for the rename, docs/usage.md "stream_usage: inject"): byte ranges of the
/// collected bytes replaced by other bytes, every other byte copied unchanged. What follows the
/// collected bytes is still the client's, streamed as it comes; a `Content-Length` body gets the
/// new length, a chunked one is chunked again on its way up (`ProxyExchange`), so both framings
/// carry the edited bytes.
enum BodySplice {
    /// `range` (offsets into the body's readable bytes; empty for an insertion) becomes `bytes`.
    struct Edit: Equatable {
        var range: Range<Int>
        var bytes: [UInt8]

        init(range: Range<Int>, bytes: [UInt8]) {
            self.range = range
            self.bytes = bytes
        }

        init(inserting text: String, at offset: Int) {
            self.init(range: offset..<offset, bytes: Array(text.utf8))
        }

        init(replacing range: Range<Int>, with text: String) {
            self.init(range: range, bytes: Array(text.utf8))
        }
    }

    /// `body` with `edits` made; they are in order and do not overlap.
    static func apply(_ edits: [Edit], to body: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        let growth = edits.reduce(0) { $0 + $1.bytes.count - $1.range.count }
        var out = allocator.buffer(capacity: body.readableBytes + growth)
        let start = body.readerIndex
        var copied = 0
        for edit in edits {
            precondition(edit.range.lowerBound >= copied && edit.range.upperBound <= body.readableBytes, "edits out of order")
            out.writeImmutableBuffer(body.getSlice(at: start + copied, length: edit.range.lowerBound - copied)!)
            out.writeBytes(edit.bytes)
            copied = edit.range.upperBound
        }
        out.writeImmutableBuffer(body.getSlice(at: start + copied, length: body.readableBytes - copied)!)
        return out
    }
}

extension PipelineRequest {
    /// The collected body (`body`) replaced by `edited`, which goes upstream in its place; with
    /// `Content-Length` framing the length sent upstream follows (`forwardedLength`).
    func replaceCollectedBody(with edited: ByteBuffer, head: RequestHead) {
        guard let body else { return }
        if head.facts.framing == .contentLength {
            forwardedLength = (forwardedLength ?? head.facts.contentLength) - body.readableBytes + edited.readableBytes
        }
        emptyBodyParts()
        bodyTakenWhole = false
        bodyParts.append(edited)
        self.body = edited
    }
}
