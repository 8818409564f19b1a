import Common

#if canImport(Glibc)
import Glibc
#endif

/// Finds a request body's top-level `"model"` member in the body's first bytes
/// (docs/routing-and-forwarding.md "Model routing"): only as far as that member, so the rest of
/// the body is streamed unread. Pure: the same answer for the same bytes, and "more" for any
/// prefix that ends before the answer is certain — the model stage asks for a longer prefix then.
///
/// Only the top-level object's grammar is followed; a member's value other than `model`'s is
/// stepped over by its strings and bracket depth (the usage reader's `UsageByteScan` searches
/// find the bytes that matter, eight at a time), so a `"model"` inside a nested object is never
/// taken for the top-level one. The bytes of the skipped values are not validated: the upstream
/// parses the body anyway. Names with escapes are decoded by the one JSON parser
/// (`JSONParser`), so `"mod\u0065l"` is `model`, as it is to the upstream.
///
/// Not the usage reader's `UsageJSONScanner`: that scanner keeps `model` wherever the response
/// puts it (the root, `response`, `message`), reads on to the end of the document, and does not
/// say where a string's bytes are; a request needs the top level only, an early stop and the
/// literal's position for the rename's splice.
enum ModelMember {
    enum Outcome: Equatable {
        /// `literal` is where the string value is in the bytes, quotes included; `name` its
        /// decoded text.
        case found(literal: Range<Int>, name: String)
        /// The bytes end before the answer is known.
        case needMore
        /// The body is not a JSON object.
        case notAnObject
        /// The object has no top-level `model`.
        case missing
        /// `model` is not a string (or not valid JSON text: a bad escape, invalid UTF-8).
        case notAString
        /// The object's own grammar is broken before `model` was found.
        case invalid
    }

    static func find(in bytes: UnsafeRawBufferPointer) -> Outcome {
        switch locate(in: bytes) {
        case .literal(let literal):
            guard let name = decode(UnsafeRawBufferPointer(rebasing: bytes[literal])) else { return .notAString }
            return .found(literal: literal, name: name)
        case .other(let outcome):
            return outcome
        }
    }

    /// `find`'s answer before the name is decoded: where the string literal is (quotes
    /// included), or any other outcome. The model stage looks an escape-free name up by its
    /// bytes and makes no text of it when the configuration has it (docs/performance.md).
    enum Located: Equatable {
        case literal(Range<Int>)
        case other(Outcome)
    }

    static func locate(in bytes: UnsafeRawBufferPointer) -> Located {
        if let literal = leadingModel(bytes) { return .literal(literal) }
        var cursor = JSONCursor(bytes)
        do throws(JSONCursor.Stop) {
            return try cursor.topLevelModel()
        } catch {
            switch error {
            case .more: return .other(.needMore)
            case .invalid: return .other(.invalid)
            }
        }
    }

    /// The shape the SDKs send, `{"model":"<name>"` at the very start, with no white space and
    /// a name of plain bytes (no escape, no control byte): its literal, found as the walk would
    /// find it but without the walk (~250 instructions per request). nil for anything else, which
    /// the walk then reads (a cut name too: it says "more").
    static func leadingModel(_ bytes: UnsafeRawBufferPointer) -> Range<Int>? {
        let start = 10
        guard bytes.count > start, let base = bytes.baseAddress else { return nil }
        // `{"model":"` as two loads (eight bytes and two), not `memcmp`, and the name's end, an
        // escape or a control byte found in one pass, eight bytes at a time: a `memchr` for the
        // quote and a second pass for the others cost ~40 instructions more (docs/performance.md
        // "gateway7").
        guard UInt64(littleEndian: base.loadUnaligned(as: UInt64.self)) == 0x226C_6564_6F6D_227B,
            UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 8, as: UInt16.self)) == 0x223A
        else { return nil }
        let count = bytes.count
        var i = start
        // A byte that is `"` or `\\` (zero after the XOR) or below 0x20 sets its top bit in
        // `(w - 0x01…/0x20…) & ~w & 0x80…`; the lowest byte set is always one of them (a borrow
        // only marks bytes above a true one), so it says which comes first.
        while count - i >= 8 {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let quotes = word ^ 0x2222_2222_2222_2222
            let backslashes = word ^ 0x5C5C_5C5C_5C5C_5C5C
            let found =
                ((quotes &- 0x0101_0101_0101_0101) & ~quotes) | ((backslashes &- 0x0101_0101_0101_0101) & ~backslashes)
                | ((word &- 0x2020_2020_2020_2020) & ~word)
            let marks = found & 0x8080_8080_8080_8080
            if marks != 0 {
                let first = i &+ marks.trailingZeroBitCount / 8
                return base.load(fromByteOffset: first, as: UInt8.self) == UInt8(ascii: "\"") ? (start - 1)..<(first + 1) : nil
            }
            i &+= 8
        }
        while i < count {
            let byte = base.load(fromByteOffset: i, as: UInt8.self)
            if byte == UInt8(ascii: "\"") { return (start - 1)..<(i + 1) }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
            i &+= 1
        }
        return nil
    }

    /// The decoded text of a string literal (quotes included): directly when it has no escape,
    /// through `JSONParser` otherwise. nil when it is not valid JSON text.
    static func decode(_ literal: UnsafeRawBufferPointer) -> String? {
        let inner = UnsafeRawBufferPointer(rebasing: literal[1..<(literal.count - 1)])
        if !hasBackslash(inner) {
            // Not `String(validating:as:)`: unspecialised here, it looked up generic metadata at
            // run time (~500 instructions). Decoding repairs invalid UTF-8 with U+FFFD, so the
            // text is the name exactly when its bytes are the literal's.
            var text = String(decoding: inner, as: UTF8.self)
            let same = text.withUTF8 {
                $0.count == inner.count && ($0.isEmpty || memcmp($0.baseAddress!, inner.baseAddress!, $0.count) == 0)
            }
            return same ? text : nil
        }
        guard case .string(let text)? = try? JSONParser.parse(literal) else { return nil }
        return text
    }

    /// `memchr`: a generic `contains` went byte by byte through the sequence protocol.
    static func hasBackslash(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return false }
        return memchr(base, 0x5C, bytes.count) != nil
    }
}

extension JSONCursor {
    /// The top-level object's `model` member, walked only as far as it.
    fileprivate mutating func topLevelModel() throws(Stop) -> ModelMember.Located {
        let walk = try walkObject { (cursor, key) throws(Stop) -> ModelMember.Located? in
            if cursor.isModel(key) { return try cursor.modelValue() }
            try cursor.skipValue()
            return nil
        }
        switch walk {
        case .notAnObject: return .other(.notAnObject)
        case .answered(let located): return located
        case .closed: return .other(.missing)
        }
    }

    fileprivate func isModel(_ key: Range<Int>) -> Bool {
        let inner = UnsafeRawBufferPointer(rebasing: bytes[(key.lowerBound + 1)..<(key.upperBound - 1)])
        // `memcmp`: a generic `elementsEqual` with the literal cost ~150 instructions a key.
        if inner.count == 5, memcmp(inner.baseAddress!, ("model" as StaticString).utf8Start, 5) == 0 { return true }
        // `"mod\u0065l"` is `model` too: the upstream would read it so.
        guard ModelMember.hasBackslash(inner) else { return false }
        return ModelMember.decode(UnsafeRawBufferPointer(rebasing: bytes[key])) == "model"
    }

    fileprivate mutating func modelValue() throws(Stop) -> ModelMember.Located {
        guard bytes[i] == UInt8(ascii: "\"") else { return .other(.notAString) }
        return .literal(try stringLiteral())
    }
}
