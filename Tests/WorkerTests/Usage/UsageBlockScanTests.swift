import Testing
@testable import FluxgateWorker

/// The 64-bytes-a-step skip through a JSON value finds the same end as following its bytes one by
/// one, wherever the slices are cut (escapes, quotes and brackets across block and slice edges).
@Suite struct UsageBlockScanTests {
    /// The byte-by-byte meaning: inside a string `\` escapes the next byte and `"` ends it;
    /// outside, `"` begins a string and brackets change the depth.
    static func referenceEnd(_ bytes: [UInt8]) -> Int? {
        var depth = 1
        var inString = false
        var escaped = false
        for (i, b) in bytes.enumerated() {
            if inString {
                if escaped { escaped = false } else if b == 0x5C { escaped = true } else if b == 0x22 { inString = false }
            } else if b == 0x22 {
                inString = true
            } else if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") {
                depth += 1
            } else if b == UInt8(ascii: "}") || b == UInt8(ascii: "]") {
                depth -= 1
                if depth == 0 { return i + 1 }
            }
        }
        return nil
    }

    static func skipped(_ bytes: [UInt8], cuts: [Int]) -> Int? {
        var position = SkipPosition(depth: 1)
        var start = 0
        return bytes.withUnsafeBytes { all in
            for end in cuts.filter({ $0 > 0 && $0 < all.count }) + [all.count] where end > start {
                let slice = UnsafeRawBufferPointer(rebasing: all[start..<end])
                if let found = UsageBlockScan.skip(slice, from: 0, &position) { return start + found }
                start = end
            }
            return nil
        }
    }

    @Test func findsTheSameEndAsByteByByteWhereverCut() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array(#"ab{}[]"\\ :,"#.utf8) + [UInt8(ascii: "\\"), 0x0A]
        for round in 0..<400 {
            let count = Int.random(in: 1...300, using: &generator)
            var bytes = (0..<count).map { _ in alphabet.randomElement(using: &generator)! }
            if round % 2 == 0 { bytes += Array(#""x\"y\\"]]]]]]]]]]"#.utf8) }
            let expected = Self.referenceEnd(bytes)
            #expect(Self.skipped(bytes, cuts: []) == expected, "\(String(decoding: bytes, as: UTF8.self))")
            for cut in stride(from: 1, to: bytes.count, by: 7) {
                #expect(Self.skipped(bytes, cuts: [cut]) == expected)
            }
            #expect(Self.skipped(bytes, cuts: Array(1..<bytes.count)) == expected)
        }
    }

    @Test func anEscapedQuoteAtABlockEdgeStaysInTheString() {
        for padding in 55...70 {
            let bytes = Array(("\"" + String(repeating: "a", count: padding) + #"\"}"}"#).utf8)
            #expect(Self.skipped(bytes, cuts: []) == bytes.count)
            #expect(Self.skipped(bytes, cuts: [padding + 1, padding + 2]) == bytes.count)
        }
    }

    /// Long runs of plain bytes, so that a block often ends inside a string and the search for
    /// the string's end takes over: escapes, brackets and control bytes inside such strings,
    /// wherever the string begins and wherever the slices are cut.
    @Test func aLongStringIsFollowedToItsEndWhereverItStartsOrIsCut() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array(repeating: UInt8(ascii: "a"), count: 40) + Array(#"{}[]"\"#.utf8) + [0x0A, 0x01]
        for _ in 0..<300 {
            let count = Int.random(in: 1...400, using: &generator)
            var bytes = (0..<count).map { _ in alphabet.randomElement(using: &generator)! }
            bytes += Array(#""x\"y\\"]]]]]]]]]]"#.utf8)
            let expected = Self.referenceEnd(bytes)
            #expect(Self.skipped(bytes, cuts: []) == expected, "\(String(decoding: bytes, as: UTF8.self))")
            for cut in stride(from: 1, to: bytes.count, by: 5) {
                #expect(Self.skipped(bytes, cuts: [cut]) == expected)
            }
        }
        for lead in 0..<70 {
            for length in [0, 1, 15, 16, 31, 32, 33, 63, 64, 65, 130] {
                let body = String(repeating: "a", count: lead) + "\"" + String(repeating: "b", count: length)
                for inner in ["", #"\""#, "]}", #"\\"#] {
                    let bytes = Array((body + inner + "c\"}x").utf8)
                    #expect(Self.skipped(bytes, cuts: []) == bytes.count - 1)
                    #expect(Self.skipped(bytes, cuts: [lead + 1 + length / 2]) == bytes.count - 1)
                }
            }
        }
    }
}
