import Testing
@testable import FluxgateWorker

/// The byte-level comparisons the request path uses instead of `lowercased()` and `==`.
@Suite struct ASCIIBytesTests {
    /// `scan` (sixteen, then eight bytes at a time) stops exactly where a byte-by-byte scan with `accepts`
    /// does: every byte value at every position of runs of `fillers` (all accepted), for lengths
    /// around the block and word sizes.
    func expectScanMatchesByteRule(
        _ scan: (UnsafeRawBufferPointer, Int, Int) -> Int, accepts: (UInt8) -> Bool,
        fillers: [UInt8], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        for length in [0, 1, 7, 8, 9, 15, 16, 17, 23, 24, 31, 32, 33] {
            for filler in fillers {
                for stop in 0...length {
                    for b in UInt8.min...UInt8.max {
                        var bytes = [UInt8](repeating: filler, count: length)
                        if stop < length { bytes[stop] = b }
                        let expected = stop < length && !accepts(b) ? stop : length
                        let end = bytes.withUnsafeBytes { scan($0, 0, length) }
                        #expect(
                            end == expected, "length \(length), filler \(filler), byte \(b) at \(stop)",
                            sourceLocation: sourceLocation)
                        if stop == length { break }
                    }
                }
            }
        }
    }

    /// The field value scan stops at the first byte that cannot be in a value, wherever it sits
    /// and whatever surrounds it.
    @Test func fieldValueEndStopsAtTheFirstDisallowedByte() {
        expectScanMatchesByteRule(
            { ASCIIBytes.fieldValueEnd($0, from: $1, to: $2) }, accepts: ASCIIBytes.isFieldValueByte,
            fillers: [0x20, 0x41, 0x7E, 0x80, 0xFF, 0x09])
        // Honours `from` and `to`.
        let text = Array("ab\u{1}cdefghijklmnop\r\n".utf8)
        #expect(text.withUnsafeBytes { ASCIIBytes.fieldValueEnd($0, from: 3, to: text.count) } == 17)
        #expect(text.withUnsafeBytes { ASCIIBytes.fieldValueEnd($0, from: 3, to: 10) } == 10)
    }

    /// The name scan stops at the first byte that is not a `tchar`.
    @Test func tokenEndStopsAtTheFirstNonTokenByte() {
        expectScanMatchesByteRule(
            { ASCIIBytes.tokenEnd($0, from: $1, to: $2) }, accepts: ASCIIBytes.isTokenByte,
            fillers: Array("aZ09-x!~_".utf8))
        let line = Array("xContent-Length: 5".utf8)
        #expect(line.withUnsafeBytes { ASCIIBytes.tokenEnd($0, from: 1, to: line.count) } == 15)
        #expect(line.withUnsafeBytes { ASCIIBytes.tokenEnd($0, from: 1, to: 9) } == 9)
    }

    /// The request-target scan stops at the first byte that is not VCHAR.
    @Test func targetEndStopsAtTheFirstNonVisibleByte() {
        expectScanMatchesByteRule(
            { ASCIIBytes.targetEnd($0, from: $1, to: $2) }, accepts: { $0 > 0x20 && $0 < 0x7F },
            fillers: Array("/a~!%".utf8))
        let line = Array("POST /v1/chat/completions?x=1 HTTP/1.1".utf8)
        #expect(line.withUnsafeBytes { ASCIIBytes.targetEnd($0, from: 5, to: line.count) } == 29)
    }

    @Test func tokenBytesAreExactlyRFC9110sTchar() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for b in UInt8.min...UInt8.max {
            #expect(ASCIIBytes.isTokenByte(b) == tchar.contains(b), "byte \(b)")
        }
    }

    /// `ASCIIBytes.equals` on a string's UTF-8.
    func equals(_ string: some StringProtocol, lowercase: StaticString) -> Bool {
        Array(string.utf8).withUnsafeBytes { ASCIIBytes.equals($0, 0..<$0.count, lowercase: lowercase) }
    }

    @Test func equalsIgnoresASCIICaseOnly() {
        #expect(equals("Content-Length", lowercase: "content-length"))
        #expect(equals("HOST", lowercase: "host"))
        #expect(equals("host"[...], lowercase: "host"))
        #expect(!equals("hosts", lowercase: "host"))
        #expect(!equals("hos", lowercase: "host"))
        #expect(!equals("", lowercase: "te"))
        // Bytes that `| 0x20` would fold onto the expected ones do not match.
        #expect(!equals("x\rapi", lowercase: "x-api"))
        #expect(!equals("KEEP\u{0D}ALIVE", lowercase: "keep-alive"))
        // Non-ASCII is never equal to ASCII, whatever its bytes.
        #expect(!equals("ho\u{17F}t", lowercase: "host"))
    }

    /// The name classes' comparison (`equalsToken`, for names the parsers have checked) answers
    /// as `equals` does for every `tchar` at every position of every name the header table uses,
    /// and a name that is not a token is of no special class.
    @Test func equalsTokenMatchesEqualsOnTokens() {
        let names: [StaticString] = [
            "te", "host", "expect", "upgrade", "trailer", "trailers", "x-api-key", "connection", "keep-alive",
            "request-id", "x-request-id", "authorization", "content-length", "transfer-encoding",
            "proxy-authenticate", "proxy-authorization",
        ]
        let tokens = (UInt8.min...UInt8.max).filter(ASCIIBytes.isTokenByte)
        for name in names {
            var bytes = Array(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            for position in bytes.indices {
                let original = bytes[position]
                for b in tokens {
                    bytes[position] = b
                    let (token, full) = bytes.withUnsafeBytes {
                        (
                            ASCIIBytes.equalsToken($0, 0..<$0.count, lowercase: name),
                            ASCIIBytes.equals($0, 0..<$0.count, lowercase: name)
                        )
                    }
                    #expect(token == full, "\(name): byte \(b) at \(position)")
                }
                bytes[position] = original
            }
        }
        #expect(HeaderNameClass.classify("Content\rLength") == .other)
        #expect(HeaderNameClass.classify("con\u{0D}ection") == .other)
        #expect(HeaderNameClass.classify("Content-Length") == .contentLength)
    }

    /// The word-at-a-time comparison answers as a byte-by-byte one would, for every byte value
    /// at every position of names of every length the header tables use (1-3 bytewise, 4-7 two
    /// overlapping halves, 8+ words with an overlapping last one).
    @Test func equalsMatchesTheByteRuleAtEveryPositionAndLength() {
        let names: [StaticString] = [
            "a", "te", "abc", "host", "x-api", "expect", "upgrade", "trailers", "x-api-key",
            "connection", "authorization", "content-length", "transfer-encoding",
            "proxy-authorization",
        ]
        for name in names {
            let expected = Array(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            var bytes = expected.map { $0 &- 0x20 * UInt8($0 >= 0x61 && $0 <= 0x7A ? 1 : 0) }  // upper case
            #expect(bytes.withUnsafeBytes { ASCIIBytes.equals($0, 0..<$0.count, lowercase: name) })
            for position in bytes.indices {
                let original = bytes[position]
                for b in UInt8.min...UInt8.max {
                    bytes[position] = b
                    let byteRule = ASCIIBytes.lower(b) == expected[position]
                    let answer = bytes.withUnsafeBytes { ASCIIBytes.equals($0, 0..<$0.count, lowercase: name) }
                    #expect(answer == byteRule, "\(name): byte \(b) at \(position)")
                }
                bytes[position] = original
            }
            // Within a larger buffer, at an offset.
            let padded: [UInt8] = [0x41, 0x42, 0x43] + bytes + [0x44]
            #expect(padded.withUnsafeBytes { ASCIIBytes.equals($0, 3..<3 + bytes.count, lowercase: name) })
        }
    }

    @Test func hasPrefixComparesBytes() {
        #expect(ASCIIBytes.hasPrefix("Bearer abc", "Bearer "))
        #expect(!ASCIIBytes.hasPrefix("bearer abc", "Bearer "))
        #expect(!ASCIIBytes.hasPrefix("Bearer", "Bearer "))
        #expect(ASCIIBytes.hasPrefix("/v1/models", ""))
        #expect(ASCIIBytes.hasPrefix("/v1/models"[...], "/v1"))
        #expect(!ASCIIBytes.hasPrefix("/v2/models", "/v1"))
        // "é" precomposed and decomposed are equal Strings, not equal bytes: a path is bytes.
        #expect(!ASCIIBytes.hasPrefix("/caf\u{65}\u{301}/x", "/caf\u{E9}"))
    }

    @Test func firstOffset() {
        #expect(ASCIIBytes.firstOffset(of: UInt8(ascii: "?"), in: "/a?b?c") == 2)
        #expect(ASCIIBytes.firstOffset(of: UInt8(ascii: "?"), in: "/ab") == nil)
        #expect(ASCIIBytes.firstOffset(of: UInt8(ascii: "?"), in: "x/é?q"[...]) == 4)
    }

    @Test func listElementsAreTrimmedAndEmptyOnesSkipped() {
        func elements(_ value: String) -> [String] {
            var out: [String] = []
            Array(value.utf8).withUnsafeBytes { bytes in
                ASCIIBytes.forEachListElement(bytes, 0..<bytes.count) { out.append(String(decoding: bytes[$0], as: UTF8.self)) }
            }
            return out
        }
        func contains(_ value: String, _ token: StaticString) -> Bool {
            Array(value.utf8).withUnsafeBytes { bytes in
                var found = false
                ASCIIBytes.forEachListElement(bytes, 0..<bytes.count) { found = found || ASCIIBytes.equals(bytes, $0, lowercase: token) }
                return found
            }
        }
        #expect(elements(" Keep-Alive ,X-Drop,,\tte\t, ") == ["Keep-Alive", "X-Drop", "te"])
        #expect(contains("close, Upgrade", "upgrade"))
        #expect(!contains("upgrades", "upgrade"))
        #expect(contains("100-Continue", "100-continue"))
        #expect(!contains("", "upgrade"))
    }

    /// `decimal` (leading zeros skipped first, then at most 18 significant digits) agrees with the
    /// digit-by-digit rule it replaced: digits only, at most 18 after leading zeros.
    @Test func decimalMatchesTheDigitRule() {
        func reference(_ text: String) -> Int? {
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }) else { return nil }
            let significant = text.drop { $0 == "0" }
            return significant.count <= 18 ? Int(text) : nil
        }
        var cases = ["", "0", "00", "7", "007", "12", "1x", "x1", "0x", "00 ", " 1", "+1", "-1", "1,2", "5, 5", "1.0", "/", ":"]
        for zeros in [0, 1, 5, 30] {
            for digits in [17, 18, 19, 20] {
                cases.append(String(repeating: "0", count: zeros) + "9" + String(repeating: "8", count: digits - 1))
                cases.append(String(repeating: "0", count: zeros) + "1" + String(repeating: "0", count: digits - 1))
            }
        }
        for text in cases {
            let bytes = Array(text.utf8)
            let parsed = bytes.withUnsafeBytes { ASCIIBytes.decimal($0, 0..<bytes.count) }
            #expect(parsed == reference(text), "\(text)")
            // The same bytes inside a longer buffer.
            let framed = Array("a:".utf8) + bytes + Array("\r\n".utf8)
            let inner = framed.withUnsafeBytes { ASCIIBytes.decimal($0, 2..<2 + bytes.count) }
            #expect(inner == reference(text), "\(text) framed")
        }
    }
}
