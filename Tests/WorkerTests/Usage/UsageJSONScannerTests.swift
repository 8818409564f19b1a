import Testing
@testable import FluxgateWorker

/// The incremental JSON scanner keeps exactly the values the usage reader needs, at the paths
/// where they mean usage; it follows the grammar strictly on those paths, and only strings and
/// brackets inside the members it skips.
@Suite struct UsageJSONScannerTests {
    /// Scans `json` whole, cut at every byte boundary and one byte at a time; all must agree.
    func scan(_ json: String, countsDeltas: Bool = true) -> (valid: Bool, document: UsageDocument) {
        let bytes = Array(json.utf8)
        var first: (Bool, UsageDocument)?
        for cuts in UsageFeed.everySplit(count: bytes.count) {
            var scanner = UsageJSONScanner()
            scanner.countsDeltas = countsDeltas
            bytes.withUnsafeBytes { all in
                var start = 0
                for cut in cuts where cut > start && cut < all.count {
                    scanner.scan(UnsafeRawBufferPointer(rebasing: all[start..<cut]))
                    start = cut
                }
                scanner.scan(UnsafeRawBufferPointer(rebasing: all[start...]))
            }
            let outcome = (scanner.finish(), scanner.document)
            if let first {
                #expect(
                    outcome.0 == first.0 && outcome.1.usage == first.1.usage
                        && outcome.1.model.string == first.1.model.string, "cut at \(cuts.prefix(3))")
            } else {
                first = outcome
            }
        }
        return first!
    }

    func valid(_ json: String) -> Bool { scan(json).valid }

    @Test func keepsTopLevelModelTypeAndUsage() {
        let (valid, d) = scan(
            #"{"type":"message","model":"gpt-4o","usage":{"prompt_tokens":12,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":8,"audio_tokens":0}}}"#
        )
        #expect(valid)
        #expect(d.type.string == "message")
        #expect(d.model.string == "gpt-4o")
        #expect(d.usage == UsageCounts(present: true, promptTokens: 12, completionTokens: 3, promptCachedTokens: 8))
    }

    @Test func keepsResponseAndMessageUsage() {
        let (_, r) = scan(
            #"{"type":"response.completed","response":{"model":"m1","usage":{"input_tokens":5,"input_tokens_details":{"cached_tokens":2},"output_tokens":4}}}"#
        )
        #expect(r.model.string == "m1")
        #expect(r.responseUsage == UsageCounts(present: true, inputTokens: 5, outputTokens: 4, inputCachedTokens: 2))
        let (_, m) = scan(
            #"{"type":"message_start","message":{"model":"m2","usage":{"input_tokens":5,"cache_read_input_tokens":6,"cache_creation_input_tokens":7}}}"#
        )
        #expect(m.model.string == "m2")
        #expect(m.messageUsage == UsageCounts(present: true, inputTokens: 5, cacheReadInputTokens: 6, cacheCreationInputTokens: 7))
    }

    @Test func theSameNamesDeeperAreNotUsage() {
        let (valid, d) = scan(
            #"{"choices":[{"message":{"usage":{"prompt_tokens":1},"model":"x"}}],"metadata":{"usage":{"prompt_tokens":2},"type":"t","model":"y"},"data":[{"usage":{"prompt_tokens":3}}],"usage":{"completion_tokens_details":{"cached_tokens":9},"input_tokens_details":{"prompt_tokens":4}}}"#
        )
        #expect(valid)
        #expect(d.model.isSet == false)
        #expect(d.type.isSet == false)
        #expect(d.usage == UsageCounts(present: true))
    }

    @Test func stringsThatQuoteUsageAreSkipped() {
        let (_, d) = scan(#"{"content":"{\"usage\":{\"prompt_tokens\":99}}","usage":{"prompt_tokens":1}}"#)
        #expect(d.usage.promptTokens == 1)
    }

    @Test func escapesAreDecodedInKeptValues() {
        #expect(scan(#"{"model":"gpt\u002d4o\/mini \"x\" \u00e9\ud83d\ude00"}"#).document.model.string == "gpt-4o/mini \"x\" é😀")
        #expect(scan(#"{"model":"a\ud83db"}"#).document.model.string == "a\u{FFFD}b")
        #expect(scan(#"{"us\u0061ge":{"prompt_tokens":3}}"#).document.usage.promptTokens == 3)
    }

    @Test func aModelLongerThanItsStorageIsAbsentNotCut() {
        let long = String(repeating: "m", count: 300)
        #expect(scan(#"{"model":"\#(long)"}"#).document.model.string == nil)
        let fits = String(repeating: "m", count: 256)
        #expect(scan(#"{"model":"\#(fits)"}"#).document.model.string == fits)
    }

    @Test func onlyPlainIntegersAreCounts() {
        let (valid, d) = scan(
            #"{"usage":{"prompt_tokens":-1,"completion_tokens":2.0,"input_tokens":1e3,"output_tokens":1234567890123456,"cache_read_input_tokens":0,"cache_creation_input_tokens":"5"}}"#
        )
        #expect(valid)
        #expect(d.usage == UsageCounts(present: true, cacheReadInputTokens: 0))
        #expect(scan(#"{"usage":{"prompt_tokens":123456789012345}}"#).document.usage.promptTokens == 123_456_789_012_345)
    }

    @Test func theLastOfDuplicateMembersWins() {
        #expect(scan(#"{"usage":{"prompt_tokens":1,"prompt_tokens":2}}"#).document.usage.promptTokens == 2)
        #expect(scan(#"{"usage":{"prompt_tokens":1},"usage":null}"#).document.usage.present == false)
        #expect(
            scan(#"{"usage":{"prompt_tokens":1},"usage":{"completion_tokens":4}}"#).document.usage
                == UsageCounts(present: true, completionTokens: 4))
        #expect(scan(#"{"model":"a","model":null}"#).document.model.string == nil)
        #expect(scan(#"{"usage":{"prompt_tokens":1,"prompt_tokens":null}}"#).document.usage.promptTokens == nil)
    }

    @Test func nullUsageIsNoUsage() {
        #expect(scan(#"{"usage":null,"model":"m"}"#).document.usage.present == false)
        #expect(scan(#"{"usage":[1,2],"model":"m"}"#).document.usage.present == false)
    }

    @Test func countsContentDeltas() {
        let chunk =
            #"{"choices":[{"delta":{"content":"a"}},{"delta":{"content":""}},{"delta":{"content":null,"refusal":"no"}},{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}},{"delta":{"reasoning_content":"\n"}},{"text":"t"},{"text":""},{"delta":{"role":"assistant"}}]}"#
        #expect(scan(chunk).document.contentDeltas == 5)
        #expect(scan(#"{"choices":[{"message":{"content":"not a delta"}}]}"#).document.contentDeltas == 0)
        // A JSON body's choices are skipped whole: deltas are for streams.
        #expect(scan(chunk, countsDeltas: false).document.contentDeltas == 0)
    }

    @Test(arguments: [
        #"{"a":1}"#, #" {"a":[1,2,{"b":[]}],"c":{}} "#, "{}", #"{"usage":{"prompt_tokens":-0.5e+3,"x":[true,null]}}"#,
        #"{"a":"\u0000\t"}"#, "{\"a\":\n1}",
    ])
    func acceptsAJSONObject(_ json: String) {
        #expect(valid(json))
    }

    @Test(arguments: [
        "", "[DONE]", "[]", "0", #""x""#, "null", #"{"a":1"#, #"{"a":1,}"#, #"{"a":1}}"#, #"{"a":1} x"#, #"{"a":[1}"#, #"{"usage":{]}"#,
        #"{"choices":[1,]}"#, #"{"usage":{"prompt_tokens":1,}}"#, #"{"a" 1}"#, #"{1:2}"#, "{\"a\":\"\n\"}", #"{"a":01}"#, #"{"a":1.}"#,
        #"{"a":-}"#, #"{"a":1e}"#, #"{"a":tru}"#,
        #"{"a":"\x"}"#, #"{"a":"\u12G4"}"#, #"{"a":1}{"b":2}"#, "{'a':1}",
    ])
    func rejectsWhatIsNotOneJSONObject(_ json: String) {
        #expect(!valid(json))
    }

    /// Inside a member it does not use, the reader follows only strings and bracket depth: what a
    /// client's parser would also reject there is read past (nothing in it can be usage).
    @Test(arguments: [#"{"a":{]}"#, #"{"a":[1,]}"#, #"{"a":[1 2 x],"usage":{"prompt_tokens":1}}"#, #"{"a":{"b":"\x"}}"#])
    func insideAnUnusedMemberOnlyStringsAndBracketsAreFollowed(_ json: String) {
        #expect(valid(json))
    }

    @Test func anyNestingIsReadInFixedMemory() {
        let deep = 100_000
        let json =
            #"{"x":"# + String(repeating: #"[{"a":"#, count: deep) + #""]}""# + String(repeating: "}]", count: deep)
            + #","usage":{"prompt_tokens":1}}"#
        var scanner = UsageJSONScanner()
        var bytes = Array(json.utf8)
        bytes.withUnsafeMutableBytes { scanner.scan(UnsafeRawBufferPointer($0)) }
        #expect(scanner.finish())
        #expect(scanner.document.usage.promptTokens == 1)
    }

    @Test func resetReadsTheNextDocument() {
        var scanner = UsageJSONScanner()
        for (json, tokens) in [(#"{"usage":{"prompt_tokens":1}"#, nil), (#"{"usage":{"prompt_tokens":2}}"#, 2)] as [(String, Int?)] {
            scanner.reset()
            var bytes = Array(json.utf8)
            bytes.withUnsafeMutableBytes { scanner.scan(UnsafeRawBufferPointer($0)) }
            #expect(scanner.finish() == (tokens != nil))
            if let tokens { #expect(scanner.document.usage.promptTokens == tokens) }
        }
    }

    /// Its state is inline (`BitwiseCopyable`: no reference, so no buffer that could grow).
    @Test func theScannerRetainsAFewKilobytesAtMost() {
        func inline<T: BitwiseCopyable>(_: T.Type) -> Int { MemoryLayout<T>.size }
        #expect(inline(UsageJSONScanner.self) == UsageJSONScanner.retainedBytes)
        #expect(UsageJSONScanner.retainedBytes < 2048)
    }
}
