import Testing
@testable import FluxgateWorker

extension CorpusCase: CustomTestStringConvertible {
    var testDescription: String { file }
}

/// The conformance corpus: every provider response of `Corpus/manifest.json` gives exactly its
/// expected usage, however the bytes are cut, plain and in every content coding.
@Suite struct UsageCorpusTests {
    @Test(arguments: UsageCorpus.cases)
    func exactAtEveryByteBoundary(_ corpusCase: CorpusCase) {
        let bytes = corpusCase.bytes
        var checked = 0
        for cuts in UsageFeed.everySplit(count: bytes.count) {
            let result = UsageFeed.read(
                bytes, contentType: corpusCase.contentType, complete: corpusCase.complete,
                cuts: cuts)
            guard result == corpusCase.expected else {
                Issue.record("\(corpusCase.file) cut at \(cuts.prefix(4)): \(result), expected \(corpusCase.expected)")
                return
            }
            checked += 1
        }
        #expect(checked == bytes.count + 2)
    }

    @Test(arguments: UsageCorpus.cases, CorpusEncoding.allCases)
    func exactWhenCompressedAtEveryByteBoundary(_ corpusCase: CorpusCase, _ encoding: CorpusEncoding) {
        let encoded = encoding.encode(corpusFile: corpusCase.bytes)
        for cuts in UsageFeed.everySplit(count: encoded.count) {
            let result = UsageFeed.read(
                encoded, contentType: corpusCase.contentType, contentEncoding: encoding.header,
                complete: corpusCase.complete, cuts: cuts)
            guard result == corpusCase.expected else {
                Issue.record("\(corpusCase.file) as \(encoding) cut at \(cuts.prefix(4)): \(result)")
                return
            }
        }
    }

    /// A compressed stream the upstream cut halfway: the events decoded so far count, and the
    /// status says it ended early.
    @Test(arguments: CorpusEncoding.allCases)
    func compressedStreamCutHalfwayIsTruncated(_ encoding: CorpusEncoding) {
        let corpusCase = UsageCorpus["anthropic-stream.sse"]
        let encoded = encoding.encode(corpusFile: corpusCase.bytes)
        let result = UsageFeed.read(
            Array(encoded[..<(encoded.count / 2)]), contentType: corpusCase.contentType,
            contentEncoding: encoding.header, complete: false)
        #expect(result.status == .truncated)
        #expect(result.inputTokens == 25)
        #expect(result.model == "claude-sonnet-4-5-20250929")
    }

    @Test func corpusCoversEveryStatusAndProvider() {
        let statuses = Set(UsageCorpus.cases.map(\.expect.status))
        #expect(statuses == ["reported", "missing", "truncated"])  // unreadable: UsageReaderTests
        for prefix in ["openai-chat", "openai-completions", "openai-embeddings", "responses", "anthropic"] {
            #expect(UsageCorpus.cases.contains { $0.file.hasPrefix(prefix) && $0.file.hasSuffix(".json") })
        }
        for prefix in ["openai-chat-stream", "openai-completions-stream", "responses-stream", "anthropic-stream"] {
            #expect(UsageCorpus.cases.contains { $0.file.hasPrefix(prefix) && $0.file.hasSuffix(".sse") })
        }
    }
}
