import Testing

@testable import FluxgateWorker

/// A JSON body whose object the scanner reads whole has its result made from the document
/// (`UsageReader.wholeResult`), not through the tally: it must be the tally's, whatever the
/// document holds. The same body with its `{` in a slice of its own is read by the member walk
/// and the tally: both results are compared, complete and cut, new and reused readers.
@Suite struct UsageWholeResultTests {
    /// `bytes` read in one slice, and with its first byte alone (the tally's way).
    static func bothWays(
        _ bytes: [UInt8], complete: Bool, names: UsageModelNames, reused: inout UsageReader
    )
        -> (whole: UsageResult, tallied: UsageResult, reused: UsageResult)
    {
        let whole = UsageFeed.read(bytes, contentType: "application/json", complete: complete)
        let tallied = UsageFeed.read(bytes, contentType: "application/json", complete: complete, cuts: [1])
        reused.restart(status: 200, contentType: .json, contentEncoding: .identity)
        bytes.withUnsafeBytes { reused.feed($0) }
        let again = reused.end(complete: complete, names: names)
        return (whole, tallied, again)
    }

    static func check(_ text: String, names: UsageModelNames, reused: inout UsageReader) {
        let bytes = Array(text.utf8)
        for complete in [true, false] {
            // Short documents too: the C read wants 64 bytes, the Swift read does not.
            for body in [bytes, UsageWholeRootTests.padded(bytes)] {
                let (whole, tallied, again) = bothWays(body, complete: complete, names: names, reused: &reused)
                #expect(whole == tallied, "\(text) complete: \(complete)")
                #expect(again == tallied, "\(text) complete: \(complete), reused")
            }
        }
    }

    @Test func theCorpusJSONBodiesHaveTheTallysResult() {
        let names = UsageModelNames()
        var reused = UsageReader()
        for corpusCase in UsageCorpus.cases where corpusCase.file.hasSuffix(".json") {
            Self.check(String(decoding: corpusCase.bytes, as: UTF8.self), names: names, reused: &reused)
        }
    }

    @Test func generatedDocumentsHaveTheTallysResult() {
        var generator = UsageWholeRootTests.Generator(seed: 0x5EED_2026_1204)
        let names = UsageModelNames()
        var reused = UsageReader()
        for _ in 0..<1500 { Self.check(generator.document(), names: names, reused: &reused) }
    }

    /// A top-level `type` with a rule of its own is read by the tally, one without by the
    /// document; more than white space after the object leaves nothing.
    @Test func typesAndWhatFollowsTheObject() {
        let names = UsageModelNames()
        var reused = UsageReader()
        let types = [
            "message", "message_start", "message_delta", "content_block_delta", "response.completed",
            "response.output_text.delta", "response.created", "other", String(repeating: "t", count: 70), "",
        ]
        let usages = [
            #"{"prompt_tokens":3,"completion_tokens":4}"#, #"{"input_tokens":5,"output_tokens":6}"#, "null", "{}",
        ]
        for type in types {
            for usage in usages {
                let base =
                    #"{"id":"x","type":"\#(type)","model":"m-1","message":{"model":"m-2","usage":\#(usage)},"#
                    + #""response":{"model":"m-3","usage":\#(usage)},"usage":\#(usage)}"#
                for tail in ["", " \n", " x", "}", "{}"] {
                    Self.check(base + tail, names: names, reused: &reused)
                }
            }
        }
        let long = #"{"model":""# + String(repeating: "m", count: 300) + #"","usage":{"prompt_tokens":1}}"#
        Self.check(long, names: names, reused: &reused)
        Self.check(#"{"model":"","usage":{"prompt_tokens":1}}"#, names: names, reused: &reused)
    }
}
