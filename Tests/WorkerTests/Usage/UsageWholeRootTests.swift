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
    /// the fast path read the document.
    func bothWays(_ bytes: [UInt8]) -> (fast: Outcome, walk: Outcome, taken: Bool) {
        var whole = UsageJSONScanner()
        var walked = UsageJSONScanner()
        var direct = UsageJSONScanner()
        var taken = false
        bytes.withUnsafeBytes { all in
            whole.scan(all)
            walked.scan(UnsafeRawBufferPointer(rebasing: all[..<1]))
            walked.scan(UnsafeRawBufferPointer(rebasing: all[1...]))
            // Called directly, to tell whether it read the document (and what follows the
            // object, scanned after it, as `scan` does).
            if all.first == UInt8(ascii: "{"), let end = direct.readWholeRoot(all, from: 1) {
                taken = true
                direct.scan(UnsafeRawBufferPointer(rebasing: all[end...]))
            }
        }
        if taken { #expect(Outcome(direct) == Outcome(whole)) }
        return (Outcome(whole), Outcome(walked), taken)
    }

    @Test func theCorpusJSONBodiesAreReadAsTheWalkReadsThem() {
        var taken = 0
        for corpusCase in UsageCorpus.cases where corpusCase.file.hasSuffix(".json") {
            let bytes = corpusCase.bytes
            let start = bytes.firstIndex { $0 > 0x20 } ?? 0
            let (fast, walk, wasTaken) = bothWays(Array(bytes[start...]))
            #expect(fast == walk, "\(corpusCase.file)")
            if wasTaken { taken += 1 }
        }
        // Most of the corpus's bodies are plain: the fast path reads them.
        #expect(taken >= 3)
    }

    @Test func theBenchMockIsReadWhole() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../bench/mock/chat.json").standardized
        let bytes = [UInt8](try Data(contentsOf: url))
        let (fast, walk, taken) = bothWays(bytes)
        #expect(taken)
        #expect(fast == walk)
        #expect(fast.usage == UsageCounts(present: true, promptTokens: 19, completionTokens: 52))
        #expect(fast.model == "gpt-4o-mini-2024-07-18")
    }

    @Test func generatedDocumentsAreReadAsTheWalkReadsThem() {
        var generator = Generator(seed: 0x5EED_2026_1203)
        var taken = 0
        var valid = 0
        let documents = 4000
        for _ in 0..<documents {
            let text = generator.document()
            let (fast, walk, wasTaken) = bothWays(Array(text.utf8))
            #expect(fast == walk, "\(text)")
            if wasTaken { taken += 1 }
            if walk.valid { valid += 1 }
        }
        // Both paths are exercised: the fast path reads many documents, and gives up on others.
        #expect(taken > documents / 10)
        #expect(taken < valid)
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
