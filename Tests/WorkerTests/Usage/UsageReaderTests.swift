import CZstd
import NIOCore
import Testing
@testable import FluxgateWorker

/// The reader's rules beyond the corpus: which responses it reads, the status of each ending, the
/// estimate of a cancelled stream, events over the cap, bodies of any size, broken encodings.
@Suite struct UsageReaderTests {
    static let chat = UsageCorpus["openai-chat.json"]
    static let chatUsage = chat.expected

    // MARK: Which responses are read

    @Test func theMediaTypeSaysHowABodyIsRead() {
        typealias M = UsageReader.MediaType
        #expect(M("application/json") == .json)
        #expect(M("Application/JSON; charset=utf-8") == .json)
        #expect(M("application/problem+json") == .json)
        #expect(M(" text/event-stream ;charset=utf-8") == .eventStream)
        #expect(M("TEXT/EVENT-STREAM") == .eventStream)
        #expect(M(nil) == .unknown)
        #expect(M("") == .unknown)
        #expect(M("text/plain; charset=utf-8") == .unknown)
        #expect(M("text/html") == .other)
        #expect(M("audio/mpeg") == .other)
        #expect(M("application/jsonl") == .other)
        // As long as the exact forms compared first, but not them.
        #expect(M("application/jsom") == .other)
        #expect(M("Application/Json") == .json)
        #expect(M("text/event-stream") == .eventStream)
        #expect(M("text/event-streaM") == .eventStream)
        #expect(M("text/event-strean") == .other)
    }

    @Test func theContentEncodingSaysWhichDecoder() {
        typealias C = UsageReader.ContentCoding
        #expect(C(nil) == .identity)
        #expect(C("identity") == .identity)
        #expect(C("GZIP") == .gzip)
        #expect(C("x-gzip") == .gzip)
        #expect(C(" deflate ") == .deflate)
        #expect(C("br") == .brotli)
        #expect(C("zstd") == .zstd)
        #expect(C("gzip, identity") == .gzip)
        #expect(C("gzip, br") == .unsupported)
        #expect(C("compress") == .unsupported)
        var twoLines = C("gzip")
        twoLines.add(C("gzip"))
        #expect(twoLines == .unsupported)
    }

    @Test(arguments: [400, 401, 429, 500, 503, 304, 101] as [UInt])
    func aResponseThatIsNot2xxIsNotRead(_ status: UInt) {
        let result = UsageFeed.read(Self.chat.bytes, contentType: "application/json", status: status)
        #expect(result == UsageResult(status: .missing))
        let cut = UsageFeed.read(Self.chat.bytes, contentType: "application/json", status: status, complete: false)
        #expect(cut == UsageResult(status: .truncated))
    }

    @Test func aBodyOfAnotherTypeIsNotRead() {
        let result = UsageFeed.read(Self.chat.bytes, contentType: "audio/mpeg", contentEncoding: "compress")
        #expect(result == UsageResult(status: .missing))
    }

    @Test func anEmptyBodyHasNoUsage() {
        #expect(UsageFeed.read([], contentType: "application/json") == UsageResult(status: .missing))
        #expect(UsageFeed.read([], contentType: "application/json", contentEncoding: "gzip") == UsageResult(status: .missing))
        #expect(UsageFeed.read([], contentType: "text/event-stream") == UsageResult(outputTokens: 0, status: .missing))
        #expect(UsageFeed.read(Array(" \n".utf8), contentType: nil) == UsageResult(status: .missing))
    }

    @Test func withoutAContentTypeTheFirstByteDecides() {
        let json = UsageFeed.read(Array("\r\n  ".utf8) + Self.chat.bytes, contentType: nil, cuts: [1, 3])
        #expect(json == Self.chatUsage)
        let events = UsageCorpus["anthropic-stream.sse"]
        #expect(UsageFeed.read(events.bytes, contentType: "text/plain", cuts: [1]) == events.expected)
    }

    // MARK: How a response ended

    @Test func aJSONBodyCutShortIsTruncatedWithoutCounts() {
        let bytes = Self.chat.bytes
        for cut in [1, bytes.count / 2, bytes.count - 3] {
            let result = UsageFeed.read(Array(bytes[..<cut]), contentType: "application/json", complete: false)
            #expect(result == UsageResult(status: .truncated))
        }
    }

    @Test func aJSONBodyRelayedWholeButCutByTheUpstreamIsMissing() {
        let bytes = Self.chat.bytes
        let result = UsageFeed.read(Array(bytes[..<(bytes.count - 3)]), contentType: "application/json")
        #expect(result == UsageResult(status: .missing))
    }

    @Test func aStreamWithItsUsageButNotItsEndIsTruncatedWithTheReportedCounts() {
        let stream = UsageCorpus["openai-chat-stream-include-usage.sse"]
        let bytes = stream.bytes
        let withoutDone = Array(bytes[..<(bytes.count - "data: [DONE]\n\n".utf8.count)])
        var expected = stream.expected
        expected.status = .truncated
        #expect(UsageFeed.read(withoutDone, contentType: "text/event-stream", complete: false) == expected)
    }

    /// Bifrost PR #3709 billed such a stream 1 output token (message_start's `output_tokens`).
    @Test func aCancelledAnthropicStreamOf806EventsIsEstimatedFromItsDeltas() {
        let bytes = Self.anthropicStream(deltas: 803)  // + message_start, content_block_start, ping
        #expect(Self.eventCount(bytes) == 806)
        for cuts in UsageFeed.denseSample(count: bytes.count, stride: 997, around: [bytes.count / 2], radius: 128) {
            let result = UsageFeed.read(bytes, contentType: "text/event-stream", complete: false, cuts: cuts)
            #expect(
                result
                    == UsageResult(
                        model: "claude-sonnet-4-5-20250929", inputTokens: 4820, outputTokens: 803,
                        cacheReadTokens: 4096, cacheWriteTokens: 0, status: .truncated))
            guard result.status == .truncated, (result.outputTokens ?? 0) >= 800 else { return }
        }
    }

    @Test func aCompressedCancelledStreamIsEstimatedAlike() {
        let bytes = Self.anthropicStream(deltas: 803)
        for encoding in CorpusEncoding.allCases {
            let encoded = encoding.encode(corpusFile: bytes)
            let result = UsageFeed.read(
                encoded, contentType: "text/event-stream", contentEncoding: encoding.header,
                complete: false, cuts: Array(stride(from: 1, to: encoded.count, by: 61)))
            #expect(result.status == .truncated && result.outputTokens == 803, "\(encoding)")
        }
    }

    // MARK: What the reader cannot read

    /// The 2 MiB event is skipped and says so; the events around it are read as usual.
    @Test func anEventOver1MiBMakesTheUsageUnreadableAndTheRestIsRead() {
        let bytes = Self.streamWithLargeEvent(dataBytes: 2 << 20)
        var expected = UsageCorpus["openai-chat-stream-include-usage.sse"].expected
        expected.status = .unreadable
        // Around the large event's start and end, and where its data passes the cap.
        let start = UsageFeed.events(bytes)[0].count
        let around = [start, start + 6 + SSEEventSplitter.maximumEventBytes, start + 6 + (2 << 20) + 2]
        for cuts in UsageFeed.denseSample(count: bytes.count, stride: 65_521, around: around, radius: 16) {
            let result = UsageFeed.read(bytes, contentType: "text/event-stream", cuts: cuts)
            guard result == expected else {
                Issue.record("cut at \(cuts.prefix(3)): \(result)")
                return
            }
        }
        for encoding in CorpusEncoding.allCases {
            let encoded = encoding.encode(corpusFile: bytes)
            let result = UsageFeed.read(
                encoded, contentType: "text/event-stream", contentEncoding: encoding.header,
                cuts: Array(stride(from: 4096, to: encoded.count, by: 4096)))
            #expect(result == expected, "\(encoding)")
        }
    }

    @Test func anEventJustUnder1MiBIsRead() {
        let bytes = Self.streamWithLargeEvent(dataBytes: SSEEventSplitter.maximumEventBytes)
        let expected = UsageCorpus["openai-chat-stream-include-usage.sse"].expected
        #expect(UsageFeed.read(bytes, contentType: "text/event-stream", cuts: [1000, 600_000]) == expected)
    }

    @Test(arguments: ["compress", "gzip, br", "exi"])
    func anUnknownEncodingIsUnreadable(_ coding: String) {
        let result = UsageFeed.read(Self.chat.bytes, contentType: "application/json", contentEncoding: coding)
        #expect(result == UsageResult(status: .unreadable))
    }

    @Test(arguments: CorpusEncoding.allCases)
    func aCorruptEncodingIsUnreadableNeverACrash(_ encoding: CorpusEncoding) {
        var encoded = encoding.encode(Self.chat.bytes)
        for i in stride(from: encoded.count / 3, to: encoded.count, by: 7) { encoded[i] ^= 0x5A }
        let result = UsageFeed.read(
            encoded, contentType: "application/json", contentEncoding: encoding.header,
            cuts: [5, 40])
        #expect(result == UsageResult(status: .unreadable))
        let garbage = UsageFeed.read(
            Array("not compressed at all".utf8), contentType: "application/json",
            contentEncoding: encoding.header)
        #expect(garbage == UsageResult(status: .unreadable))
    }

    @Test(arguments: CorpusEncoding.allCases)
    func anEncodedBodyCutShortButRelayedWholeIsUnreadable(_ encoding: CorpusEncoding) {
        let encoded = encoding.encode(Self.chat.bytes)
        let result = UsageFeed.read(
            Array(encoded[..<(encoded.count - 4)]), contentType: "application/json",
            contentEncoding: encoding.header)
        #expect(result.status == .unreadable)
    }

    @Test func bytesAfterTheEncodedStreamAreNotRead() {
        for encoding in [CorpusEncoding.gzip, .zlibDeflate, .rawDeflate, .brotli] {
            let encoded = encoding.encode(Self.chat.bytes) + Array("{\"usage\":{\"prompt_tokens\":1}}".utf8)
            let result = UsageFeed.read(encoded, contentType: "application/json", contentEncoding: encoding.header)
            #expect(result == Self.chatUsage, "\(encoding)")
        }
    }

    @Test func concatenatedGzipMembersAndZstdFramesAreOneBody() {
        let bytes = Self.chat.bytes
        let half = bytes.count / 2
        let gzip = Compress.zlib([Array(bytes[..<half])], windowBits: 31) + Compress.zlib([Array(bytes[half...])], windowBits: 31)
        #expect(UsageFeed.read(gzip, contentType: "application/json", contentEncoding: "gzip", cuts: [3, 200]) == Self.chatUsage)
        let zstd = Compress.zstd([Array(bytes[..<half])]) + Compress.zstd([Array(bytes[half...])])
        #expect(UsageFeed.read(zstd, contentType: "application/json", contentEncoding: "zstd", cuts: [3, 200]) == Self.chatUsage)
    }

    /// RFC 8878 lets an HTTP decoder refuse windows over 8 MiB; the reader does, rather than
    /// allocate up to 128 MiB for one response.
    @Test func aZstdFrameAskingForMoreThan8MiBOfWindowIsUnreadable() {
        let pieces = [Array(Self.chat.bytes[..<100]), Array(Self.chat.bytes[100...])]
        let wide = Compress.zstd(pieces, windowLog: ZstdDecoder.maximumWindowLog + 1)
        #expect(UsageFeed.read(wide, contentType: "application/json", contentEncoding: "zstd").status == .unreadable)
        let allowed = Compress.zstd(pieces, windowLog: ZstdDecoder.maximumWindowLog)
        #expect(UsageFeed.read(allowed, contentType: "application/json", contentEncoding: "zstd") == Self.chatUsage)
    }

    // MARK: Bounded memory

    /// 50 MiB of JSON, whose usage comes last: exact, with the reader's state fixed in size.
    @Test(arguments: [nil, CorpusEncoding.gzip] as [CorpusEncoding?])
    func a50MiBJSONBodyIsReadInBoundedMemory(_ encoding: CorpusEncoding?) {
        let filler = Array(#"lorem ipsum \"usage\":{\"prompt_tokens\":1} dolor \u00e9 sit amet, "#.utf8)
        let head = Array(
            #"{"id":"chatcmpl-big","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":""#
                .utf8)
        let tail = Array(
            #""},"finish_reason":"stop"}],"usage":{"prompt_tokens":123456,"completion_tokens":7654321,"prompt_tokens_details":{"cached_tokens":100000}}}"#
                .utf8)
        let piece = [UInt8]((0..<(1 << 16) / filler.count).flatMap { _ in filler })
        let pieces = 50 << 20 / piece.count
        var reader = UsageReader(status: 200, contentType: "application/json", contentEncoding: encoding?.header)
        func feed(_ bytes: [UInt8]) { bytes.withUnsafeBytes { reader.feed($0) } }
        if let encoding {
            // One gzip stream, flushed per piece as a server writes it.
            let whole = encoding.encode(pieces: [head] + Array(repeating: piece, count: pieces) + [tail])
            whole.withUnsafeBytes { all in
                for start in stride(from: 0, to: all.count, by: 1 << 16) {
                    reader.feed(UnsafeRawBufferPointer(rebasing: all[start..<min(start + (1 << 16), all.count)]))
                }
            }
        } else {
            feed(head)
            for _ in 0..<pieces { feed(piece) }
            feed(tail)
        }
        #expect(pieces * piece.count >= 49 << 20)
        #expect(
            reader.end(complete: true)
                == UsageResult(
                    model: "gpt-4o-2024-08-06", inputTokens: 123_456,
                    outputTokens: 7_654_321, cacheReadTokens: 100_000,
                    cacheWriteTokens: 0, status: .reported))
        #expect(UsageJSONScanner.retainedBytes < 2048)
        #expect(UsageReader.retainedBytes < 4096)
    }

    // MARK: The exchange's calls

    @Test func aByteBufferIsFedAsItsReadableBytes() {
        var reader = UsageReader(status: 200, contentType: "application/json", contentEncoding: nil)
        var buffer = ByteBuffer(bytes: Array("xx".utf8) + Self.chat.bytes)
        buffer.moveReaderIndex(forwardBy: 2)
        reader.feed(buffer.readSlice(length: 10)!)
        reader.feed(buffer)
        #expect(reader.end(complete: true) == Self.chatUsage)
    }

    @Test func endIsFinalAndLaterBytesAreIgnored() {
        var reader = UsageReader(status: 200, contentType: "application/json", contentEncoding: nil)
        Self.chat.bytes.withUnsafeBytes { reader.feed($0) }
        #expect(reader.end(complete: true) == Self.chatUsage)
        Array("garbage".utf8).withUnsafeBytes { reader.feed($0) }
        #expect(reader.end(complete: false) == Self.chatUsage)
    }

    // MARK: Helpers

    /// An Anthropic stream as the client saw it when it left: message_start with cache reads,
    /// content_block_start, ping, then `deltas` text deltas; no message_delta.
    static func anthropicStream(deltas: Int) -> [UInt8] {
        var s =
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_013Zva2CMHLNnXjNJJKqJ2EF\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5-20250929\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":724,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":4096,\"output_tokens\":1}}}\n\n"
        s +=
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        s += "event: ping\ndata: {\"type\": \"ping\"}\n\n"
        for i in 0..<deltas {
            s +=
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" word\(i)\"}}\n\n"
        }
        return Array(s.utf8)
    }

    static func eventCount(_ bytes: [UInt8]) -> Int { UsageFeed.events(bytes).count }

    /// The include_usage corpus stream with one more content delta whose data is `dataBytes`
    /// long, after the first chunk.
    static func streamWithLargeEvent(dataBytes: Int) -> [UInt8] {
        let stream = UsageCorpus["openai-chat-stream-include-usage.sse"].bytes
        let prefix = Array("data: ".utf8)
        let open = Array(
            #"{"id":"chatcmpl-AOvBKDo0YFJmOPXiaz1Ij0C0pTcJz","object":"chat.completion.chunk","created":1730737078,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":""#
                .utf8)
        let close = Array(#""},"finish_reason":null}],"usage":null}"#.utf8)
        var text = [UInt8]()
        text.reserveCapacity(dataBytes)
        var x: UInt32 = 2_463_534_242
        while text.count < dataBytes - open.count - close.count {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5
            text.append(UInt8(ascii: "a") + UInt8(x % 26))
            if x % 7 == 0 { text.append(0x20) }
        }
        let event = prefix + open + text[..<(dataBytes - open.count - close.count)] + close + [0x0A, 0x0A]
        let firstEventEnd = UsageFeed.events(stream)[0].count
        return Array(stream[..<firstEventEnd]) + event + Array(stream[firstEventEnd...])
    }
}
