import Testing

@testable import FluxgateWorker

#if arch(x86_64)
import CByteClasses
#endif

/// The whole root's skip of a container (`UsageJSONScanner.skipWhole`: AVX2 where the CPU has it)
/// finds the end `UsageBlockScan.skip` finds, and the AVX2 scan gives up only where it says it
/// does (a backslash outside a string, the bytes ending first, fewer than 64 of them).
@Suite struct UsageWholeSkipTests {
    static func blockScan(_ bytes: [UInt8], from start: Int) -> Int? {
        var position = SkipPosition(depth: 1)
        return bytes.withUnsafeBytes { UsageBlockScan.skip($0, from: start, &position) }
    }

    static func whole(_ bytes: [UInt8], from start: Int) -> Int? {
        bytes.withUnsafeBytes { UsageJSONScanner.skipWhole($0.baseAddress!, $0.count, from: start) }
    }

    /// The AVX2 scan alone: nil when it gives up.
    static func avx2(_ bytes: [UInt8], from start: Int) -> Int? {
        #if arch(x86_64)
        guard UsageJSONScanner.jsonSkipAVX2 else { return nil }
        let end = bytes.withUnsafeBytes {
            fluxgate_json_skip_avx2($0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count, start)
        }
        return end >= 0 ? end : nil
        #else
        return nil
        #endif
    }

    /// Random values over two alphabets (dense brackets, quotes and backslashes; long plain runs
    /// with rare escapes), started anywhere in a 64-byte block, followed by more bytes or not.
    @Test func findsTheBlockScansEndWhereverTheValueStarts() {
        var generator = SystemRandomNumberGenerator()
        let dense = Array(#"ab{}[]"\\ :,"#.utf8) + [UInt8(ascii: "\\"), 0x0A]
        let sparse = Array(repeating: UInt8(ascii: "a"), count: 40) + Array(#"{}[]"\"#.utf8) + [0x0A, 0x01]
        var taken = 0
        var tried = 0
        for round in 0..<3000 {
            let alphabet = round % 2 == 0 ? dense : sparse
            let lead = Int.random(in: 0...70, using: &generator)
            let count = Int.random(in: 1...400, using: &generator)
            var bytes = Array(repeating: UInt8(ascii: " "), count: lead)
            bytes += (0..<count).map { _ in alphabet.randomElement(using: &generator)! }
            if round % 3 != 0 { bytes += Array(#""x\"y\\"]]]]]]]]]]"#.utf8) }
            if round % 5 == 0 { bytes += Array(repeating: UInt8(ascii: "z"), count: Int.random(in: 0...80, using: &generator)) }
            let expected = Self.blockScan(bytes, from: lead)
            #expect(Self.whole(bytes, from: lead) == expected, "\(String(decoding: bytes, as: UTF8.self))")
            if let fast = Self.avx2(bytes, from: lead) {
                #expect(fast == expected, "\(String(decoding: bytes, as: UTF8.self))")
                taken += 1
            }
            if bytes.count >= 64 { tried += 1 }
        }
        #if arch(x86_64)
        if UsageJSONScanner.jsonSkipAVX2 { #expect(taken * 10 > tried, "\(taken) of \(tried)") }
        #endif
    }

    /// Runs of backslashes of every length before a quote, at every position of a block and
    /// across block edges: an odd run escapes the quote, an even one does not.
    @Test func backslashRunsEscapeAsTheBlockScanSays() {
        for lead in 0..<70 {
            for run in 0...6 {
                let text = String(repeating: "a", count: lead) + String(repeating: "\\", count: run) + #"""#
                let bytes = Array(("[\"" + text + "]\"]" + String(repeating: "b", count: 70) + "\"]x").utf8)
                let expected = Self.blockScan(bytes, from: 1)
                #expect(Self.whole(bytes, from: 1) == expected)
                if let fast = Self.avx2(bytes, from: 1) { #expect(fast == expected) }
                #if arch(x86_64)
                if UsageJSONScanner.jsonSkipAVX2 { #expect(Self.avx2(bytes, from: 1) != nil) }
                #endif
            }
        }
    }

    /// Long strings (the rest of one is searched 64 bytes a step, then 32): plain runs of every
    /// length up to 300, a quote, a backslash or an escaped quote at their end, started anywhere
    /// in a block, the bytes ending inside a string or not.
    @Test func longStringsEndWhereTheBlockScanSays() {
        var generator = SystemRandomNumberGenerator()
        let ends = [#"""#, #"\""#, #"\\""#, #"\n"#]
        var taken = 0
        for round in 0..<4000 {
            let lead = Int.random(in: 0...70, using: &generator)
            var text = String(repeating: " ", count: lead) + "[\""
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                text += String(repeating: "a", count: Int.random(in: 0...300, using: &generator))
                text += ends.randomElement(using: &generator)!
            }
            text += round % 4 == 0 ? "" : #"","x"]"#
            let bytes = Array(text.utf8)
            let expected = Self.blockScan(bytes, from: lead &+ 1)
            #expect(Self.whole(bytes, from: lead &+ 1) == expected, "\(text)")
            if let fast = Self.avx2(bytes, from: lead &+ 1) {
                #expect(fast == expected, "\(text)")
                taken += 1
            }
        }
        #if arch(x86_64)
        if UsageJSONScanner.jsonSkipAVX2 { #expect(taken > 1000) }
        #endif
    }

    /// The bench mock's `choices` is skipped by the AVX2 scan, to its end.
    @Test func theMocksChoicesAreSkippedWhole() {
        let body = Array(
            #"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a canned reply from the local mock upstream. It is long enough to make the body look like a real short chat answer.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{}}"#
                .utf8)
        let start = 12
        let expected = Self.blockScan(body, from: start)
        #expect(expected == body.count - 12)
        #expect(Self.whole(body, from: start) == expected)
        #if arch(x86_64)
        if UsageJSONScanner.jsonSkipAVX2 { #expect(Self.avx2(body, from: start) == expected) }
        #endif
    }

    /// A skipped number's end, eight bytes a step, is `plainNumberEnd`'s: digits of every count
    /// (leading zeros, more than 15), every byte after them, the slice ending anywhere.
    @Test func aSkippedNumberEndsWherePlainNumberEndSays() {
        var generator = SystemRandomNumberGenerator()
        let after = Array(#",} \n\t\r.eE-+x"0"#.utf8) + [0x00, 0x80, 0xFF, 0x2F, 0x3A]
        for _ in 0..<20000 {
            var bytes = Array(repeating: UInt8(ascii: "1"), count: Int.random(in: 0...20, using: &generator)).map { _ in
                UInt8(ascii: "0") + UInt8.random(in: 0...9, using: &generator)
            }
            let tail = Int.random(in: 0...9, using: &generator)
            bytes += (0..<tail).map { _ in after.randomElement(using: &generator)! }
            let n = Int.random(in: 0...bytes.count, using: &generator)
            bytes.withUnsafeBytes {
                let expected = UsageJSONScanner.plainNumberEnd($0.baseAddress!, n, from: 0)?.end
                #expect(UsageJSONScanner.skippedNumberEnd($0.baseAddress!, n, from: 0) == expected, "\(bytes) \(n)")
            }
        }
    }
}
