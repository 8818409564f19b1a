import CByteClasses

/// Eight-bytes-at-a-time searches for the usage reader's hot loops (the style of `ASCIIBytes`):
/// most bytes of a response are inside strings the reader skips, so finding the next byte that
/// matters is the reader's main cost.
enum UsageByteScan {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let high: UInt64 = 0x8080_8080_8080_8080

    /// 0x80 in each byte of `word` equal to `byte`. A borrow can flag a byte above a flagged one,
    /// never below it: the lowest flag is exact, which is all the searches use.
    @inline(__always)
    private static func equal(_ word: UInt64, _ byte: UInt8) -> UInt64 {
        let x = word ^ (UInt64(byte) &* ones)
        return (x &- ones) & ~x & high
    }

    /// 0x80 in each byte below 0x20 (lowest flag exact, as above).
    @inline(__always)
    private static func control(_ word: UInt64) -> UInt64 {
        (word &- 0x2020_2020_2020_2020) & ~word & high
    }

    /// The first index at or after `start` whose byte `flags` marks, or whose byte `test`
    /// accepts in the tail shorter than a word; `bytes.count` when none.
    @inline(__always)
    private static func first(
        _ bytes: UnsafeRawBufferPointer, from start: Int, flags: (UInt64) -> UInt64,
        test: (UInt8) -> Bool
    ) -> Int {
        var i = start
        let n = bytes.count
        if let base = bytes.baseAddress {
            while i &+ 8 <= n {
                let marked = flags(base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                if marked != 0 { return i &+ marked.trailingZeroBitCount >> 3 }
                i &+= 8
            }
        }
        while i < n, !test(bytes[i]) { i &+= 1 }
        return i
    }

    /// The next `"`, `\` or control byte: where a JSON string's plain run ends. Sixteen bytes a
    /// step (`fluxgate_string_stops16`); the last step reads the buffer's last sixteen bytes again
    /// rather than byte by byte.
    @inline(__always)
    static func stringEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        guard let base = bytes.baseAddress else { return start }
        return stringEnd(base, bytes.count, from: start)
    }

    /// `stringEnd` in the `n` bytes at `base`.
    @inline(__always)
    static func stringEnd(_ base: UnsafeRawPointer, _ n: Int, from start: Int) -> Int {
        var i = start
        guard n >= 16 else {
            while i < n {
                let b = base.load(fromByteOffset: i, as: UInt8.self)
                if b == 0x22 || b == 0x5C || b < 0x20 { break }
                i &+= 1
            }
            return i
        }
        while i &+ 16 <= n {
            let stops = fluxgate_string_stops16(base + i)
            if stops != 0 { return i &+ stops.trailingZeroBitCount }
            i &+= 16
        }
        guard i < n else { return n }
        let stops = fluxgate_string_stops16(base + (n &- 16)) >> UInt32(16 &- (n &- i))
        return stops != 0 ? i &+ stops.trailingZeroBitCount : n
    }

    /// The next `"`, `{`, `[`, `}` or `]`: what a skipped JSON value's depth depends on. (`[`
    /// and `{`, `]` and `}` differ only in bit 5.)
    @inline(__always)
    static func structural(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        first(
            bytes, from: start,
            flags: {
                let folded = $0 | 0x2020_2020_2020_2020
                return equal($0, 0x22) | equal(folded, 0x7B) | equal(folded, 0x7D)
            }, test: { $0 == 0x22 || $0 | 0x20 == 0x7B || $0 | 0x20 == 0x7D })
    }

    /// The next `"` or `\`: where the event prefilter looks for member names.
    @inline(__always)
    static func quoteOrBackslash(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        first(bytes, from: start, flags: { equal($0, 0x22) | equal($0, 0x5C) }, test: { $0 == 0x22 || $0 == 0x5C })
    }

    /// The next CR or LF.
    @inline(__always)
    static func lineEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        first(bytes, from: start, flags: { equal($0, 0x0A) | equal($0, 0x0D) }, test: { $0 == 0x0A || $0 == 0x0D })
    }
}
