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
        var i = start
        let n = bytes.count
        while true {
            i = Self.skipWhitespace(bytes, from: i)
            guard i < n else { return i }
            if state == .afterValue {
                // `}` and anything unexpected: the byte-by-byte path's.
                guard bytes[i] == UInt8(ascii: ",") else { return i }
                state = .key
                i = Self.skipWhitespace(bytes, from: i &+ 1)
                guard i < n else { return i }
            }
            guard bytes[i] == 0x22 else { return i }
            let nameEnd = UsageByteScan.stringEnd(bytes, from: i &+ 1)
            guard nameEnd < n, bytes[nameEnd] == 0x22 else { return i }
            var v = Self.skipWhitespace(bytes, from: nameEnd &+ 1)
            guard v < n, bytes[v] == UInt8(ascii: ":") else { return i }
            v = Self.skipWhitespace(bytes, from: v &+ 1)
            guard v < n else { return i }
            top.key = MemberName(UnsafeRawBufferPointer(rebasing: bytes[(i &+ 1)..<nameEnd]))
            guard let end = simpleValue(bytes, at: v) else {
                state = .value
                return v
            }
            // A skipped container the slice cuts is being skipped still.
            guard state.betweenMembers else { return end }
            state = .afterValue
            i = end
        }
    }

    /// The value at `v` (not white space) of the member `top.key`, when it is simple: the index
    /// after it, its effect on the document made; nil (and nothing changed) for the byte-by-byte
    /// path. A skipped container the slice cuts is taken too: the skip goes on in the next slice.
    private mutating func simpleValue(_ bytes: UnsafeRawBufferPointer, at v: Int) -> Int? {
        let role = valueRole()
        let b = bytes[v]
        switch role {
        case .skip:
            if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") {
                skipDepth = 1
                state = .skipping
                return skip(bytes, from: v &+ 1)
            }
            if b == 0x22 { return Self.plainStringEnd(bytes, from: v &+ 1)?.end }
            return Self.plainNumberEnd(bytes, from: v)?.end ?? Self.literalEnd(bytes, from: v)
        case .count(let location, let field):
            if let (end, value) = Self.plainNumberEnd(bytes, from: v) {
                document.set(field, at: location, to: value)
                return end
            }
            // A literal: the member given twice is forgotten, as `clearPrevious` does.
            guard let end = Self.literalEnd(bytes, from: v) else { return nil }
            document.set(field, at: location, to: nil)
            return end
        case .keep(let target):
            guard b == 0x22, let (end, _) = Self.plainStringEnd(bytes, from: v &+ 1) else { return nil }
            let text = UnsafeRawBufferPointer(rebasing: bytes[(v &+ 1)..<(end &- 1)])
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
        case .content:
            guard b == 0x22, let (end, nonEmpty) = Self.plainStringEnd(bytes, from: v &+ 1) else { return nil }
            if nonEmpty { document.contentDeltas &+= 1 }
            return end
        case .container, .presence:
            return nil
        }
    }

    @inline(__always)
    static func skipWhitespace(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var i = start
        while i < bytes.count, bytes[i] <= 0x20, isWhitespace(bytes[i]) { i &+= 1 }
        return i
    }

    /// A string without escapes or control bytes whose content begins at `start`: the index after
    /// its closing quote, and whether it is not empty.
    @inline(__always)
    static func plainStringEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> (end: Int, nonEmpty: Bool)? {
        let end = UsageByteScan.stringEnd(bytes, from: start)
        guard end < bytes.count, bytes[end] == 0x22 else { return nil }
        return (end &+ 1, end > start)
    }

    /// `0` or `[1-9][0-9]*`, at most 15 digits (a count, `NumberState`), followed in the slice by
    /// white space, `,` or `}` (what else may follow is the grammar's to judge): the index after
    /// it and its value.
    @inline(__always)
    static func plainNumberEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> (end: Int, value: Int)? {
        var i = start
        var value = 0
        let n = bytes.count
        while i < n {
            let digit = bytes[i] &- UInt8(ascii: "0")
            guard digit <= 9 else { break }
            value = value &* 10 &+ Int(digit)
            i &+= 1
        }
        let digits = i &- start
        guard digits > 0, digits <= 15, i < n, digits == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
        let next = bytes[i]
        guard next == UInt8(ascii: ",") || next == UInt8(ascii: "}") || (next <= 0x20 && isWhitespace(next)) else {
            return nil
        }
        return (i, value)
    }

    /// `true`, `false` or `null` whole at `start`: the index after it.
    @inline(__always)
    static func literalEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start &+ 5 <= bytes.count || (start &+ 4 <= bytes.count && bytes[start] != UInt8(ascii: "f")) else {
            return nil
        }
        let word = bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self)
        if word == 0x6C6C_756E || word == 0x6575_7274 { return start &+ 4 }  // null, true
        if word == 0x736C_6166 && bytes[start &+ 4] == UInt8(ascii: "e") { return start &+ 5 }  // fals e
        return nil
    }
}
