#if canImport(Glibc)
import Glibc
#endif

/// The members of one JSON object, by position: each member's key literal (quotes included) and
/// value (a string with its quotes, a container with its brackets, a scalar's bytes), for the
/// edits of `stream_usage: inject` (docs/usage.md), which change one member and copy every other
/// byte. Only the object's own grammar is followed; a value is stepped over by `JSONCursor`
/// (its strings and bracket depth, as for `ModelMember`), not validated: the upstream parses it.
/// Pure: the same bytes give the same answer.
enum JSONObjectMembers {
    struct Member: Equatable {
        var key: Range<Int>
        var value: Range<Int>
    }

    enum Outcome: Equatable {
        /// The object's members in order, and the index of its closing brace.
        case object([Member], close: Int)
        /// The bytes end inside the object.
        case needMore
        /// Not a JSON object at `start`, or its grammar is broken.
        case invalid
    }

    /// The object whose `{` is at `start`.
    static func members(of bytes: UnsafeRawBufferPointer, at start: Int) -> Outcome {
        var cursor = JSONCursor(bytes, at: start)
        do throws(JSONCursor.Stop) {
            return try cursor.objectMembers()
        } catch {
            switch error {
            case .more: return .needMore
            case .invalid: return .invalid
            }
        }
    }

    /// The index of the first byte at or after `from` that is not JSON white space (`count` when none).
    static func skipWhitespace(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int {
        var i = from
        while i < bytes.count, isWhitespace(bytes[i]) { i += 1 }
        return i
    }

    static func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }

    /// The key literal `key` (quotes included) is `name`, escapes decoded (`"stre\u0061m"` is
    /// `stream` to the upstream too).
    static func key(_ bytes: UnsafeRawBufferPointer, _ key: Range<Int>, is name: StaticString) -> Bool {
        let inner = UnsafeRawBufferPointer(rebasing: bytes[(key.lowerBound + 1)..<(key.upperBound - 1)])
        if inner.count == name.utf8CodeUnitCount, memcmp(inner.baseAddress!, name.utf8Start, inner.count) == 0 { return true }
        guard ModelMember.hasBackslash(inner) else { return false }
        return ModelMember.decode(UnsafeRawBufferPointer(rebasing: bytes[key])) == name.description
    }

    /// The bytes at `range` are exactly `literal` (`true`, `null`, …).
    static func value(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, is literal: StaticString) -> Bool {
        range.count == literal.utf8CodeUnitCount && memcmp(bytes.baseAddress! + range.lowerBound, literal.utf8Start, range.count) == 0
    }
}

extension JSONCursor {
    /// At the object's `{` (after white space): its members and its closing brace.
    fileprivate mutating func objectMembers() throws(Stop) -> JSONObjectMembers.Outcome {
        var members: [JSONObjectMembers.Member] = []
        let walk = try walkObject { (cursor, key) throws(Stop) -> Never? in
            let valueStart = cursor.i
            try cursor.skipValue()
            members.append(.init(key: key, value: valueStart..<cursor.i))
            return nil
        }
        switch walk {
        case .notAnObject: return .invalid
        case .closed(let close): return .object(members, close: close)
        }
    }
}
