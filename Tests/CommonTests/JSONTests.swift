import Testing
@testable import Common

/// Common's one JSON module: the strict parser (control frames, JWT headers and claims) and the
/// one string escaper (control frames, log lines, the proxy's error bodies).
@Suite struct JSONTests {
    /// Moved from the worker's JWT tests when its own reader was folded into this parser.
    @Test func objectsDecodeEscapesAndKeepNumbersLiteral() throws {
        let value = try JSONParser.parse(Array(#" { "a" : "x\u00e9\"\ud83d\ude00" , "n": -12, "o": {"p": [1, true, null]} } "#.utf8))
        #expect(value["a"] == .string("xé\"😀"))
        #expect(value["n"] == .number("-12"))
        #expect(value["n"]?.int64Value == -12)
        #expect(value["o"]?["p"] == .array([.number("1"), .bool(true), .null]))
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(#"{"a":01}"#.utf8)) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(#"{"a":1} x"#.utf8)) }
    }

    @Test func onlyIntegerTextIsAnInteger() throws {
        for (text, integer) in [
            ("1700000000", Int64(1_700_000_000)), ("-0", 0), ("1.0", nil), ("1e3", nil),
            ("9223372036854775808", nil), ("\"1\"", nil),
        ] as [(String, Int64?)] {
            #expect(try JSONParser.parse(Array(text.utf8)).int64Value == integer, "\(text)")
        }
    }

    /// Quote, backslash, every C0 control character and DEL are escaped; the rest is copied.
    @Test func theEscaperEscapesControlsAndDELAndCopiesTheRest() throws {
        #expect(JSONText.quoted("a\"b\\c\n\r\t\u{01}\u{1F}\u{7F}é🧪 /") == #""a\"b\\c\n\r\t\u0001\u001f\u007fé🧪 /""#)
        for byte in UInt8(0)...0x7F {
            let text = String(Unicode.Scalar(byte))
            let quoted = JSONText.quoted(text)
            #expect((quoted.utf8.count == 3) == JSONText.isPlain(byte), "byte \(byte)")
            #expect(try JSONParser.parse(Array(quoted.utf8)) == .string(text), "byte \(byte) reads back")
            #expect(JSONValue.string(text).serialized() == Array(quoted.utf8), "frames and logs escape alike")
        }
    }

    @Test func escapesAndSurrogatePairsAreDecoded() throws {
        let value = try JSONParser.parse(Array(#" [ "\u00e9\uD83E\uDDEA\/\b\f\n\r\t\"\\" , -0.5e+3 , true , null ] "#.utf8))
        #expect(value == .array([.string("é🧪/\u{8}\u{C}\n\r\t\"\\"), .number("-0.5e+3"), .bool(true), .null]))
    }

    static let notJSON: [[UInt8]] = [
        [], Array("{".utf8), Array("[1,]".utf8), Array(#"{"a":1,}"#.utf8), Array("01".utf8), Array("1.".utf8),
        Array("-".utf8), Array("+1".utf8), Array(".5".utf8), Array("1e".utf8), Array("tru".utf8), Array("nul".utf8),
        Array("NaN".utf8), Array(#""\x""#.utf8), Array(#""\u12""#.utf8), Array(#""\ud800""#.utf8),
        Array(#""\ud800\u0041""#.utf8), Array(#""\udc00""#.utf8), Array(#""unterminated"#.utf8),
        Array("\"raw \n newline\"".utf8), [0x22, 0xFF, 0x22], [0x22, 0xC0, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],
        Array(#"{"a":1,"a":2}"#.utf8), Array("{} {}".utf8), Array("{1:2}".utf8), Array("[1 2]".utf8),
        Array(repeating: UInt8(ascii: "["), count: 100_000), Array(repeating: UInt8(ascii: "{"), count: 100_000),
    ]

    @Test(arguments: notJSON)
    func textThatIsNotJSONIsRejected(_ bytes: [UInt8]) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
    }

    @Test func nestingUpToTheLimitIsAccepted() throws {
        let depth = JSONParser.maxDepth
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(throws: Never.self) { try JSONParser.parse(Array(text.utf8)) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(("[" + text + "]").utf8)) }
    }
}
