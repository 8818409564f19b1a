import Testing
@testable import FluxgateWorker

/// Events the prefilter passes (`UsageEventPrefilter`: content deltas, `"usage":null`, the first
/// `model`) give the usage the JSON scanner gives for them: the reader's fast path, fed whole,
/// against the scanner alone (the stream fed a byte at a time straight to the splitter, so that
/// no event is ever whole in a slice).
@Suite struct UsageEventPrefilterTests {
    static func scannerOnly(_ bytes: [UInt8]) -> UsageResult {
        var splitter = SSEEventSplitter()
        var collector = UsageCollector()
        collector.scanner.countsDeltas = true
        bytes.withUnsafeBytes { all in
            for i in all.indices { splitter.split(UnsafeRawBufferPointer(rebasing: all[i..<(i + 1)]), into: &collector) }
        }
        var models: String?
        return collector.tally.result(
            complete: true, unreadable: collector.skippedEvents > 0, stream: true, models: &models)
    }

    static func whole(_ bytes: [UInt8]) -> UsageResult {
        UsageFeed.read(bytes, contentType: "text/event-stream")
    }

    static func stream(_ events: [String]) -> [UInt8] {
        Array(events.map { "data: \($0)\n\n" }.joined().utf8)
    }

    static let delta = #""choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]"#
    static let usage = #""usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}"#

    @Test(arguments: UsageCorpus.cases.filter { $0.file.hasSuffix(".sse") && $0.complete })
    func theCorpusStreamsReadTheSameWithoutTheFastPath(_ corpusCase: CorpusCase) {
        #expect(Self.scannerOnly(corpusCase.bytes) == corpusCase.expected)
    }

    @Test func usageNullOnEveryChunkIsSkippedAndTheFinalUsageCounts() {
        let events = [
            #"{"id":"c","model":"m-1",\#(Self.delta),"usage":null}"#,
            #"{"id":"c","model":"m-1",\#(Self.delta),"usage" : null}"#,
            #"{"id":"c","model":"m-1","choices":[],\#(Self.usage)}"#, "[DONE]",
        ]
        let bytes = Self.stream(events)
        let expected = UsageResult(
            model: "m-1", inputTokens: 7, outputTokens: 3, cacheReadTokens: 0, cacheWriteTokens: 0, status: .reported)
        #expect(Self.whole(bytes) == expected)
        #expect(Self.scannerOnly(bytes) == expected)
        // A null after a usage in the same event forgets it, as the scanner does.
        let forgotten = Self.stream([#"{"model":"m-1",\#(Self.usage),"usage":null}"#])
        #expect(Self.whole(forgotten) == Self.scannerOnly(forgotten))
        #expect(Self.whole(forgotten).status == .missing)
    }

    /// The model is read by the prefilter only as the top-level member's plain string; every other
    /// shape is the scanner's, with the same result.
    @Test(arguments: [
        #"{"id":"c","object":"chunk","created":1700000000,"model":"gpt-x",\#(delta)}"#,
        #"{ "id" : "c" , "n" : -1.5e3, "ok" : true, "model" : "gpt-x" , \#(delta)}"#,
        #"{"model":"first","model":"second",\#(delta)}"#,
        #"{"x":{"model":"nested"},"model":"top",\#(delta)}"#,
        #"{"response":{"model":"in-response"},\#(delta)}"#,
        #"{"id":"a\"model","model":"gpt-x",\#(delta)}"#,
        #"{"model":"gpt-\u0078",\#(delta)}"#,
        #"{"model":"",\#(delta)}"#,
        #"{"model":"\#(String(repeating: "m", count: 256))",\#(delta)}"#,
        #"{"model":"\#(String(repeating: "m", count: 257))",\#(delta)}"#,
        #"{"model":7,\#(delta)}"#,
        #"{"choices":[{"delta":{"content":"x"}}],"model":"after"}"#,
    ])
    func theFirstModelIsReadAsTheScannerReadsIt(_ first: String) {
        let bytes = Self.stream([first, #"{"model":"later",\#(Self.delta)}"#, "[DONE]"])
        #expect(Self.whole(bytes) == Self.scannerOnly(bytes))
        #expect(Self.whole(bytes).outputTokens == Self.scannerOnly(bytes).outputTokens)
    }

    /// Chunks that repeat the kept one but for their delta are counted a run at a time
    /// (`EventTemplate`): every kind of delta in a run, and a run broken anywhere, count as the
    /// scanner counts them.
    @Test func runsOfRepeatedChunksCountAsTheScannerCounts() {
        func chunk(_ delta: String, finish: String = "null") -> String {
            #"{"id":"c","model":"m-1","choices":[{"index":0,"delta":\#(delta),"finish_reason":\#(finish)}]}"#
        }
        let deltas = [
            #"{"content":"a"}"#, #"{"content":""}"#, #"{"content":"line\nbreak \"q\""}"#, #"{}"#,
            #"{"role":"assistant","content":"b"}"#, #"{"content":"c","refusal":null}"#, #"{"content":"d"}"#,
            #"{"content":"\u0075sage"}"#, #"{"content":"e"}"#,
        ]
        var events = [chunk(#"{"role":"assistant","content":""}"#)]
        for delta in deltas { events += [chunk(#"{"content":"x"}"#), chunk(delta), chunk(#"{"content":"y"}"#)] }
        events += [chunk("{}", finish: #""stop""#), "[DONE]"]
        let bytes = Self.stream(events)
        let scanned = Self.scannerOnly(bytes)
        #expect(scanned.outputTokens == 2 * deltas.count + 7)
        #expect(Self.whole(bytes) == scanned)
        for size in [100, 181, 250, 512, 2048] {
            #expect(
                UsageFeed.read(bytes, contentType: "text/event-stream", cuts: Array(stride(from: size, to: bytes.count, by: size)))
                    == scanned)
        }
    }
}
