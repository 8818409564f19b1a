import CByteClasses

/// Where a skipped JSON value stands between two slices: its open brackets, and whether a string
/// of it is open (and its next byte escaped).
struct SkipPosition: Equatable {
    var depth: Int
    var inString = false
    var escaped = false
}

/// Through a JSON value the reader skips, 64 bytes a step (`docs/usage.md`, "Cost"), the way
/// simdjson's first stage finds a document's structure: each block's quotes, backslashes and
/// brackets become bit masks (`fluxgate_json_classify`), the quotes that open or close a string
/// become a mask of the bytes inside strings (a prefix XOR), and the brackets outside strings
/// change the depth by their counts — bit by bit only in the block where the value may end.
/// Escapes are followed one backslash at a time, in the blocks that have one. A block that ends
/// inside a string is followed by a search for the string's end, thirty-two bytes a step
/// (`stringEnd`), rather than classified 64 bytes at a time (`docs/performance.md`, "usagejson3").
///
/// The same bytes matter as in a byte-by-byte skip: inside a string a `\` escapes the next byte
/// and a `"` ends it; outside, `"` begins a string and brackets change the depth; nothing else
/// (a raw control byte, a stray `\`) is looked at.
enum UsageBlockScan {
    /// From `start` inside a value `position.depth` brackets deep (> 0): the index after the
    /// bracket that closes it, or nil when `bytes` ends first, with `position` where it stands.
    static func skip(_ bytes: UnsafeRawBufferPointer, from start: Int, _ position: inout SkipPosition) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        let n = bytes.count
        var i = start
        while true {
            if position.inString && !position.escaped {
                // Most of a skipped value's bytes are in a few long strings (a choice's content):
                // the rest of the string is searched 32 bytes a step for its `"` or `\` (the
                // blocks go on from either), rather than classified whole.
                let stop = stringEnd(base, n, from: i)
                if stop < n && base.load(fromByteOffset: stop, as: UInt8.self) == 0x22 {
                    position.inString = false
                    i = stop &+ 1
                } else {
                    i = stop
                }
            }
            guard i &+ 64 <= n else { break }
            if let end = block(fluxgate_json_classify(base + i), count: 64, &position) { return i &+ end &+ 1 }
            i &+= 64
        }
        let rest = n &- i
        guard rest > 0 else { return nil }
        var masks: fluxgate_json_block
        if n >= 64 {
            // The last 64 bytes, the ones already read shifted out.
            masks = fluxgate_json_classify(base + (n &- 64))
            let shift = UInt64(64 &- rest)
            masks.quote >>= shift
            masks.backslash >>= shift
            masks.open >>= shift
            masks.close >>= shift
        } else {
            masks = withUnsafeTemporaryAllocation(byteCount: 64, alignment: 16) { padded in
                // Spaces past the end: none of them is a byte that matters.
                padded.initializeMemory(as: UInt8.self, repeating: 0x20)
                padded.baseAddress!.copyMemory(from: base + i, byteCount: rest)
                return fluxgate_json_classify(padded.baseAddress!)
            }
        }
        if let end = block(masks, count: rest, &position) { return i &+ end &+ 1 }
        return nil
    }

    /// The next `"` or `\` from `start` in the `n` bytes at `base`, 32 bytes a step
    /// (`fluxgate_quotes_or_backslashes32`; a skip does not look at control bytes), the last
    /// bytes through `UsageByteScan.stringEnd` (which may stop at a control byte too).
    @inline(__always)
    private static func stringEnd(_ base: UnsafeRawPointer, _ n: Int, from start: Int) -> Int {
        var i = start
        while i &+ 32 <= n {
            let stops = fluxgate_quotes_or_backslashes32(base + i)
            if stops != 0 { return i &+ stops.trailingZeroBitCount }
            i &+= 32
        }
        return UsageByteScan.stringEnd(base, n, from: i)
    }

    /// One block of `count` bytes (bits above `count` clear): the bit of the bracket that closes
    /// the value, or nil with `position` moved past the block.
    @inline(__always)
    private static func block(_ masks: fluxgate_json_block, count: Int, _ position: inout SkipPosition) -> Int? {
        let quotes: UInt64
        if masks.backslash == 0 && !position.escaped {
            quotes = masks.quote
        } else {
            quotes = stringQuotes(masks, count: count, &position)
        }
        var inside = prefixXOR(quotes)
        if position.inString { inside = ~inside }
        // Bit 63 of the prefix XOR is the parity of the block's quotes (bits past `count` are clear).
        position.inString = inside >> 63 != 0
        let open = masks.open & ~inside
        let close = masks.close & ~inside
        if close == 0 {
            if open != 0 { position.depth &+= open.nonzeroBitCount }
            return nil
        }
        let closes = close.nonzeroBitCount
        if closes < position.depth {
            // The depth cannot reach 0 in this block, whatever the order of its brackets.
            position.depth &+= open.nonzeroBitCount &- closes
            return nil
        }
        var brackets = open | close
        while brackets != 0 {
            let bit = brackets.trailingZeroBitCount
            brackets &= brackets &- 1
            if open >> UInt64(bit) & 1 != 0 {
                position.depth &+= 1
            } else {
                position.depth &-= 1
                if position.depth == 0 { return bit }
            }
        }
        return nil
    }

    /// The quotes of a block that open or close strings, following its backslashes in order; sets
    /// `position.escaped` for the byte after the block. (`inString` is left for the caller.)
    private static func stringQuotes(_ masks: fluxgate_json_block, count: Int, _ position: inout SkipPosition) -> UInt64 {
        var quotes: UInt64 = 0
        var inString = position.inString
        // The byte at `escapedBit` is escaped (-1: none).
        var escapedBit = position.escaped ? 0 : -1
        var events = masks.quote | masks.backslash
        while events != 0 {
            let bit = events.trailingZeroBitCount
            events &= events &- 1
            if bit == escapedBit { continue }
            if masks.quote >> UInt64(bit) & 1 != 0 {
                quotes |= 1 << UInt64(bit)
                inString.toggle()
            } else if inString {
                escapedBit = bit &+ 1
            }
        }
        position.escaped = escapedBit == count
        return quotes
    }

    /// Bit i set when an odd number of bits at or below i are set in `x`: from a string's opening
    /// quote up to, not including, its closing one.
    @inline(__always)
    static func prefixXOR(_ x: UInt64) -> UInt64 {
        var m = x
        m ^= m << 1
        m ^= m << 2
        m ^= m << 4
        m ^= m << 8
        m ^= m << 16
        m ^= m << 32
        return m
    }
}
