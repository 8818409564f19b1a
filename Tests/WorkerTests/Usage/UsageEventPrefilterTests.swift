import Foundation
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
        let model = collector.tally.modelString
        return collector.tally.result(
            complete: true, unreadable: collector.skippedEvents > 0, stream: true, model: model)
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

    /// An OpenAI chunk as the API sends it; the id's length sets how many bytes the template keeps
    /// (suffix and head: 220 for 1, 255 for 36, 259 for 40, 322 for 90 with `"usage":null`; for 95
    /// the prefix is over 256 and none is kept), which decides how `fluxgate_event_run_avx2`
    /// compares them.
    static func openAIChunk(id: String, delta: String, finish: String = "null", extra: String = "") -> String {
        #"{"id":"\#(id)","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini-2024-07-18","#
            + #""system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":\#(delta),"logprobs":null,"#
            + #""finish_reason":\#(finish)}]\#(extra)}"#
    }

    /// Runs of full-size chunks, read 32 bytes a step where the CPU allows: content strings of
    /// every length around the steps, escapes and control bytes, other deltas, at every read size,
    /// count as the scanner counts them.
    @Test(arguments: [1, 36, 40, 90, 95])
    func runsOfFullSizeChunksCountAsTheScannerCounts(idLength: Int) {
        let id = "chatcmpl-" + String(repeating: "A", count: idLength)
        let extra = idLength >= 90 ? #","usage":null"# : ""
        func chunk(_ delta: String, finish: String = "null") -> String {
            Self.openAIChunk(id: id, delta: delta, finish: finish, extra: extra)
        }
        var events = [chunk(#"{"role":"assistant","content":""}"#)]
        for length in [0, 1, 2, 30, 31, 32, 33, 63, 64, 65, 100] {
            events += [chunk(#"{"content":"\#(String(repeating: "w", count: length))"}"#)]
        }
        let odd = [
            #"{"content":"a\"b"}"#, #"{"content":"tab\#tin"}"#, #"{"content":"\u0075sage"}"#, #"{}"#,
            #"{"content":"x","refusal":null}"#, #"{"content":null}"#, #"{"content":"\#(String(repeating: "z", count: 40))\\"}"#,
        ]
        for delta in odd { events += [chunk(#"{"content":"x"}"#), chunk(delta), chunk(#"{"content":"y"}"#)] }
        events += [chunk("{}", finish: #""stop""#), "[DONE]"]
        let bytes = Self.stream(events)
        let scanned = Self.scannerOnly(bytes)
        #expect(Self.whole(bytes) == scanned)
        for size in [97, 256, 300, 512, 1000, 2048] {
            let cuts = Array(stride(from: size, to: bytes.count, by: size))
            #expect(UsageFeed.read(bytes, contentType: "text/event-stream", cuts: cuts) == scanned)
        }
    }

    /// A `"delta"` object counts only as a member of an object in the top-level `choices` array,
    /// as the scanner counts it: anywhere else (another member's object, a nested array, a choice's
    /// inner object, `choices` not at the top level or misspelt) it is the scanner's to read, alone
    /// and after chunks that kept a template. The shortcut for the first chunk's
    /// `"choices":[{"index":0,` (`fluxgate_flat_members`) gives way to the walk for a bracket,
    /// `|` or an escape before it, or an index that is not digits.
    @Test(arguments: [
        #"{"id":"c","model":"m-1","choice":[{"index":0,"delta":{"content":"x"}}]}"#,
        #"{"id":"c","model":"m-1","x":{"delta":{"content":"x"}},\#(delta)}"#,
        #"{"id":"c","model":"m-1","choices":[[{"delta":{"content":"x"}}]]}"#,
        #"{"id":"c","model":"m-1","choices":[{"index":0,"x":{"delta":{"content":"x"}}}]}"#,
        #"{"id":"c","model":"m-1","choices":[{"index":0,"x":[{"delta":{"content":"x"}}]}]}"#,
        #"{"id":"c","model":"m-1","choices":[{"index":0,"delta":{"content":"x"}}],"delta":{"content":"y"}}"#,
        #"{"id":"c","model":"m-1","choices":[{"index":0,"delta":{"content":"x"}},{"index":1,"delta":{"content":"y"}}]}"#,
        #"{"id":"c","model":"m-1","choices":[{"index":0,"delta":{"content":"x"}}, {"x":{"delta":{"content":"y"}}}]}"#,
        #"{"id":"c","model":"m-1","o":{"choices":[{"delta":{"content":"x"}}]}}"#,
        #"{"id":"c","model":"m-1","choices":{"a":{"delta":{"content":"x"}}}}"#,
        #"{"id":"c","model":"m-1","choices":["[{\"",{"delta":{"content":"x"}}]}"#,
        #"{"id":"c","model":"m-1","n":"choices","choices" : [ { "delta" :{"content":"x"}}]}"#,
        #"[{"choices":[{"delta":{"content":"x"}}]}]"#,
        #"{"id":"c","model":"m-1","s":"a|b","choices":[{"index":0,"delta":{"content":"x"}}]}"#,
        #"{"id":"c","model":"m-1","s":"{","choices":[{"index":0,"delta":{"content":"x"}}]}"#,
        #"{"id":"c","model":"m-1","s":"a\"b","choices":[{"index":12,"delta":{"content":"x"}}]}"#,
        #"{"id":"c","model":"m-1","s":{"a":1},"choices":[{"delta":{"content":"x"}}]}"#,
        #"{"id":"c","model":"m-1","s":1,"choices":[{"index":-1,"delta":{"content":"x"}}]}"#,
    ])
    func aDeltaCountsOnlyInTheTopLevelChoices(_ event: String) {
        let first = #"{"id":"c","model":"m-1",\#(Self.delta)}"#
        for events in [[event], [first, event, event], [first, first, event, first]] {
            let bytes = Self.stream(events + ["[DONE]"])
            let scanned = Self.scannerOnly(bytes)
            #expect(Self.whole(bytes) == scanned, "\(events)")
            for cut in [7, 64, 100] {
                let cuts = Array(stride(from: cut, to: bytes.count, by: cut))
                #expect(UsageFeed.read(bytes, contentType: "text/event-stream", cuts: cuts) == scanned, "\(events) \(cut)")
            }
        }
    }

    /// A chunk in a run that differs from the kept one in any byte of a string outside its delta
    /// (its id, a member name, the fingerprint, the next chunk's head) breaks the run there and is
    /// read as the scanner reads it.
    @Test(arguments: [1, 40, 90])
    func aRunBrokenAtAnyByteCountsAsTheScannerCounts(idLength: Int) {
        let id = "chatcmpl-" + String(repeating: "A", count: idLength)
        let extra = idLength >= 90 ? #","usage":null"# : ""
        let plain = Array(("data: " + Self.openAIChunk(id: id, delta: #"{"content":"x"}"#, extra: extra) + "\n\n").utf8)
        let delta = plain.indices.first { plain[$0...].starts(with: Array(#"{"content""#.utf8)) }!
        var inString = false
        for k in plain.indices {
            let b = plain[k]
            if b == UInt8(ascii: "\"") { inString.toggle() }
            // Letters and digits inside strings, outside the delta object: still valid JSON.
            guard inString, k < delta || k > delta + 16, b.isLetterOrDigit else {
                continue
            }
            var changed = plain
            changed[k] = b == UInt8(ascii: "u") ? UInt8(ascii: "v") : UInt8(ascii: "u")
            let first = Array(
                ("data: " + Self.openAIChunk(id: id, delta: #"{"role":"assistant","content":""}"#, extra: extra) + "\n\n").utf8)
            let bytes = first + plain + plain + changed + plain + plain + Array("data: [DONE]\n\n".utf8)
            let scanned = Self.scannerOnly(bytes)
            #expect(Self.whole(bytes) == scanned, "byte \(k)")
            let cuts = Array(stride(from: 700, to: bytes.count, by: 700))
            #expect(UsageFeed.read(bytes, contentType: "text/event-stream", cuts: cuts) == scanned, "byte \(k)")
        }
    }
}

extension UsageEventPrefilterTests {
    /// The data lines of every SSE stream of the corpus, and generated OpenAI chunks with each byte
    /// before their `"model"` changed to each byte the shortcut looks at, where that leaves them
    /// JSON (the walk is no validator either: on bytes that are not JSON the two may differ).
    static let modelEvents: [[UInt8]] = {
        var events: [[UInt8]] = []
        for corpusCase in UsageCorpus.cases where corpusCase.file.hasSuffix(".sse") {
            let text = String(decoding: corpusCase.bytes, as: UTF8.self)
            for line in text.split(separator: "\n") where line.hasPrefix("data:") {
                events.append(Array(line.dropFirst(line.hasPrefix("data: ") ? 6 : 5).utf8))
            }
        }
        let model = Array(#""model""#.utf8)
        for idLength in [0, 1, 7, 14, 15, 16, 17, 31, 32, 33, 40] {
            let id = String(repeating: "A", count: idLength)
            for event in [
                Array(Self.openAIChunk(id: id, delta: #"{"content":"x"}"#).utf8),
                Array(#"{ "id" : "\#(id)" , "n" : -1.5e3,"ok":true, "model" : "m"}"#.utf8),
            ] {
                events.append(event)
                let at = event.indices.first { event[$0...].starts(with: model) }!
                for k in 0..<at {
                    for b in Array(#"[]{}|\":, "#.utf8) + [0x09, 0x01, 0xDB, 0xFB] where event[k] != b {
                        var changed = event
                        changed[k] = b
                        if (try? JSONSerialization.jsonObject(with: Data(changed))) != nil { events.append(changed) }
                    }
                }
            }
        }
        return events
    }()

    /// The first chunk's shortcut for its members before `"model"` (`fluxgate_flat_members`)
    /// gives the member walk's result, for every `"model"` of the corpus's events and of generated
    /// chunks with a byte before their model changed.
    @Test func theModelShortcutGivesTheWalksResult() {
        let model = Array(#""model""#.utf8)
        var read = 0
        for event in Self.modelEvents {
            event.withUnsafeBytes { data in
                for at in event.indices where event[at...].starts(with: model) {
                    let fast = UsageEventPrefilter.topLevelModel(data, at: at)
                    let walked = UsageEventPrefilter.topLevelModel(data, at: at, shortcut: false)
                    if fast != walked { Issue.record("\(String(decoding: event, as: UTF8.self)) at \(at)") }
                    if fast != nil { read += 1 }
                }
            }
        }
        #expect(read > 100)
    }

    /// `flatMembers` (`fluxgate_flat_members`) is the byte loop it stands for, at every length around its
    /// 16-byte blocks, with each byte it looks for anywhere.
    @Test func flatMembersIsItsByteLoop() {
        func byteLoop(_ bytes: [UInt8]) -> Bool {
            var quotes = 0
            for b in bytes {
                if b & 0xDF == UInt8(ascii: "[") || b & 0xDF == UInt8(ascii: "\\") || b & 0xDF == UInt8(ascii: "]") || b < 0x20 {
                    return false
                }
                if b == UInt8(ascii: "\"") { quotes += 1 }
            }
            return quotes % 2 == 0
        }
        var generator = XorShift(state: 0x9E37_79B9_7F4A_7C15)
        let special = Array(#"[]{}|\""#.utf8) + [0x09, 0x00, 0x1F, 0x20, 0x7F, 0xDB, 0xFB, 0xFD]
        for n in 0...80 {
            for _ in 0..<200 {
                var bytes = (0..<n).map { _ in UInt8.random(in: 0x61...0x7A, using: &generator) }
                for _ in 0..<Int.random(in: 0...3, using: &generator) where n > 0 {
                    bytes[Int.random(in: 0..<n, using: &generator)] = special.randomElement(using: &generator)!
                }
                let flat = bytes.withUnsafeBytes { UsageEventPrefilter.flatMembers($0, 0..<n) }
                #expect(flat == byteLoop(bytes), "\(bytes)")
            }
        }
    }

    /// The candidate search 32 positions a step (AVX2) finds what the 16-byte one finds, from
    /// every start, at every length around its steps, with each byte it looks for anywhere.
    @Test func theWideCandidateSearchIsTheNarrowOne() {
        guard UsageEventPrefilter.avx2 else { return }
        var generator = XorShift(state: 0x2545_F491_4F6C_DD1D)
        let special = Array(#""\utmd"#.utf8) + [0x0D, 0x0A]
        for n in 0...100 {
            for _ in 0..<40 {
                var bytes = (0..<n).map { _ in UInt8.random(in: 0x61...0x63, using: &generator) }
                for _ in 0..<Int.random(in: 0...4, using: &generator) where n > 0 {
                    bytes[Int.random(in: 0..<n, using: &generator)] = special.randomElement(using: &generator)!
                }
                bytes.withUnsafeBytes { data in
                    for start in 0...(n + 1) {
                        let wide = UsageEventPrefilter.nextCandidate(data, from: start, wide: true)
                        let narrow = UsageEventPrefilter.nextCandidate(data, from: start, wide: false)
                        if wide != narrow { Issue.record("\(bytes) from \(start): \(wide) \(narrow)") }
                    }
                }
            }
        }
    }

    /// An OpenAI stream's last chunk after a run (its delta `{}`, a finish reason) and the
    /// `[DONE]` after it are read with the run (`EventTemplate.repeated`, from the kept prefix on):
    /// every tail, line ending and read size, and a chunk after the `[DONE]`, count as the scanner
    /// counts them.
    @Test(arguments: [
        #","logprobs":null,"finish_reason":"stop"}]}"#,
        #","logprobs":null,"finish_reason":"length"}],"usage":null}"#,
        #","logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#,
        #","logprobs":null,"finish_reason":"stop"},{"index":1,"delta":{"content":"z"}}]}"#,
        #","logprobs":null,"finish_reason":"stop"}],"model":"other"}"#,
        #","logprobs":null,"finish_reason":"st\u006fp"}]}"#,
        #","logprobs":null,"finish_reason":"stop","x":{"delta":{"content":"z"}}}]}"#,
        #","type":"chunk"}]}"#,
        #"}]}  "#,
    ])
    func theLastChunkAfterARunCountsAsTheScannerCounts(_ tail: String) {
        let id = "chatcmpl-" + String(repeating: "A", count: 36)
        func chunk(_ delta: String) -> String { Self.openAIChunk(id: id, delta: delta) }
        let plain = Self.openAIChunk(id: id, delta: "{}")
        let last = String(plain[..<plain.range(of: #","logprobs""#)!.lowerBound]) + tail
        for delta in ["{}", #"{"content":"end"}"#, #"{"content":""}"#, #"{"role":"assistant"}"#] {
            let finish = last.replacingOccurrences(of: #""delta":{}"#, with: #""delta":\#(delta)"#)
            for (withModel, after) in [(true, []), (false, []), (true, [chunk(#"{"content":"late"}"#), "[DONE]"])] {
                var events = [chunk(#"{"role":"assistant","content":""}"#)]
                events += (0..<6).map { chunk(#"{"content":"w\#($0)"}"#) } + [finish, "[DONE]"] + after
                if !withModel { events = events.map { $0.replacingOccurrences(of: #""model""#, with: #""mod""#) } }
                for ending in ["\n\n", "\r\n\r\n", "\n\r\n"] {
                    let bytes = Array(events.map { "data: \($0)\(ending)" }.joined().utf8)
                    let scanned = Self.scannerOnly(bytes)
                    #expect(Self.whole(bytes) == scanned, "\(tail) \(delta) \(withModel)")
                    for size in [300, 700, 1000, bytes.count - 20, bytes.count - 3] {
                        let cuts = Array(stride(from: size, to: bytes.count, by: size))
                        #expect(
                            UsageFeed.read(bytes, contentType: "text/event-stream", cuts: cuts) == scanned,
                            "\(tail) \(delta) \(withModel) \(size)")
                    }
                }
            }
        }
    }
}

/// The same bytes every run.
private struct XorShift: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

extension UInt8 {
    fileprivate var isLetterOrDigit: Bool {
        (self >= 0x30 && self <= 0x39) || (self | 0x20 >= 0x61 && self | 0x20 <= 0x7A)
    }
}
