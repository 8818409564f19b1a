import CByteClasses

#if canImport(Glibc)
import Glibc
#endif

/// Byte-level ASCII comparisons for header names, tokens and paths on the request path.
///
/// `String.lowercased()`, `==` between `String`s and `Sequence.starts(with:)` over UTF-8 views
/// are Unicode-aware or generic, and cost hundreds of instructions each; the data plane asks
/// such questions a dozen times per request. These read the contiguous UTF-8 of a native string
/// (what every string decoded from the wire is) and fall back to the generic path otherwise.
enum ASCIIBytes {
    /// RFC 9110 `tchar`, the bytes of a token (header names, methods, list elements): one test
    /// against a bit set (the set's bits for 0–63 and 64–127; nothing above 127 is a tchar).
    @inline(__always)
    static func isTokenByte(_ b: UInt8) -> Bool {
        let low: UInt64 = 0x03FF_6CFA_0000_0000  // ! # $ % & ' * + - . 0-9
        let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE  // A-Z ^ _ ` a-z | ~
        return b < 64 ? (low >> b) & 1 != 0 : b < 128 && (high >> (b & 63)) & 1 != 0
    }

    /// The offset of the first byte in `bytes[start..<end]` that is not a `tchar` (the colon
    /// after a header name, normally), or `end`. Eight bytes per step while all are letters,
    /// digits or `-` (what header names are made of); the first other byte of a word is then
    /// looked at on its own, and the scan goes on byte by byte only when it is another `tchar`.
    @inline(__always)
    static func tokenEnd(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
        scan(bytes, from: start, to: end, flagging16: { fluxgate_non_name16($0) }, flagging: nonNameBytes, whileByte: isTokenByte)
    }

    /// 0x80 in each byte of `word` (little-endian) that is not an ASCII letter, digit or `-`,
    /// 0 in the others (exact, per byte: no test carries into the next byte).
    @inline(__always)
    static func nonNameBytes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high = 0x80 &* ones
        let low7 = word & (0x7F &* ones)
        let w = lowered(low7)
        @inline(__always) func within(_ low: UInt64, _ last: UInt64) -> UInt64 {
            (w &+ (0x80 &- low) &* ones) & ~(w &+ (0x80 &- last &- 1) &* ones) & high
        }
        let dash = w ^ (0x2D &* ones)
        let isDash = ~((dash &+ 0x7F &* ones) | dash) & high
        let name = (within(0x61, 0x7A) | within(0x30, 0x39) | isDash) & ~word
        return ~name & high
    }

    /// VCHAR, obs-text, SP and HTAB (RFC 9110 §5.5): no CR, LF, NUL, DEL or other controls.
    @inline(__always)
    static func isFieldValueByte(_ b: UInt8) -> Bool { b >= 0x20 ? b != 0x7F : b == 0x09 }

    /// The offset of the first byte in `bytes[start..<end]` that cannot be in a field value (the
    /// CR ending the line, normally), or `end`. Eight bytes per step while none is a control
    /// byte or DEL; the word's first such byte is found from the same test, and the scan goes on
    /// byte by byte only if it is a tab. Header values are most of a head's bytes.
    @inline(__always)
    static func fieldValueEnd(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
        scan(bytes, from: start, to: end, flagging16: { fluxgate_controls16($0) }, flagging: controlBytes, whileByte: isFieldValueByte)
    }

    /// 0x80 in bytes of `word` below 0x20 and in bytes equal to 0x7F. A borrow can flag a byte
    /// above a flagged one, never below it: the lowest flag is exact.
    @inline(__always)
    static func controlBytes(_ word: UInt64) -> UInt64 {
        let control = (word &- 0x2020_2020_2020_2020) & ~word & 0x8080_8080_8080_8080
        let del = word ^ 0x7F7F_7F7F_7F7F_7F7F
        return control | ((del &- 0x0101_0101_0101_0101) & ~del & 0x8080_8080_8080_8080)
    }

    /// VCHAR (0x21-0x7E), the bytes of a request-target.
    @inline(__always)
    static func isTargetByte(_ b: UInt8) -> Bool { b &- 0x21 < 0x5E }

    /// The offset of the first byte in `bytes[start..<end]` that is not VCHAR (the space after a
    /// request-target, normally), or `end`; sixteen, then eight bytes per step, as `fieldValueEnd`.
    @inline(__always)
    static func targetEnd(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
        scan(bytes, from: start, to: end, flagging16: { fluxgate_non_vchar16($0) }, flagging: nonTargetBytes, whileByte: isTargetByte)
    }

    /// 0x80 in bytes of `word` up to 0x20 and from 0x7F on; the lowest flag is exact (a borrow
    /// flags only above a flagged byte).
    @inline(__always)
    static func nonTargetBytes(_ word: UInt64) -> UInt64 {
        let high: UInt64 = 0x8080_8080_8080_8080
        let low = (word &- 0x2121_2121_2121_2121) & ~word & high
        let del = word ^ 0x7F7F_7F7F_7F7F_7F7F
        return low | (word & high) | ((del &- 0x0101_0101_0101_0101) & ~del & high)
    }

    /// The scan of `tokenEnd`, `fieldValueEnd` and `targetEnd`: sixteen bytes per step while `flagging16` (the
    /// SSE2 class of CByteClasses' head_scan.h) marks none of them, then eight per step while
    /// `flagging` marks none (both masks exact per byte, so the lowest flag is the first flagged
    /// byte), then from the first flagged byte on, one byte at a time while `whileByte` accepts
    /// it. Most names and values end in their first block: one step instead of two to four.
    @inline(__always)
    private static func scan(
        _ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int,
        flagging16: (UnsafeRawPointer) -> UInt32, flagging: (UInt64) -> UInt64, whileByte accepts: (UInt8) -> Bool
    ) -> Int {
        var i = start
        if let base = bytes.baseAddress {
            blocks: do {
                while i &+ 16 <= end {
                    let flags = flagging16(base + i)
                    guard flags == 0 else {
                        i &+= flags.trailingZeroBitCount
                        break blocks
                    }
                    i &+= 16
                }
                while i &+ 8 <= end {
                    let flags = flagging(base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                    guard flags == 0 else {
                        i &+= flags.trailingZeroBitCount >> 3
                        break blocks
                    }
                    i &+= 8
                }
            }
        }
        while i < end, accepts(bytes[i]) { i &+= 1 }
        return i
    }

    /// ASCII lower case; every other byte unchanged.
    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 { b &- UInt8(ascii: "A") < 26 ? b | 0x20 : b }

    /// `string` starts with `prefix`, byte for byte.
    static func hasPrefix(_ string: some StringProtocol, _ prefix: some StringProtocol) -> Bool {
        let count = prefix.utf8.count
        guard string.utf8.count >= count else { return false }
        if count == 0 { return true }
        let fast = string.utf8.withContiguousStorageIfAvailable { s in
            prefix.utf8.withContiguousStorageIfAvailable { p in
                UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(s)[..<count]).elementsEqual(UnsafeRawBufferPointer(p))
            }
        }
        return (fast ?? nil) ?? string.utf8.starts(with: prefix.utf8)
    }

    /// Offset of the first `byte` in `string`'s UTF-8, if any.
    static func firstOffset(of byte: UInt8, in string: some StringProtocol) -> Int? {
        string.utf8.withContiguousStorageIfAvailable { bytes -> Int? in
            guard let base = bytes.baseAddress, let found = memchr(base, Int32(byte), bytes.count) else { return nil }
            return UnsafeRawPointer(base).distance(to: UnsafeRawPointer(found))
        } ?? string.utf8.firstIndex(of: byte).map { string.utf8.distance(from: string.utf8.startIndex, to: $0) }
    }

    // MARK: Raw bytes (the head parsers)

    /// `bytes[range]` equals `lowercase` (lower-case ASCII) ignoring ASCII case. Eight bytes per
    /// step (the last step overlapping the one before): the head parsers classify every header
    /// name of every message with it.
    @inline(__always)
    static func equals(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, lowercase: StaticString) -> Bool {
        let n = lowercase.utf8CodeUnitCount
        guard range.count == n else { return false }
        guard let base = bytes.baseAddress.map({ $0 + range.lowerBound }) else { return n == 0 }
        let expected = UnsafeRawPointer(lowercase.utf8Start)
        @inline(__always) func word(_ at: Int) -> Bool {
            lowered(base.loadUnaligned(fromByteOffset: at, as: UInt64.self))
                == expected.loadUnaligned(fromByteOffset: at, as: UInt64.self)
        }
        @inline(__always) func half(_ at: Int) -> Bool {
            lowered(UInt64(base.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                == UInt64(expected.loadUnaligned(fromByteOffset: at, as: UInt32.self))
        }
        if n >= 8 {
            var i = 0
            while i &+ 8 <= n {
                guard word(i) else { return false }
                i &+= 8
            }
            return i == n || word(n &- 8)
        }
        if n >= 4 { return half(0) && half(n &- 4) }
        for k in 0..<n where lower(base.load(fromByteOffset: k, as: UInt8.self)) != expected.load(fromByteOffset: k, as: UInt8.self) {
            return false
        }
        return true
    }

    /// `equals` for a `range` of `tchar`s only (a checked header name) and a `lowercase` of
    /// letters, digits and `-`: then `| 0x20` on every byte is the case fold (a byte that folds
    /// onto a digit or `-` is a control byte, never a `tchar`), a third of `lowered`'s work.
    @inline(__always)
    static func equalsToken(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, lowercase: StaticString) -> Bool {
        let n = lowercase.utf8CodeUnitCount
        guard range.count == n else { return false }
        guard let base = bytes.baseAddress.map({ $0 + range.lowerBound }) else { return n == 0 }
        let expected = UnsafeRawPointer(lowercase.utf8Start)
        @inline(__always) func word(_ at: Int) -> Bool {
            base.loadUnaligned(fromByteOffset: at, as: UInt64.self) | 0x2020_2020_2020_2020
                == expected.loadUnaligned(fromByteOffset: at, as: UInt64.self)
        }
        @inline(__always) func half(_ at: Int) -> Bool {
            base.loadUnaligned(fromByteOffset: at, as: UInt32.self) | 0x2020_2020
                == expected.loadUnaligned(fromByteOffset: at, as: UInt32.self)
        }
        if n >= 8 {
            var i = 0
            while i &+ 8 <= n {
                guard word(i) else { return false }
                i &+= 8
            }
            return i == n || word(n &- 8)
        }
        if n >= 4 { return half(0) && half(n &- 4) }
        for k in 0..<n where base.load(fromByteOffset: k, as: UInt8.self) | 0x20 != expected.load(fromByteOffset: k, as: UInt8.self) {
            return false
        }
        return true
    }

    /// Each byte of `word` in A-Z made lower case, every other byte unchanged (exact: a byte's
    /// test cannot carry into its neighbour, and bytes above 127 are left alone).
    @inline(__always)
    static func lowered(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let low7 = word & (0x7F &* ones)
        let atLeastA = low7 &+ (0x80 &- 0x41) &* ones  // high bit set when >= "A"
        let pastZ = low7 &+ (0x80 &- 0x5B) &* ones  // high bit set when > "Z"
        let upper = atLeastA & ~pastZ & ~word & (0x80 &* ones)
        return word | (upper >> 2)
    }

    /// A `Content-Length` value: digits only (a list like "5, 5" is refused rather than
    /// interpreted), at most 18 after leading zeros, so it stays below `Int.max`.
    static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty else { return nil }
        // Leading zeros first: what follows them is the significant part, at most 18 bytes.
        // (Too long or not all digits are both nil, so which is found first does not matter.)
        var i = range.lowerBound
        while i < range.upperBound, bytes[i] == UInt8(ascii: "0") { i &+= 1 }
        guard range.upperBound &- i <= 18 else { return nil }
        var value = 0
        while i < range.upperBound {
            let digit = bytes[i] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value &* 10 &+ Int(digit)
            i &+= 1
        }
        return value
    }

    /// `bytes[a]` and `bytes[b]` are the same ignoring ASCII case.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
        guard a.count == b.count else { return false }
        for k in 0..<a.count where lower(bytes[a.lowerBound &+ k]) != lower(bytes[b.lowerBound &+ k]) { return false }
        return true
    }

    /// The non-empty elements of the comma-separated list `bytes[value]`, trimmed of spaces and tabs.
    static func forEachListElement(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>, _ body: (Range<Int>) -> Void) {
        var i = value.lowerBound
        while i < value.upperBound {
            var end = i
            while end < value.upperBound, bytes[end] != UInt8(ascii: ",") { end &+= 1 }
            var s = i, e = end
            while s < e, bytes[s] == UInt8(ascii: " ") || bytes[s] == UInt8(ascii: "\t") { s &+= 1 }
            while e > s, bytes[e &- 1] == UInt8(ascii: " ") || bytes[e &- 1] == UInt8(ascii: "\t") { e &-= 1 }
            if s < e { body(s..<e) }
            i = end &+ 1
        }
    }
}
