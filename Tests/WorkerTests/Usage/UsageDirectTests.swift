import Testing

@testable import FluxgateWorker

/// The usual JSON body is read by one C call straight into the reader (`UsageReader.readDirect`,
/// docs/performance.md "session 16, usagedirect"): its result must be the general path's
/// (`readsDirect` false), whatever the body, however it ends, whatever follows it in a later
/// slice, with a new reader and with one reused after other bodies.
@Suite struct UsageDirectTests {
    static func read(
        _ slices: [[UInt8]], complete: Bool, direct: Bool, names: UsageModelNames, reused: inout UsageReader
    ) -> (fresh: UsageResult, reused: UsageResult) {
        var fresh = UsageReader(status: 200, contentType: .json, contentEncoding: .identity)
        fresh.readsDirect = direct
        for slice in slices { slice.withUnsafeBytes { fresh.feed($0) } }
        reused.readsDirect = direct
        reused.restart(status: 200, contentType: .json, contentEncoding: .identity)
        for slice in slices { slice.withUnsafeBytes { reused.feed($0) } }
        return (fresh.end(complete: complete), reused.end(complete: complete, names: names))
    }

    static func check(
        _ text: String, names: UsageModelNames, direct: inout UsageReader, general: inout UsageReader
    ) {
        let bytes = Array(text.utf8)
        for body in [bytes, UsageWholeRootTests.padded(bytes), Array("  \n".utf8) + UsageWholeRootTests.padded(bytes)] {
            for tail in ["", " \n", "x", " }"] {
                let slices = tail.isEmpty ? [body] : [body, Array(tail.utf8)]
                for complete in [true, false] {
                    let a = read(slices, complete: complete, direct: true, names: names, reused: &direct)
                    let b = read(slices, complete: complete, direct: false, names: names, reused: &general)
                    #expect(a.fresh == b.fresh, "\(text) tail: \(tail) complete: \(complete)")
                    #expect(a.reused == b.reused, "\(text) tail: \(tail) complete: \(complete), reused")
                }
            }
        }
    }

    @Test func theCorpusJSONBodiesHaveTheGeneralResult() {
        let names = UsageModelNames()
        var direct = UsageReader()
        var general = UsageReader()
        for corpusCase in UsageCorpus.cases where corpusCase.file.hasSuffix(".json") {
            Self.check(String(decoding: corpusCase.bytes, as: UTF8.self), names: names, direct: &direct, general: &general)
        }
    }

    @Test func generatedDocumentsHaveTheGeneralResult() {
        var generator = UsageWholeRootTests.Generator(seed: 0x5EED_2026_1216)
        let names = UsageModelNames()
        var direct = UsageReader()
        var general = UsageReader()
        for _ in 0..<800 { Self.check(generator.document(), names: names, direct: &direct, general: &general) }
    }

    /// Types (read by the tally or not), usages, models too long or empty, and what follows.
    @Test func typesModelsAndTails() {
        let names = UsageModelNames()
        var direct = UsageReader()
        var general = UsageReader()
        for type in [nil, "message", "message_start", "response.completed", "other", ""] as [String?] {
            for usage in [#"{"prompt_tokens":3,"completion_tokens":4}"#, #"{"input_tokens":5,"output_tokens":6}"#, "null", "{}"] {
                let typed = type.map { #""type":"\#($0)","# } ?? ""
                let text =
                    #"{"id":"x",\#(typed)"model":"m-1","message":{"model":"m-2","usage":\#(usage)},"#
                    + #""response":{"model":"m-3","usage":\#(usage)},"usage":\#(usage)}"#
                for trailer in ["", " \n", " x", "}", "{}"] {
                    Self.check(text + trailer, names: names, direct: &direct, general: &general)
                }
            }
        }
        for model in ["", "m", String(repeating: "m", count: 256), String(repeating: "m", count: 257), "e\\u0301"] {
            let text = #"{"id":"chatcmpl-1","object":"chat.completion","model":"\#(model)","usage":{"prompt_tokens":1}}"#
            Self.check(text, names: names, direct: &direct, general: &general)
        }
        Self.check(
            #"{"usage":{"prompt_tokens":1,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":1}}}"#, names: names,
            direct: &direct, general: &general)
    }
}
