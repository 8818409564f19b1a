import NIOCore
import Testing
@testable import FluxgateWorker

/// docs/usage.md "stream_usage: inject", the response half: the client's events are the
/// provider's without `include_usage`, however the reads cut them.
@Suite struct UsageChunkFilterTests {
    static func chunk(_ index: Int, _ content: String, usage: Bool) -> String {
        #"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"\#(content)"},"finish_reason":null}]\#(usage ? #","usage":null"# : "")}"#
            + "\n\n"
    }

    /// An OpenAI stream with (`asked`) and without `include_usage`, with this line ending.
    static func stream(asked: Bool, newline: String = "\n") -> String {
        var text = ": keep-alive\n\n"
        for (i, word) in ["Hel", "lo"].enumerated() { text += chunk(i, word, usage: asked) }
        if asked {
            text +=
                #"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#
                + "\n\n"
        }
        text += "data: [DONE]\n\n"
        return text.replacingOccurrences(of: "\n", with: newline)
    }

    static let head = ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\r\n")
    static var fields: ResponseFacts.Fields {
        var fields = ResponseFacts.Fields()
        fields.contentType = 31..<63
        return fields
    }

    /// What the client gets of `reads`.
    static func filtered(_ reads: [[UInt8]], filter: UsageChunkFilter = UsageChunkFilter()) -> String {
        #expect(filter.accepts(status: 200, head: head, fields: fields))
        var out = ByteBuffer()
        for read in reads { read.withUnsafeBytes { filter.filter($0, into: &out) } }
        filter.finish(into: &out)
        return String(buffer: out)
    }

    @Test func theHeadFieldsUsedHereAreTheContentType() {
        #expect(String(buffer: Self.head.getSlice(at: 31, length: 32)!) == "text/event-stream; charset=utf-8")
    }

    @Test(arguments: ["\n", "\r\n", "\r"])
    func everyCutGivesTheStreamWithoutUsage(_ newline: String) {
        let asked = Array(Self.stream(asked: true, newline: newline).utf8)
        let plain = Self.stream(asked: false, newline: newline)
        #expect(Self.filtered([asked]) == plain)
        let filter = UsageChunkFilter()
        for cut in 0...asked.count {
            #expect(Self.filtered([Array(asked[..<cut]), Array(asked[cut...])], filter: filter) == plain, "cut at \(cut)")
        }
        // Byte by byte.
        #expect(Self.filtered(asked.map { [$0] }) == plain)
    }

    @Test func aStreamWithoutUsageGoesThroughUnchanged() {
        let plain = Self.stream(asked: false)
        #expect(Self.filtered([Array(plain.utf8)]) == plain)
        // A usage beside non-empty choices is the provider's own: kept.
        let final = #"data: {"choices":[{"index":0,"delta":{}}],"usage":{"prompt_tokens":1}}"# + "\n\n"
        #expect(Self.filtered([Array(final.utf8)]) == final)
    }

    @Test func onlyTheTopLevelUsageOnlyChunkIsDropped() {
        let nested = #"data: {"choices":[],"x":{"usage":{"a":1}}}"# + "\n\n"
        #expect(Self.filtered([Array(nested.utf8)]) == nested)
        let spaced = "data: { \"choices\" : [ ] , \"usage\" : {\"prompt_tokens\":1} }\n\n"
        #expect(Self.filtered([Array(spaced.utf8)]).isEmpty)
        let firstNull = #"data: {"usage":null,"choices":[{"delta":{}}]}"# + "\n\n"
        #expect(Self.filtered([Array(firstNull.utf8)]) == #"data: {"choices":[{"delta":{}}]}"# + "\n\n")
        // Two data lines: not a chunk OpenAI writes, left alone.
        let split = "data: {\"choices\":[],\ndata: \"usage\":{}}\n\n"
        #expect(Self.filtered([Array(split.utf8)]) == split)
    }

    /// An event longer than the filter holds is written as it comes, whole, and the next is read.
    @Test func anEventOverTheCapIsRelayedAndTheNextIsStillFiltered() {
        let big = "data: \"" + String(repeating: "x", count: UsageChunkFilter.maximumHeldBytes) + "\"\n\n"
        let usage = #"data: {"choices":[],"usage":{"prompt_tokens":1}}"# + "\n\n"
        let bytes = Array((big + usage).utf8)
        let reads = stride(from: 0, to: bytes.count, by: 65536).map { Array(bytes[$0..<min($0 + 65536, bytes.count)]) }
        #expect(Self.filtered(reads) == big)
    }

    @Test func anEventTheStreamEndsInsideIsGivenAsItCame() {
        #expect(Self.filtered([Array("data: {\"choices\":[],\"usage\":{}}".utf8)]) == "data: {\"choices\":[],\"usage\":{}}")
    }

    @Test func onlyUncodedEventStreamsOfA2xxAreFiltered() {
        let filter = UsageChunkFilter()
        #expect(!filter.accepts(status: 400, head: Self.head, fields: Self.fields))
        let json = ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n")
        var fields = ResponseFacts.Fields()
        fields.contentType = 31..<47
        #expect(!filter.accepts(status: 200, head: json, fields: fields))
        let gzip = ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\n\r\n")
        fields.contentType = 31..<48
        fields.contentEncoding = 68..<72
        #expect(String(buffer: gzip.getSlice(at: 68, length: 4)!) == "gzip")
        #expect(!filter.accepts(status: 200, head: gzip, fields: fields))
    }
}
