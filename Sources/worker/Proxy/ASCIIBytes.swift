/// Byte-level ASCII comparisons for header names, tokens and paths on the request path.
///
/// `String.lowercased()`, `==` between `String`s and `Sequence.starts(with:)` over UTF-8 views
/// are Unicode-aware or generic, and cost hundreds of instructions each; the data plane asks
/// such questions a dozen times per request. These read the contiguous UTF-8 of a native string
/// (what every string decoded from the wire is) and fall back to the generic path otherwise.
enum ASCIIBytes {
    /// ASCII lower case; every other byte unchanged.
    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 { b &- UInt8(ascii: "A") < 26 ? b | 0x20 : b }

    /// `string` equals `lowercase` (lower-case ASCII) ignoring ASCII case.
    static func equals(_ string: some StringProtocol, lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard string.utf8.count == count else { return false }
        let expected = lowercase.utf8Start
        return string.utf8.withContiguousStorageIfAvailable { bytes in
            for i in 0..<count where lower(bytes[i]) != expected[i] { return false }
            return true
        } ?? string.utf8.enumerated().allSatisfy { lower($0.element) == expected[$0.offset] }
    }

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
        string.utf8.withContiguousStorageIfAvailable { bytes in bytes.firstIndex(of: byte) }
            ?? string.utf8.firstIndex(of: byte).map { string.utf8.distance(from: string.utf8.startIndex, to: $0) }
    }

    /// Whether the comma-separated list `value` has `token` (lower-case ASCII) as an element,
    /// ignoring ASCII case and the whitespace around elements.
    static func listContains(_ value: String, token: StaticString) -> Bool {
        var found = false
        forEachListElement(value) { element in
            if !found && equals(element, lowercase: token) { found = true }
        }
        return found
    }

    /// The non-empty elements of a comma-separated header value, trimmed of spaces and tabs.
    static func forEachListElement(_ string: String, _ body: (Substring) -> Void) {
        let utf8 = string.utf8
        var start = utf8.startIndex
        while start < utf8.endIndex {
            var end = start
            while end < utf8.endIndex, utf8[end] != UInt8(ascii: ",") { end = utf8.index(after: end) }
            var s = start, e = end
            while s < e, utf8[s] == UInt8(ascii: " ") || utf8[s] == UInt8(ascii: "\t") { s = utf8.index(after: s) }
            while e > s {
                let last = utf8[utf8.index(before: e)]
                guard last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") else { break }
                e = utf8.index(before: e)
            }
            if s < e { body(string[s..<e]) }
            start = end < utf8.endIndex ? utf8.index(after: end) : end
        }
    }
}
