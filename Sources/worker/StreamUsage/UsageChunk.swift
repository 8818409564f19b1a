#if canImport(Glibc)
import Glibc
#endif

/// What one event of an OpenAI stream is to `stream_usage: inject` (docs/usage.md): the
/// usage-only chunk `include_usage` adds, a chunk carrying the `"usage":null` it adds to all the
/// others, or anything else. Pure, on the event's raw bytes (its lines and blank line).
///
/// Only an event with one `data` line is looked at (OpenAI writes each chunk on one line); an
/// event whose data has no `"usage"` is not parsed.
enum UsageChunk {
    enum Kind: Equatable {
        /// `choices` is `[]` and `usage` an object: dropped.
        case usageOnly
        /// `member` (offsets in the event) is the top-level `"usage":null` with one comma beside
        /// it: removed.
        case nullUsage(member: Range<Int>)
        case other
    }

    static func classify(_ event: UnsafeRawBufferPointer) -> Kind {
        guard let data = onlyDataLine(event), contains(UnsafeRawBufferPointer(rebasing: event[data]), "\"usage\"") else {
            return .other
        }
        let bytes = UnsafeRawBufferPointer(rebasing: event[..<data.upperBound])
        let start = JSONObjectMembers.skipWhitespace(bytes, from: data.lowerBound)
        guard start < bytes.count, case .object(let members, let close) = JSONObjectMembers.members(of: bytes, at: start),
            JSONObjectMembers.skipWhitespace(bytes, from: close + 1) == bytes.count
        else { return .other }
        let usages = members.indices.filter { JSONObjectMembers.key(bytes, members[$0].key, is: "usage") }
        guard usages.count == 1, let at = usages.first else { return .other }
        let usage = members[at]
        if JSONObjectMembers.value(bytes, usage.value, is: "null") {
            // With the comma before it, or (first member) the one after it.
            if at > 0 { return .nullUsage(member: members[at - 1].value.upperBound..<usage.value.upperBound) }
            if members.count > 1 { return .nullUsage(member: usage.key.lowerBound..<members[1].key.lowerBound) }
            return .other
        }
        guard bytes[usage.value.lowerBound] == UInt8(ascii: "{") else { return .other }
        let choices = members.filter { JSONObjectMembers.key(bytes, $0.key, is: "choices") }
        guard choices.count == 1, let list = choices.first, bytes[list.value.lowerBound] == UInt8(ascii: "["),
            JSONObjectMembers.skipWhitespace(bytes, from: list.value.lowerBound + 1) == list.value.upperBound - 1
        else { return .other }
        return .usageOnly
    }

    /// The value of the event's one `data` line (after `data:` and one space), when it has
    /// exactly one and no other field but comments.
    static func onlyDataLine(_ event: UnsafeRawBufferPointer) -> Range<Int>? {
        var data: Range<Int>?
        var i = 0
        let n = event.count
        while i < n {
            var end = i
            while end < n, event[end] != 0x0A, event[end] != 0x0D { end += 1 }
            if end == i { break }  // the blank line
            let line = i..<end
            if event[i] != UInt8(ascii: ":") {
                guard data == nil, line.count >= 5, event[i] == 0x64, event[i + 1] == 0x61, event[i + 2] == 0x74,
                    event[i + 3] == 0x61, event[i + 4] == UInt8(ascii: ":")
                else { return nil }
                var value = i + 5
                if value < end, event[value] == 0x20 { value += 1 }
                data = value..<end
            }
            i = end
            if i < n, event[i] == 0x0D { i += 1 }
            if i < n, event[i] == 0x0A { i += 1 }
        }
        return data
    }

    private static func contains(_ bytes: UnsafeRawBufferPointer, _ needle: StaticString) -> Bool {
        // `memchr` for the first byte, `memcmp` for the rest (Glibc's module has no `memmem`).
        let count = needle.utf8CodeUnitCount
        guard let base = bytes.baseAddress, bytes.count >= count else { return false }
        let first = Int32(needle.utf8Start.pointee)
        var i = 0
        while i + count <= bytes.count, let hit = memchr(base + i, first, bytes.count - count + 1 - i) {
            let at = base.distance(to: UnsafeRawPointer(hit))
            if memcmp(base + at, needle.utf8Start, count) == 0 { return true }
            i = at + 1
        }
        return false
    }
}
