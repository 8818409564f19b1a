import NIOCore
import Testing
@testable import FluxgateWorker

/// docs/usage.md "stream_usage: inject", the request half: which bodies get
/// `stream_options.include_usage: true`, and that the edit changes those bytes only.
@Suite struct StreamUsageRequestTests {
    static func decide(_ text: String) -> StreamUsageRequest.Decision {
        Array(text.utf8).withUnsafeBytes { StreamUsageRequest.decide($0) }
    }

    /// The body as the upstream gets it, or nil when it is left unchanged.
    static func injected(_ text: String) -> String? {
        guard case .inject(let edits) = decide(text) else { return nil }
        let spliced = BodySplice.apply(edits, to: ByteBuffer(string: text), allocator: ByteBufferAllocator())
        return String(buffer: spliced)
    }

    @Test func aStreamThatDidNotAskGetsTheMemberRightAfterStream() {
        #expect(
            Self.injected(#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
                == #"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#)
        #expect(
            Self.injected("{ \"messages\": [],\n  \"stream\" : true }\n")
                == "{ \"messages\": [],\n  \"stream\" : true,\"stream_options\":{\"include_usage\":true} }\n")
    }

    @Test func anExistingStreamOptionsGetsIncludeUsageWithoutASecondMember() {
        #expect(
            Self.injected(#"{"stream":true,"stream_options":{}}"#) == #"{"stream":true,"stream_options":{"include_usage":true}}"#)
        #expect(
            Self.injected(#"{"stream":true,"stream_options":{"continuous_usage_stats":false}}"#)
                == #"{"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":false}}"#)
        #expect(
            Self.injected(#"{"stream_options": {"include_usage": false}, "stream": true}"#)
                == #"{"stream_options": {"include_usage": true}, "stream": true}"#)
        #expect(
            Self.injected(#"{"stream_options":{"include_usage":null},"stream":true}"#)
                == #"{"stream_options":{"include_usage":true},"stream":true}"#)
        #expect(
            Self.injected(#"{"stream":true,"stream_options":null}"#) == #"{"stream":true,"stream_options":{"include_usage":true}}"#)
        // Escaped names are the same members to the upstream.
        #expect(
            Self.injected(#"{"stre\u0061m":true,"stream_opti\u006fns":{"include_usag\u0065":false}}"#)
                == #"{"stre\u0061m":true,"stream_opti\u006fns":{"include_usag\u0065":true}}"#)
    }

    @Test func whatIsNotAStreamThatDidNotAskIsLeftAsItIs() {
        #expect(Self.decide(#"{"stream":true,"stream_options":{"include_usage":true}}"#) == .unchanged(.asked))
        #expect(Self.decide(#"{"model":"x","messages":[]}"#) == .unchanged(.notStreaming))
        #expect(Self.decide(#"{"stream":false}"#) == .unchanged(.notStreaming))
        #expect(Self.decide(#"{"stream":"true"}"#) == .unchanged(.notStreaming))
        // A nested `stream` is not the request's.
        #expect(Self.decide(#"{"metadata":{"stream":true}}"#) == .unchanged(.notStreaming))
        #expect(Self.decide(#"{"stream":true,"stream":true}"#) == .unchanged(.notEditable))
        #expect(Self.decide(#"{"stream":true,"stream_options":{},"stream_options":{}}"#) == .unchanged(.notEditable))
        #expect(Self.decide(#"{"stream":true,"stream_options":"x"}"#) == .unchanged(.notEditable))
        #expect(Self.decide(#"{"stream":true,"stream_options":{"include_usage":1}}"#) == .unchanged(.notEditable))
        #expect(Self.decide(#"[{"stream":true}]"#) == .unchanged(.notEditable))
        #expect(Self.decide(#"{"stream":true} {}"#) == .unchanged(.notEditable))
        #expect(Self.decide(#"{"stream":true,"#) == .unchanged(.notEditable))
        #expect(Self.decide("") == .unchanged(.notEditable))
    }

    /// The collected body arrives chunked, cut anywhere: the decoder's payload, however it came,
    /// is edited to the same bytes, and every byte but the inserted ones is the client's.
    @Test func aChunkedBodyCutAtEveryByteIsEditedTheSameWay() throws {
        let body = #"{"model":"gpt-4o","messages":[{"role":"user","content":"a \"stream\":true {x}"}],"stream":true,"n":1}"#
        let expected = try #require(Self.injected(body))
        let bytes = Array(body.utf8)
        // Three chunks of the client's, with an extension and odd sizes.
        var wire = Array("\(String(29, radix: 16));ext=1\r\n".utf8) + bytes[0..<29] + Array("\r\n".utf8)
        wire += Array("\(String(40, radix: 16))\r\n".utf8) + bytes[29..<69] + Array("\r\n".utf8)
        wire += Array("\(String(bytes.count - 69, radix: 16))\r\n".utf8) + bytes[69...] + Array("\r\n0\r\n\r\n".utf8)
        for cut in 0...wire.count {
            var scanner = ChunkedScanner(rules: .request(maxTrailerBytes: 1024))
            var parts: [ByteBuffer] = []
            for read in [Array(wire[..<cut]), Array(wire[cut...])] {
                try read.withUnsafeBytes { raw in
                    var index = 0
                    while case .data(let data) = try scanner.next(raw, at: &index) {
                        parts.append(ByteBuffer(bytes: Array(raw[data])))
                    }
                }
            }
            #expect(scanner.isFinished)
            var collected = ByteBuffer()
            for part in parts { collected.writeImmutableBuffer(part) }
            let decision = collected.withUnsafeReadableBytes { StreamUsageRequest.decide($0) }
            guard case .inject(let edits) = decision else {
                Issue.record("cut at \(cut): \(decision)")
                return
            }
            let spliced = BodySplice.apply(edits, to: collected, allocator: ByteBufferAllocator())
            #expect(String(buffer: spliced) == expected, "cut at \(cut)")
        }
        // Only the member was added.
        let inserted = "," + StreamUsageRequest.member
        #expect(expected.replacingOccurrences(of: inserted, with: "") == body)
    }

    @Test func theSpliceMakesSeveralEditsInOrderAndCopiesTheRest() {
        let body = ByteBuffer(string: "0123456789")
        let edits: [BodySplice.Edit] = [
            .init(inserting: "<", at: 0), .init(replacing: 2..<4, with: "ab"), .init(replacing: 5..<8, with: ""),
            .init(inserting: ">", at: 10),
        ]
        #expect(String(buffer: BodySplice.apply(edits, to: body, allocator: ByteBufferAllocator())) == "<01ab489>")
        // A body read from a buffer whose reader index is not zero.
        var offset = ByteBuffer(string: "xx0123")
        offset.moveReaderIndex(forwardBy: 2)
        #expect(String(buffer: BodySplice.apply([.init(replacing: 1..<2, with: "-")], to: offset, allocator: .init())) == "0-23")
    }
}
