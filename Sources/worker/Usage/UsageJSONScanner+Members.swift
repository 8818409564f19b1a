// The JSON scanner's fast path (`docs/usage.md`, "Cost"): inside an object on the followed path,
// whole members that lie in the slice are read a member at a time — name, colon, value — instead
// of a byte at a time through the grammar's states. It takes the members whose values are
// simple: anything skipped (a string, a plain number, a literal, or a container through
// `UsageBlockScan`), a count that is a plain integer or null, a kept or counted string without
// escapes. Any other member — a container on the followed path, an escape, a number of another
// form, a member the slice cuts, a byte the grammar refuses — is handed to the byte-by-byte path
// at its value's first byte (or at its name's, when the name or colon is cut), with the state
// that path would have reached there: both paths read the same bytes the same way, and the
// conformance corpus is read cut at every byte, which sends every member both ways.

extension UsageJSONScanner.State {
    /// Between members of an object: where `readMembers` can take over.
    var betweenMembers: Bool { self == .keyOrObjectEnd || self == .key || self == .afterValue }
}

extension UsageJSONScanner {
    /// From `start`, in an object (`betweenMembers`): the index where the byte-by-byte path is to
    /// go on, having read every whole simple member before it.
    mutating func readMembers(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        guard let base = bytes.baseAddress else { return start }
        let n = bytes.count
        @inline(__always) func at(_ k: Int) -> UInt8 { base.load(fromByteOffset: k, as: UInt8.self) }
        @inline(__always) func skipWhitespace(_ k: Int) -> Int {
            var k = k
            while k < n, at(k) <= 0x20, Self.isWhitespace(at(k)) { k &+= 1 }
            return k
        }
        var i = start
        while true {
            i = skipWhitespace(i)
            guard i < n else { return i }
            if at(i) == UInt8(ascii: "}") && state != .key {
                // The object ends (`close` judges it): on in the object around it, if any.
                close(array: false)
                i &+= 1
                guard state.betweenMembers, frameCount > 0, !top.isArray else { return i }
                continue
            }
            if state == .afterValue {
                // Anything unexpected: the byte-by-byte path's.
                guard at(i) == UInt8(ascii: ",") else { return i }
                state = .key
                i = skipWhitespace(i &+ 1)
                guard i < n else { return i }
            }
            guard at(i) == 0x22 else { return i }
            let nameEnd = UsageByteScan.stringEnd(bytes, from: i &+ 1)
            guard nameEnd < n, at(nameEnd) == 0x22 else { return i }
            // `"name":` with nothing between is the common case: one comparison.
            var v = nameEnd &+ 1
            if v < n, at(v) == UInt8(ascii: ":") {
                v &+= 1
            } else {
                v = skipWhitespace(v)
                guard v < n, at(v) == UInt8(ascii: ":") else { return i }
                v &+= 1
            }
            v = skipWhitespace(v)
            guard v < n else { return i }
            name(UnsafeRawBufferPointer(start: base + (i &+ 1), count: nameEnd &- (i &+ 1)))
            if case .container(let container) = top.member, !container.isArray, at(v) == UInt8(ascii: "{") {
                // An object on the followed path (`usage`, `response`, …): its members are read
                // here too, as `beginValue` would open it.
                clearPrevious(top.member)
                open(array: false, role: top.member)
                i = v &+ 1
                continue
            }
            guard let end = simpleValue(bytes, base, at: v) else {
                state = .value
                return v
            }
            // A skipped container the slice cuts is being skipped still.
            guard state.betweenMembers else { return end }
            state = .afterValue
            i = end
        }
    }

    /// A counted member's value at `v`: a plain integer set in the document, or a literal (`null`)
    /// that forgets the member given twice, as `clearPrevious` does; the index after it, or nil
    /// for the byte-by-byte path. The member walk and the whole root's read share it.
    @inline(__always)
    mutating func countedValue(
        _ base: UnsafeRawPointer, _ n: Int, at v: Int, _ field: UsageCounts.Field, at location: UsageLocation
    ) -> Int? {
        if let (end, value) = Self.plainNumberEnd(base, n, from: v) {
            document.set(field, at: location, to: value)
            return end
        }
        guard let end = Self.literalEnd(base, n, from: v) else { return nil }
        document.set(field, at: location, to: nil)
        return end
    }

    /// A kept string's value at `v` (its first byte `b`): a string without escapes, kept as the
    /// model or the event type; the index after it, or nil for the byte-by-byte path.
    @inline(__always)
    mutating func keptValue(
        _ base: UnsafeRawPointer, _ n: Int, at v: Int, first b: UInt8, _ target: StringTarget
    ) -> Int? {
        guard b == 0x22, let (end, _) = Self.plainStringEnd(base, n, from: v &+ 1) else { return nil }
        let text = UnsafeRawBufferPointer(start: base + (v &+ 1), count: end &- v &- 2)
        switch target {
        case .model:
            document.model.begin()
            document.model.append(text)
        case .type:
            document.type.begin()
            document.type.append(text)
        case .skip, .key, .content:
            return nil
        }
        return end
    }

    /// The value at `v` (not white space) of the member just named (`top.member`), when it is simple: the index
    /// after it, its effect on the document made; nil (and nothing changed) for the byte-by-byte
    /// path. A skipped container the slice cuts is taken too: the skip goes on in the next slice.
    /// (`base` is `bytes.baseAddress`, read in place of `bytes`' subscript, which checks it.)
    private mutating func simpleValue(_ bytes: UnsafeRawBufferPointer, _ base: UnsafeRawPointer, at v: Int) -> Int? {
        let n = bytes.count
        let role = valueRole()
        let b = base.load(fromByteOffset: v, as: UInt8.self)
        switch role {
        case .skip:
            if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") {
                skipDepth = 1
                state = .skipping
                return skip(bytes, from: v &+ 1)
            }
            if b == 0x22 { return Self.plainStringEnd(base, n, from: v &+ 1)?.end }
            return Self.plainNumberEnd(base, n, from: v)?.end ?? Self.literalEnd(base, n, from: v)
        case .count(let location, let field):
            return countedValue(base, n, at: v, field, at: location)
        case .keep(let target):
            return keptValue(base, n, at: v, first: b, target)
        case .content:
            guard b == 0x22, let (end, nonEmpty) = Self.plainStringEnd(base, n, from: v &+ 1) else { return nil }
            if nonEmpty { document.contentDeltas &+= 1 }
            return end
        case .container, .presence:
            return nil
        }
    }

    /// A string without escapes or control bytes whose content begins at `start` (of `base`'s `n`
    /// bytes): the index after its closing quote, and whether it is not empty.
    @inline(__always)
    static func plainStringEnd(_ base: UnsafeRawPointer, _ n: Int, from start: Int) -> (end: Int, nonEmpty: Bool)? {
        let end = UsageByteScan.stringEnd(base, n, from: start)
        guard end < n, base.load(fromByteOffset: end, as: UInt8.self) == 0x22 else { return nil }
        return (end &+ 1, end > start)
    }

    /// `0` or `[1-9][0-9]*`, at most 15 digits (a count, `NumberState`), followed in the slice by
    /// white space, `,` or `}` (what else may follow is the grammar's to judge): the index after
    /// it and its value.
    @inline(__always)
    static func plainNumberEnd(_ base: UnsafeRawPointer, _ n: Int, from start: Int) -> (end: Int, value: Int)? {
        var i = start
        var value = 0
        while i < n {
            let digit = base.load(fromByteOffset: i, as: UInt8.self) &- UInt8(ascii: "0")
            guard digit <= 9 else { break }
            value = value &* 10 &+ Int(digit)
            i &+= 1
        }
        guard isPlainNumber(base, n, from: start, to: i) else { return nil }
        return (i, value)
    }

    /// `plainNumberEnd(base, n, from: start)?.end` without the value, eight bytes a step (a
    /// skipped number: a completion's ten-digit `created` took ~70 instructions a digit at a time).
    @inline(__always)
    static func skippedNumberEnd(_ base: UnsafeRawPointer, _ n: Int, from start: Int) -> Int? {
        var i = start
        var searching = true
        while searching && i &+ 8 <= n {
            let x = base.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ 0x3030_3030_3030_3030
            // 0x80 in each byte that is no digit (above 9 once `0` is taken off; the lowest exact).
            let other = ((x &+ 0x7676_7676_7676_7676) | x) & 0x8080_8080_8080_8080
            if other != 0 {
                i &+= other.trailingZeroBitCount >> 3
                searching = false
            } else {
                i &+= 8
            }
        }
        if searching {
            while i < n, base.load(fromByteOffset: i, as: UInt8.self) &- UInt8(ascii: "0") <= 9 { i &+= 1 }
        }
        guard isPlainNumber(base, n, from: start, to: i) else { return nil }
        return i
    }

    /// The digits from `start` to `end` are a plain number: 1 to 15 of them, no leading `0`
    /// unless alone, and white space, `,` or `}` after them in the slice.
    @inline(__always)
    static func isPlainNumber(_ base: UnsafeRawPointer, _ n: Int, from start: Int, to end: Int) -> Bool {
        let digits = end &- start
        guard digits > 0, digits <= 15, end < n else { return false }
        guard digits == 1 || base.load(fromByteOffset: start, as: UInt8.self) != UInt8(ascii: "0") else { return false }
        let next = base.load(fromByteOffset: end, as: UInt8.self)
        return next == UInt8(ascii: ",") || next == UInt8(ascii: "}") || (next <= 0x20 && isWhitespace(next))
    }

    /// `true`, `false` or `null` whole at `start`: the index after it.
    @inline(__always)
    static func literalEnd(_ base: UnsafeRawPointer, _ n: Int, from start: Int) -> Int? {
        guard start &+ 4 <= n else { return nil }
        let word = base.loadUnaligned(fromByteOffset: start, as: UInt32.self)
        if word == 0x6C6C_756E || word == 0x6575_7274 { return start &+ 4 }  // null, true
        guard start &+ 5 <= n else { return nil }
        if word == 0x736C_6166 && base.load(fromByteOffset: start &+ 4, as: UInt8.self) == UInt8(ascii: "e") {
            return start &+ 5  // fals e
        }
        return nil
    }
}
