import Foundation
import Testing
@testable import FluxgateWorker

/// A JSON body whose object is whole in one slice is read in one call (`readWholeRoot`); the
/// result must be the member walk's, byte for byte, on any document: whatever that path does not
/// take it leaves to the walk from the document's start.
@Suite struct UsageWholeRootTests {
    /// What a scan leaves: whether the document was whole and what it kept.
    struct Outcome: Equatable {
        var valid: Bool
        var type: String?
        var typeSet: Bool
        var model: String?
        var modelSet: Bool
        var usage: UsageCounts
        var responseUsage: UsageCounts
        var messageUsage: UsageCounts
        var contentDeltas: Int

        init(_ scanner: UsageJSONScanner) {
            valid = scanner.finish()
            type = scanner.document.type.string
            typeSet = scanner.document.type.isSet
            model = scanner.document.model.string
            modelSet = scanner.document.model.isSet
            usage = scanner.document.usage
            responseUsage = scanner.document.responseUsage
            messageUsage = scanner.document.messageUsage
            contentDeltas = scanner.document.contentDeltas
        }
    }

    /// `bytes` in one slice (the fast path where it applies), and its first byte alone, then the
    /// rest (the walk: a slice of `{` alone ends the object's first): both outcomes, and whether
    /// the fast path read the document. The fast path's two reads are compared too: where the C
    /// one takes the document, the Swift one takes it and keeps the same.
    func bothWays(_ bytes: [UInt8]) -> (fast: Outcome, walk: Outcome, taken: Bool) {
        bothReads(bytes).outcomes
    }

    /// `bothWays`, and whether the C read took the document.
    func bothReads(_ bytes: [UInt8]) -> (outcomes: (fast: Outcome, walk: Outcome, taken: Bool), takenInC: Bool) {
        var whole = UsageJSONScanner()
        var walked = UsageJSONScanner()
        var direct = UsageJSONScanner()
        var inC = UsageJSONScanner()
        var inSwift = UsageJSONScanner()
        var taken = false
        var takenInC = false
        var takenInSwift = false
        bytes.withUnsafeBytes { all in
            whole.scan(all)
            walked.scan(UnsafeRawBufferPointer(rebasing: all[..<1]))
            walked.scan(UnsafeRawBufferPointer(rebasing: all[1...]))
            // Called directly, to tell whether it read the document (and what follows the
            // object, scanned after it, as `scan` does).
            guard all.first == UInt8(ascii: "{") else { return }
            if let end = direct.readWholeRoot(all, from: 1) {
                taken = true
                direct.scan(UnsafeRawBufferPointer(rebasing: all[end...]))
            }
            if let end = inC.readWholeRoot(all, from: 1, reads: .cOnly) {
                takenInC = true
                inC.scan(UnsafeRawBufferPointer(rebasing: all[end...]))
            }
            if let end = inSwift.readWholeRoot(all, from: 1, reads: .swiftOnly) {
                takenInSwift = true
                inSwift.scan(UnsafeRawBufferPointer(rebasing: all[end...]))
            }
        }
        if taken { #expect(Outcome(direct) == Outcome(whole)) }
        #expect(taken == takenInSwift)
        if takenInC {
            #expect(takenInSwift)
            #expect(Outcome(inC) == Outcome(inSwift))
        }
        return ((Outcome(whole), Outcome(walked), taken), takenInC)
    }

    /// White space after the object, to make a short document as long as the C read needs.
    static func padded(_ bytes: [UInt8]) -> [UInt8] { bytes + [UInt8](repeating: 0x20, count: 64) }

    @Test func theCorpusJSONBodiesAreReadAsTheWalkReadsThem() {
        var taken = 0
        var takenInC = 0
        for corpusCase in UsageCorpus.cases where corpusCase.file.hasSuffix(".json") {
            let bytes = corpusCase.bytes
            let start = bytes.firstIndex { $0 > 0x20 } ?? 0
            let ((fast, walk, wasTaken), wasTakenInC) = bothReads(Array(bytes[start...]))
            #expect(fast == walk, "\(corpusCase.file)")
            if wasTaken { taken += 1 }
            if wasTakenInC { takenInC += 1 }
        }
        // Most of the corpus's bodies are plain: the fast path reads them, in C.
        #expect(taken >= 3)
        #expect(takenInC >= 3)
    }

    @Test func theBenchMockIsReadWhole() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../bench/mock/chat.json").standardized
        let bytes = [UInt8](try Data(contentsOf: url))
        let ((fast, walk, taken), takenInC) = bothReads(bytes)
        #expect(taken)
        #if arch(x86_64)
        #expect(takenInC == UsageJSONScanner.jsonSkipAVX2)
        #endif
        #expect(fast == walk)
        #expect(fast.usage == UsageCounts(present: true, promptTokens: 19, completionTokens: 52))
        #expect(fast.model == "gpt-4o-mini-2024-07-18")
    }

    /// The bench's body, whose members come in the order `fluxgate_root_object` expects (OpenAI's),
    /// with a byte replaced, inserted or removed at every offset, and with members added, dropped,
    /// repeated or spaced: the C read keeps what the Swift read keeps wherever it takes the body
    /// (`bothReads`), and takes every plain one.
    @Test func theExpectedMemberOrderIsReadAsTheWalkReadsIt() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../bench/mock/chat.json").standardized
        let bytes = [UInt8](try Data(contentsOf: url))
        let replacements = Array(#"" \{}[],:05x"#.utf8) + [0x01, 0x0A]
        for at in 1..<bytes.count {
            for byte in replacements where byte != bytes[at] {
                var changed = bytes
                changed[at] = byte
                let (fast, walk, _) = bothWays(changed)
                #expect(fast == walk, "\(at) \(byte)")
            }
            var removed = bytes
            removed.remove(at: at)
            let (fast, walk, _) = bothWays(removed)
            #expect(fast == walk, "\(at) removed")
            var inserted = bytes
            inserted.insert(UInt8(ascii: " "), at: at)
            let (insertedFast, insertedWalk, _) = bothWays(inserted)
            #expect(insertedFast == insertedWalk, "\(at) inserted")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let variants = [
            text.replacingOccurrences(of: #""total_tokens":71}"#, with: #""total_tokens":71,"prompt_tokens_details":{"cached_tokens":5}}"#),
            text.replacingOccurrences(of: #","system_fingerprint":"fp_mock00001""#, with: ""),
            text.replacingOccurrences(of: #","system_fingerprint""#, with: #","service_tier":"default","system_fingerprint""#),
            text.replacingOccurrences(
                of: #","system_fingerprint":"fp_mock00001""#, with: #","system_fingerprint":null,"usage":{"completion_tokens":7}"#),
            text.replacingOccurrences(of: #""usage":{"#, with: #""usage":{"prompt_tokens":1},"usage":{"#),
            text.replacingOccurrences(of: #""model":"gpt"#, with: #""model":"x","model":"gpt"#),
            text.replacingOccurrences(
                of: #""prompt_tokens":19,"completion_tokens":52"#, with: #""completion_tokens":52,"prompt_tokens":19"#),
            text.replacingOccurrences(of: #""prompt_tokens":19"#, with: #""prompt_tokens":null"#),
            text.replacingOccurrences(of: #""completion_tokens":52"#, with: #""completion_tokens":true"#),
            text.replacingOccurrences(of: #""total_tokens":71"#, with: #""total_tokens":[71]"#),
            text.replacingOccurrences(of: #""created":1700000000"#, with: #""created":null"#),
            text.replacingOccurrences(of: #""object":"chat.completion""#, with: #""object":"chat.completion","type":"t""#),
            text.replacingOccurrences(of: #"","#, with: #"", "#),
            text.replacingOccurrences(of: #""id":"#, with: #""id": "#),
            text.replacingOccurrences(of: "}", with: "}\n"),
        ]
        for variant in variants {
            let ((fast, walk, _), takenInC) = bothReads(Array(variant.utf8))
            #expect(fast == walk, "\(variant)")
            #if arch(x86_64)
            #expect(takenInC == UsageJSONScanner.jsonSkipAVX2, "\(variant)")
            #endif
        }
    }

    @Test func generatedDocumentsAreReadAsTheWalkReadsThem() {
        var generator = Generator(seed: 0x5EED_2026_1203)
        var taken = 0
        var valid = 0
        let documents = 4000
        var takenInC = 0
        for _ in 0..<documents {
            let text = generator.document()
            let (fast, walk, wasTaken) = bothWays(Array(text.utf8))
            #expect(fast == walk, "\(text)")
            if wasTaken { taken += 1 }
            if walk.valid { valid += 1 }
            // Long enough for the C read.
            let ((paddedFast, paddedWalk, _), wasTakenInC) = bothReads(Self.padded(Array(text.utf8)))
            #expect(paddedFast == paddedWalk, "\(text)")
            if wasTakenInC { takenInC += 1 }
        }
        // Both paths are exercised: the fast path reads many documents, and gives up on others.
        #expect(taken > documents / 10)
        #expect(taken < valid)
        if UsageJSONScanner.jsonSkipAVX2 { #expect(takenInC > documents / 10) }
    }

    /// The generated documents behind a first member of every length up to 140 bytes: the C
    /// read's strings (names and values, found through 64-byte windows of the stops) start and
    /// end at every offset of a window, and at the body's last 64 bytes.
    @Test func shiftedDocumentsAreReadAsTheWalkReadsThem() {
        var generator = Generator(seed: 0x5EED_2026_1204)
        var takenInC = 0
        let documents = 3000
        for round in 0..<documents {
            let text = generator.document()
            guard text.first == "{", text.count > 2 else { continue }
            let lead = "{\"id\":\"" + String(repeating: "a", count: round % 141) + "\","
            let shifted = Array((lead + text.dropFirst()).utf8)
            let ((fast, walk, _), wasTakenInC) = bothReads(round % 2 == 0 ? shifted : Self.padded(shifted))
            #expect(fast == walk, "\(lead + text.dropFirst())")
            if wasTakenInC { takenInC += 1 }
        }
        if UsageJSONScanner.jsonSkipAVX2 { #expect(takenInC > documents / 10) }
    }

    @Test func unusualDocumentsAreLeftToTheWalk() {
        let cases = [
            #"{"us\u0061ge":{"prompt_tokens":3}}"#,  // an escape in a name
            #"{"model":"a\"b","usage":{"prompt_tokens":3}}"#,  // an escape in a kept value
            #"{"usage":{"prompt_tokens":3.5}}"#,  // a count not plain
            #"{"usage":{"prompt_tokens":3},}"#,  // a trailing comma
            #"{"usage":{"prompt_tokens":3}"#,  // cut
        ]
        for text in cases {
            let (fast, walk, taken) = bothWays(Array(text.utf8))
            #expect(!taken, "\(text)")
            #expect(fast == walk, "\(text)")
        }
    }

    @Test func duplicatesAndOrderAreTheWalks() {
        let cases = [
            #"{"usage":{"prompt_tokens":3},"choices":[{"message":{"content":"}{\"usage\":"}}],"usage":{"completion_tokens":4}}"#,
            #"{"model":"a","model":"b","usage":{"prompt_tokens":1,"prompt_tokens":null}}"#,
            #"{"usage":{"prompt_tokens_details":{"cached_tokens":2},"prompt_tokens_details":{"audio_tokens":1}}}"#,
            #"{ "response" : { "usage" : { "input_tokens" : 5 , "input_tokens_details" : { "cached_tokens" : 1 } } , "model" : "m" } } "#,
            #"{"message":{"model":"m","usage":{"input_tokens":5}},"message":{"usage":{"output_tokens":2}}}"#,
        ]
        for text in cases {
            let (fast, walk, taken) = bothWays(Array(text.utf8))
            #expect(taken, "\(text)")
            #expect(fast == walk, "\(text)")
        }
    }

    /// The C read against the Swift one (`bothReads` compares them) on the shapes either may meet:
    /// what it takes, and what it must leave to the Swift read or the walk.
    @Test func theCReadKeepsWhatTheSwiftReadKeeps() {
        let taken = [
            #"{"id":"x","model":"m","choices":[{"message":{"model":"inner","usage":{"prompt_tokens":9}}}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
            #"{"model":"a","model":"b","usage":{"prompt_tokens":1,"prompt_tokens":null},"usage":{"completion_tokens":2}}"#,
            "{\n  \"model\" : \"m\",\r\n\t\"usage\" :\n {\n \"prompt_tokens\" : 10 ,\n \"completion_tokens\":0\n }\n}\n",
            #"{"type":"message","model":"claude","usage":{"input_tokens":5,"cache_read_input_tokens":2,"cache_creation_input_tokens":1,"output_tokens":3}}"#,
            #"{"response":{"model":"r","usage":{"input_tokens":5,"input_tokens_details":{"cached_tokens":1},"output_tokens":2}},"response":{"id":"2"}}"#,
            #"{"message":{"model":"m","usage":{"input_tokens":5}},"message":{"usage":{"output_tokens":2}}}"#,
            #"{"usage":{"prompt_tokens_details":{"cached_tokens":2},"prompt_tokens_details":{"audio_tokens":1},"prompt_tokens":4}}"#,
            #"{"usage":{"prompt_tokens":999999999999999,"completion_tokens":true},"created":0,"x":false,"y":null}"#,
            #"{"a":{"b":"\"}\\","c":[1,{"d":"]"}]},"usage":{"prompt_tokens":1},"model":""}"#,
            #"{}"#,
            #"{"usage":{"prompt_tokens":3}} }"#,  // a byte after the object (the scan's to refuse)
        ]
        let leftToSwift = [
            #"{"us\u0061ge":{"prompt_tokens":3},"model":"m"}"#,  // an escape in a name
            #"{"model":"a\"b","usage":{"prompt_tokens":3}}"#,  // an escape in a kept value
            #"{"id":"a\nb","usage":{"prompt_tokens":3}}"#,  // an escape in a skipped value
            #"{"usage":{"prompt_tokens":3.5}}"#,  // a count not plain
            #"{"usage":{"prompt_tokens":1e3}}"#,  // a count with an exponent
            #"{"temperature":1.5e-3,"usage":{"prompt_tokens":3}}"#,  // a skipped number not plain
            #"{"usage":{"prompt_tokens":-3}}"#,
            #"{"usage":{"prompt_tokens":0123}}"#,
            #"{"usage":{"prompt_tokens":1234567890123456}}"#,  // 16 digits
            #"{"usage":null,"model":"m"}"#,  // a followed member not an object
            #"{"model":null}"#,
            #"{"usage":{"prompt_tokens":3},}"#,  // a trailing comma
            #"{"usage":{"prompt_tokens":3}"#,  // cut
            #"{"usage":{"prompt_tokens":3}truex}"#,
            #"{"x":[1,2\],"usage":{"prompt_tokens":3}}"#,  // a backslash outside a string
            "{\"id\":\"a\u{01}b\",\"usage\":{\"prompt_tokens\":3}}",  // a control byte in a string
        ]
        for text in taken {
            let ((fast, walk, _), takenInC) = bothReads(Self.padded(Array(text.utf8)))
            #expect(takenInC == UsageJSONScanner.jsonSkipAVX2, "\(text)")
            #expect(fast == walk, "\(text)")
        }
        for text in leftToSwift {
            let ((fast, walk, _), takenInC) = bothReads(Self.padded(Array(text.utf8)))
            #expect(!takenInC, "\(text)")
            #expect(fast == walk, "\(text)")
        }
    }

    /// Documents built from the members the reader follows and skips, with strings holding
    /// brackets, quotes and escapes, nested values, duplicates, white space, and now and then a
    /// byte the grammar refuses. Seeded: a failure is reproducible.
    struct Generator {
        var state: UInt64

        init(seed: UInt64) { state = seed }

        mutating func next() -> UInt64 {
            // SplitMix64.
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }

        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

        mutating func space() -> String { below(6) == 0 ? pick([" ", "\n", "\t ", "\r\n  "]) : "" }

        static let rootNames = [
            "id", "object", "created", "model", "usage", "choices", "type", "message", "response",
            "system_fingerprint", "us\\u0061ge", "mo\\\"del", "{[", "", "usage ", "content",
        ]
        static let usageNames = [
            "prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens",
            "prompt_tokens_details", "input_tokens_details", "cache_read_input_tokens",
            "cache_creation_input_tokens", "cached_tokens", "audio_tokens", "model",
        ]
        static let strings = [
            #""plain""#, #""with {brace} [and] \"quote\"""#, #""esc\n\u00e9\\""#, #""}]""#, #""""#,
            #""gpt-4o-mini""#, #""\"""#, #""{\"usage\":{\"prompt_tokens\":9}}""#,
        ]
        static let numbers = ["0", "12", "1700000000", "-3", "1.5e3", "0123", "12345678901234567", "7 "]
        static let literals = ["true", "false", "null", "nul", "truex"]

        mutating func scalar() -> String {
            switch below(3) {
            case 0: pick(Self.strings)
            case 1: pick(Self.numbers)
            default: pick(Self.literals)
            }
        }

        mutating func value(depth: Int) -> String {
            guard depth < 4, below(3) == 0 else { return scalar() }
            let count = below(4)
            if below(2) == 0 {
                return "[" + (0..<count).map { _ in space() + value(depth: depth + 1) + space() }.joined(separator: ",") + "]"
            }
            return "{"
                + (0..<count).map { _ in
                    space() + "\"" + pick(Self.rootNames + Self.usageNames) + "\"" + space() + ":" + space()
                        + value(depth: depth + 1)
                }.joined(separator: ",") + "}"
        }

        mutating func object(names: [String], depth: Int) -> String {
            let count = below(6)
            var members: [String] = []
            for _ in 0..<count {
                let name = pick(names)
                var member = space() + "\"" + name + "\"" + space() + ":" + space()
                switch (name, below(4)) {
                case ("usage", 0...2), ("prompt_tokens_details", 0...2), ("input_tokens_details", 0...2), ("message", 0...1),
                    ("response", 0...1):
                    member += object(
                        names: name == "message" || name == "response" ? ["model", "usage", "id"] : Self.usageNames, depth: depth + 1)
                case (_, 0...1) where Self.usageNames.contains(name): member += pick(["3", "42", "null", "0", "7"])
                default: member += value(depth: depth + 1)
                }
                members.append(member + space())
            }
            var text = "{" + members.joined(separator: ",") + "}"
            // Now and then a byte the grammar refuses, or a cut.
            switch below(40) {
            case 0: text.insert(",", at: text.index(before: text.endIndex))
            case 1: text.removeLast()
            case 2 where text.count > 2: text.remove(at: text.index(text.startIndex, offsetBy: below(text.count - 1) + 1))
            default: break
            }
            return text
        }

        mutating func document() -> String {
            object(names: Self.rootNames, depth: 0) + space()
        }
    }
}
