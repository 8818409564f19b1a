import Common
import NIOCore
import Testing
@testable import FluxgateWorker

/// docs/routing-and-forwarding.md "Model routing": the body's top-level `model` and its rename,
/// as pure functions over bytes.
@Suite struct ModelMemberTests {
    static func find(_ text: String) -> ModelMember.Outcome {
        Array(text.utf8).withUnsafeBytes { ModelMember.find(in: $0) }
    }

    static func name(_ text: String) -> String? {
        if case .found(_, let name) = find(text) { return name }
        return nil
    }

    @Test func theTopLevelModelIsFoundWhereverItStands() {
        #expect(Self.name(#"{"model":"gpt-4o","messages":[]}"#) == "gpt-4o")
        #expect(Self.name(#" { "messages" : [ {"role":"user","content":"hi"} ] , "model" : "gpt-4o" } "#) == "gpt-4o")
        #expect(Self.name("{\n\t\"stream\": true,\n\t\"n\": -1.5e3,\n\t\"x\": null,\n\t\"model\": \"m\"\n}") == "m")
    }

    @Test func theSDKsShapeIsTakenAtOnceOnlyForANameOfPlainBytes() {
        // `leadingModel` reads `{"model":"<name>"` eight bytes at a time: a name with an escape
        // or a control byte anywhere, at any length, is left to the walk.
        for length in 0...24 {
            let plain = String(repeating: "m", count: length)
            let body = Array(#"{"model":"\#(plain)","n":1}"#.utf8)
            let literal = body.withUnsafeBytes { ModelMember.leadingModel($0) }
            #expect(literal == 9..<(11 + length), "\(length) plain bytes")
            #expect(Self.name(String(decoding: body, as: UTF8.self)) == plain)
            for position in 0..<length {
                for odd: UInt8 in [0x5C, 0x01, 0x1F, 0x09] {
                    var bytes = body
                    bytes[10 + position] = odd
                    #expect(bytes.withUnsafeBytes { ModelMember.leadingModel($0) } == nil, "\(odd) at \(position) of \(length)")
                }
                // Bytes just above the ones it looks for are plain.
                var bytes = body
                bytes[10 + position] = 0x5D
                #expect(bytes.withUnsafeBytes { ModelMember.leadingModel($0) } == 9..<(11 + length))
            }
        }
    }

    @Test func aModelInsideANestedValueIsNotTheTopLevelOne() {
        #expect(Self.find(#"{"metadata":{"model":"gpt-4o"},"messages":[{"model":"x"}]}"#) == .missing)
        #expect(Self.find(#"{"a":"\"model\":\"x\"","b":["{\"model\":"]}"#) == .missing)
        #expect(Self.name(#"{"metadata":{"model":"inner"},"model":"outer"}"#) == "outer")
    }

    @Test func escapesAreDecodedAndTheirLiteralKeptWhole() {
        let text = #"{"model":"a\"b\\c\u00e9\ud83d\ude00/\/"}"#
        guard case .found(let literal, let name) = Self.find(text) else {
            Issue.record("not found")
            return
        }
        #expect(name == "a\"b\\cé😀//")
        #expect(String(decoding: Array(text.utf8)[literal], as: UTF8.self) == #""a\"b\\c\u00e9\ud83d\ude00/\/""#)
        // A member name spelled with an escape is `model` to the upstream too.
        #expect(Self.name(#"{"mod\u0065l":"x"}"#) == "x")
    }

    @Test func whatIsNotAnObjectWithAStringModelIsSaidSo() {
        #expect(Self.find(#"["model","x"]"#) == .notAnObject)
        #expect(Self.find(#""model""#) == .notAnObject)
        #expect(Self.find("{}") == .missing)
        #expect(Self.find(#"{"model":5}"#) == .notAString)
        #expect(Self.find(#"{"model":null}"#) == .notAString)
        #expect(Self.find(#"{"model":{"name":"x"}}"#) == .notAString)
        #expect(Self.find(#"{"model":"\ud800"}"#) == .notAString)
        #expect(Self.find(#"{"model":"\q"}"#) == .notAString)
        // Raw bytes that are not UTF-8 (a lone continuation byte, a cut sequence) are not a name.
        for bad: [UInt8] in [[0x80], [0x67, 0xFF, 0x70], [0xE2, 0x82]] {
            let body = Array(#"{"model":""#.utf8) + bad + Array(#""}"#.utf8)
            #expect(body.withUnsafeBytes { ModelMember.find(in: $0) } == .notAString)
        }
        #expect(Self.name(#"{"model":"modèle-π"}"#) == "modèle-π")
        #expect(Self.find(#"{"a" 1,"model":"x"}"#) == .invalid)
        #expect(Self.find(#"{"a":1 "model":"x"}"#) == .invalid)
        #expect(Self.find("{\"model\":\"a\nb\"}") == .invalid)
    }

    /// Every prefix of a body says "more" until the model's closing quote has arrived, then the
    /// full answer: never a wrong one from a cut in the middle of a token.
    @Test func everyPrefixSaysMoreUntilTheAnswerIsCertain() {
        let bodies = [
            #"{"messages":[{"role":"user","content":"say \"model\": {x} [y]"}],"temperature":0.5,"stream":true,"model":"gpt-\u0034o"}"#,
            #"{"a":{"b":[1,2,{"model":"no"}]},"model":"ft:gpt-4o-mini:acme"}"#,
            // The SDKs' shape, read without the walk.
            #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
        ]
        for body in bodies {
            let bytes = Array(body.utf8)
            let full = bytes.withUnsafeBytes { ModelMember.find(in: $0) }
            guard case .found(let literal, _) = full else {
                Issue.record("not found in \(body)")
                continue
            }
            for cut in 0..<bytes.count {
                let outcome = bytes[..<cut].withUnsafeBytes { ModelMember.find(in: $0) }
                #expect(outcome == (cut < literal.upperBound ? .needMore : full), "cut at \(cut)")
            }
        }
    }

    @Test func theRenameReplacesOnlyTheLiteral() {
        let text = #"{ "messages":[{"content":"keep \"model\": this"}], "model" : "a\u0062c" ,"z":1}"#
        let bytes = Array(text.utf8)
        guard case .found(let literal, _) = bytes.withUnsafeBytes({ ModelMember.find(in: $0) }) else {
            Issue.record("not found")
            return
        }
        let renamed = ModelRename.splice(ByteBuffer(bytes: bytes), literal: literal, with: "up\"stream\n", allocator: .init())
        let expected = Array(bytes[..<literal.lowerBound]) + Array(#""up\"stream\n""#.utf8) + Array(bytes[literal.upperBound...])
        #expect(Array(renamed.readableBytesView) == expected)
        // Read back, the renamed body names the upstream's model.
        guard case .found(_, let name) = Array(renamed.readableBytesView).withUnsafeBytes({ ModelMember.find(in: $0) }) else {
            Issue.record("renamed body has no model")
            return
        }
        #expect(name == "up\"stream\n")
    }

    @Test func patternsMatchRunsOfAnyCharacters() {
        #expect(ModelPattern("ft:gpt-4o-mini:*").matches("ft:gpt-4o-mini:acme:123"))
        #expect(ModelPattern("ft:gpt-4o-mini:*").matches("ft:gpt-4o-mini:"))
        #expect(!ModelPattern("ft:gpt-4o-mini:*").matches("ft:gpt-4o:acme"))
        #expect(ModelPattern("*-mini").matches("gpt-4o-mini") && !ModelPattern("*-mini").matches("gpt-4o-mini-x"))
        #expect(ModelPattern("a*b*c").matches("abc") && ModelPattern("a*b*c").matches("aXbYbZc"))
        #expect(!ModelPattern("a*b*c").matches("acb") && !ModelPattern("ab*ba").matches("aba"))
        #expect(ModelPattern("*").matches("") && ModelPattern("gpt-4o").matches("gpt-4o") && !ModelPattern("gpt-4o").matches("gpt-4"))
    }
}

/// `ModelTable`: exact names win, then the longest pattern; a key's list and upstreams decide
/// what it may use and what `/v1/models` lists it.
@Suite struct ModelTableTests {
    static func configuration(keyModels: [String]?, keyUpstreams: [String] = []) -> Configuration {
        Configuration(
            upstreams: .init(entries: [Fixtures.upstream("openai", "/openai"), Fixtures.upstream("anthropic", "/anthropic")]),
            apiKeys: .init(staticKeys: [.init(id: "a", key: Secret("k"), upstreams: keyUpstreams, models: keyModels)]),
            models: [
                .init(name: "gpt-*", upstream: "openai"),
                .init(name: "gpt-4o-*", upstream: "anthropic", upstreamModel: "longest"),
                .init(name: "gpt-4o-mini", upstream: "openai", upstreamModel: "exact"),
                .init(name: "claude-sonnet", upstream: "anthropic", upstreamModel: "claude-sonnet-4-5"),
            ])
    }

    @Test func exactWinsThenTheLongestPattern() {
        let table = ModelTable(configuration: Self.configuration(keyModels: nil))
        #expect(table.entry(for: "gpt-4o-mini")?.upstreamModel == "exact")
        #expect(table.entry(for: "gpt-4o-audio")?.upstreamModel == "longest")
        #expect(table.entry(for: "gpt-5")?.name == "gpt-*")
        #expect(table.entry(for: "llama") == nil)
        #expect(table.entry(for: "gpt-" + String(repeating: "x", count: 300)) == nil)
    }

    @Test func aKeyMayUseWhatItsListAndItsUpstreamsAllow() {
        let all = UpstreamSet.all(count: 2)
        var openaiOnly = UpstreamSet(universe: 2)
        openaiOnly.insert(0)
        let table = ModelTable(configuration: Self.configuration(keyModels: ["gpt-4o-mini", "claude-*"]))
        let claude = table.entry(for: "claude-sonnet")!
        let mini = table.entry(for: "gpt-4o-mini")!
        #expect(table.allows("claude-sonnet", claude, staticKey: 0, permitted: all))
        #expect(!table.allows("claude-sonnet", claude, staticKey: 0, permitted: openaiOnly))
        #expect(table.allows("gpt-4o-mini", mini, staticKey: 0, permitted: openaiOnly))
        #expect(!table.allows("gpt-5", table.entry(for: "gpt-5")!, staticKey: 0, permitted: all))
        // A JWT or an open proxy: every model whose upstream is permitted.
        #expect(table.allows("gpt-5", table.entry(for: "gpt-5")!, staticKey: nil, permitted: all))
        #expect(table.listing(staticKey: 0, permitted: all).map(\.name) == ["gpt-4o-mini", "claude-sonnet"])
        #expect(table.listing(staticKey: 0, permitted: openaiOnly).map(\.name) == ["gpt-4o-mini"])
        #expect(table.listing(staticKey: nil, permitted: UpstreamSet(universe: 2)).isEmpty)
    }

    /// `plainRoute` (the stage's plain values) is there exactly for an exact entry with no
    /// rename and no key's own list, and decides what `allows` and the entry do.
    @Test func aPlainRouteDecidesAsTheEntryDoes() {
        func configuration(keyModels: [String]?) -> Configuration {
            var configuration = Self.configuration(keyModels: keyModels)
            configuration.models.append(.init(name: "gpt-4o", upstream: "anthropic"))
            configuration.models.append(.init(name: "o3", upstream: "openai"))
            return configuration
        }
        var openaiOnly = UpstreamSet(universe: 2)
        openaiOnly.insert(0)
        let sets = [UpstreamSet.all(count: 2), openaiOnly, UpstreamSet(universe: 2)]
        let table = ModelTable(configuration: configuration(keyModels: nil))
        #expect(table.exact.map(\.name) == ["gpt-4o-mini", "claude-sonnet", "gpt-4o", "o3"])
        for (position, entry) in table.exact.enumerated() {
            guard let route = table.plainRoute(position) else {
                #expect(entry.upstreamModel != nil, "\(entry.name)")
                continue
            }
            #expect(entry.upstreamModel == nil && route === entry.route && route.index == entry.upstream)
            #expect(table.exactName(position) == entry.name && table.exactUpstream(position) == entry.upstream)
            for permitted in sets {
                for key in [0, nil] {
                    #expect(
                        table.allows(entry.name, entry, staticKey: key, permitted: permitted)
                            == permitted.contains(table.exactUpstream(position)))
                }
            }
        }
        #expect((0..<4).filter { table.plainRoute($0) != nil } == [2, 3])
        // A key with its own list: every name goes through `allows`.
        let filtered = ModelTable(configuration: configuration(keyModels: ["o3"]))
        #expect((0..<4).allSatisfy { filtered.plainRoute($0) == nil })
    }

    @Test func theListingsAreOpenAIsAndAnthropicsFormats() throws {
        let table = ModelTable(configuration: Self.configuration(keyModels: nil))
        let entries = table.listing(staticKey: nil, permitted: .all(count: 2))
        #expect(
            ModelListing.body(entries, anthropic: false)
                == #"{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":0,"owned_by":"openai"},"#
                + #"{"id":"claude-sonnet","object":"model","created":0,"owned_by":"anthropic"}]}"#)
        #expect(ModelListing.body([], anthropic: false) == #"{"object":"list","data":[]}"#)
        #expect(
            ModelListing.body([], anthropic: true) == #"{"data":[],"has_more":false,"first_id":null,"last_id":null}"#)
        let anthropic = try JSONParser.parse(Array(ModelListing.body(entries, anthropic: true).utf8))
        #expect(anthropic["first_id"] == .string("gpt-4o-mini") && anthropic["last_id"] == .string("claude-sonnet"))
    }
}

/// `ModelNameIndex`: the exact names by their bytes, whatever collides in the table.
@Suite struct ModelNameIndexTests {
    @Test func everyNameIsFoundAtItsPositionAndNothingElseIs() {
        let names = (0..<300).map { "model-\($0)" } + ["", "modèle-π", "model-7"]
        let index = ModelNameIndex(names)
        for (position, name) in names.enumerated().dropLast() { #expect(index.position(of: name) == position) }
        // A repeated name keeps its first position.
        #expect(index.position(of: "model-7") == 7)
        for other in ["model-300", "model-", "Model-1", "model-1 ", "modèle", "x"] { #expect(index.position(of: other) == nil) }
        #expect(ModelNameIndex([]).position(of: "") == nil)
        #expect(ModelNameIndex([]).position(of: "gpt-4o") == nil)
    }

    /// A few names are compared one by one (`linearNames`): the same answers as the table's.
    @Test func aFewNamesAreFoundTheSameWithoutTheTable() {
        let names = ["gpt-4o", "", "claude-sonnet", "gpt-4o"]
        #expect(names.count <= ModelNameIndex.linearNames)
        let index = ModelNameIndex(names)
        #expect(index.position(of: "gpt-4o") == 0)
        #expect(index.position(of: "") == 1)
        #expect(index.position(of: "claude-sonnet") == 2)
        for other in ["gpt-4o ", "gpt-4", "GPT-4o", "claude", "x"] { #expect(index.position(of: other) == nil) }
    }

    /// The one-by-one comparison reads eight bytes at a time: a name of any length, and one
    /// byte changed anywhere in it, in a word or in the tail.
    @Test func aFewNamesAreComparedWholeAtEveryLength() {
        for length in 1...40 {
            let name = String((0..<length).map { Character(UnicodeScalar(UInt8(0x61 + $0 % 26))) })
            let index = ModelNameIndex(["x", name])
            #expect(index.position(of: name) == 1, "length \(length)")
            for position in 0..<length {
                var bytes = Array(name.utf8)
                bytes[position] ^= 0x20
                #expect(index.position(of: String(decoding: bytes, as: UTF8.self)) == nil, "\(position) of \(length)")
            }
        }
    }
}

/// `leadingModel`'s one pass (the quote, an escape or a control byte, whichever comes first)
/// against its definition: the first quote after `{"model":"`, with no escape or control byte
/// before it.
@Suite struct LeadingModelOnePassTests {
    static func byDefinition(_ bytes: [UInt8]) -> Range<Int>? {
        let opening = Array(#"{"model":""#.utf8)
        guard bytes.count > opening.count, Array(bytes[..<opening.count]) == opening else { return nil }
        guard let quote = bytes[opening.count...].firstIndex(of: 0x22) else { return nil }
        if bytes[opening.count..<quote].contains(where: { $0 == 0x5C || $0 < 0x20 }) { return nil }
        return (opening.count - 1)..<(quote + 1)
    }

    @Test func theOnePassFindsWhatTheDefinitionSays() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x22, 0x5C, 0x00, 0x1F, 0x20, 0x21, 0x23, 0x5B, 0x5D, 0x61, 0x7F, 0x80, 0xA0, 0xC3, 0xFF]
        for _ in 0..<4_000 {
            var bytes = Array(#"{"model":""#.utf8)
            if Int.random(in: 0..<20, using: &generator) == 0 { bytes[Int.random(in: 0..<10, using: &generator)] = 0x20 }
            let length = Int.random(in: 0...40, using: &generator)
            for _ in 0..<length {
                // Mostly plain bytes, now and then one it looks for.
                let byte =
                    Int.random(in: 0..<6, using: &generator) == 0
                    ? alphabet.randomElement(using: &generator)! : UInt8.random(in: 0x61...0x7A, using: &generator)
                bytes.append(byte)
            }
            let expected = Self.byDefinition(bytes)
            #expect(bytes.withUnsafeBytes { ModelMember.leadingModel($0) } == expected, "\(bytes)")
        }
    }
}

/// `ModelNameIndex.leadingPosition(in:)`, the SDK form compared whole, against the model stage's
/// other way to the same answer: `leadingModel`'s literal, then `position(of:)` of its bytes.
@Suite struct LeadingFormTests {
    /// What the stage found before the form was compared whole.
    static func byLiteral(_ index: ModelNameIndex, _ bytes: UnsafeRawBufferPointer) -> (position: Int, literal: Range<Int>)? {
        guard let literal = ModelMember.leadingModel(bytes) else { return nil }
        let inner = UnsafeRawBufferPointer(rebasing: bytes[(literal.lowerBound + 1)..<(literal.upperBound - 1)])
        guard inner.count <= Configuration.maxModelNameBytes, let position = index.position(of: inner) else { return nil }
        return (position, literal)
    }

    @Test func theFormFindsWhatTheLiteralAndTheNamesFind() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x22, 0x5C, 0x00, 0x1F, 0x20, 0x2D, 0x61, 0x62, 0x80, 0xC3]
        func word(_ length: Int) -> [UInt8] { (0..<length).map { _ in alphabet.randomElement(using: &generator)! } }
        for _ in 0..<4_000 {
            // A few names, some of them prefixes of others or with the bytes the literal stops at.
            var names: [[UInt8]] = (0..<Int.random(in: 1...4, using: &generator)).map { _ in word(Int.random(in: 0...20, using: &generator))
            }
            if Int.random(in: 0..<3, using: &generator) == 0 {
                names.append(Array(names[0].prefix(Int.random(in: 0...4, using: &generator))))
            }
            names = Array(names.prefix(ModelNameIndex.linearNames))
            let index = ModelNameIndex(names.map { String(decoding: $0, as: UTF8.self) })
            let strings = names.map { Array(String(decoding: $0, as: UTF8.self).utf8) }
            // A body that starts with one of the names' forms, changed now and then, cut now and then.
            var body = Array(#"{"model":""#.utf8) + strings.randomElement(using: &generator)!
            if Int.random(in: 0..<4, using: &generator) != 0 { body.append(0x22) }
            body += word(Int.random(in: 0...12, using: &generator))
            if Int.random(in: 0..<5, using: &generator) == 0, !body.isEmpty {
                body[Int.random(in: 0..<body.count, using: &generator)] = alphabet.randomElement(using: &generator)!
            }
            if Int.random(in: 0..<5, using: &generator) == 0 {
                body = Array(body.prefix(Int.random(in: 0...body.count, using: &generator)))
            }
            body.withUnsafeBytes { bytes in
                let form = index.leadingPosition(in: bytes)
                let literal = Self.byLiteral(index, bytes)
                // Both ways or neither: a literal `leadingModel` finds has no odd byte, so neither
                // has a name it matches.
                #expect(form?.position == literal?.position && form?.literal == literal?.literal, "\(names) \(body)")
            }
        }
    }

    @Test func aNameOfPlainBytesIsFoundByItsFormAtEveryLength() {
        for length in 0...40 {
            let name = String((0..<length).map { Character(UnicodeScalar(UInt8(0x61 + $0 % 26))) })
            let index = ModelNameIndex(["x", name])
            let body = Array(#"{"model":"\#(name)","stream":true}"#.utf8)
            body.withUnsafeBytes { bytes in
                let found = index.leadingPosition(in: bytes)
                #expect(found?.position == 1 && found?.literal == 9..<(11 + length), "length \(length)")
                // Exactly as long as the form: still found; one byte short: not.
                let form = UnsafeRawBufferPointer(rebasing: bytes[..<(11 + length)])
                #expect(index.leadingPosition(in: form)?.literal == 9..<(11 + length))
                #expect(index.leadingPosition(in: UnsafeRawBufferPointer(rebasing: bytes[..<(10 + length)])) == nil)
            }
            for position in 0..<(11 + length) {
                var changed = body
                changed[position] ^= 0x01
                changed.withUnsafeBytes { bytes in
                    let found = index.leadingPosition(in: bytes)
                    let literal = Self.byLiteral(index, bytes)
                    #expect(found?.position == literal?.position && found?.literal == literal?.literal, "\(position) of \(length)")
                }
            }
        }
    }
}
