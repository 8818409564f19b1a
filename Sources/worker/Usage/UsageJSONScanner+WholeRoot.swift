// The JSON scanner's fastest path (`docs/performance.md`, "usagejson4"): a body whose object is
// whole in the slice it starts in (the bench's 580-byte chat completion, most JSON bodies) is
// read member by member from its `{` to its `}` in one call, the followed objects (`usage`,
// `response`, `message`, their `*_details`) by recursion, with no state kept between members: the
// member walk (`+Members`) stores its state after every member because a slice may end there.
// Anything the walk would hand to the byte-by-byte path (an escape, a number of another form, a
// byte the grammar refuses) or a slice that ends first makes it give up: the document is cleared
// and the walk reads the slice from the document's start, so results are always the walk's. Only
// the values `+Members` reads (skipped values, plain counts, plain kept strings) are read here,
// through its helpers. The same read is done first in C (`json_root.h`, `docs/performance.md`,
// "usagejson7"), which takes exactly these values and gives up where this one would (or on a body
// under 64 bytes, or a CPU without AVX2): then this one runs.

import CByteClasses

extension UsageJSONScanner {
    /// Which reads `readWholeRoot` tries: both, the C one first (the scanner's); one alone
    /// (tests compare them).
    enum WholeRootReads { case cThenSwift, cOnly, swiftOnly }

    /// From `start`, just after the document's `{` (nothing read before it): the index after the
    /// object's `}` with the document read (`state` `.done`), or nil with the document cleared
    /// and nothing else changed. Not for event data (`countsDeltas`: a chunk's `choices` are
    /// followed, which this path does not do).
    mutating func readWholeRoot(
        _ bytes: UnsafeRawBufferPointer, from start: Int, reads: WholeRootReads = .cThenSwift
    ) -> Int? {
        guard !countsDeltas, let base = bytes.baseAddress else { return nil }
        let n = bytes.count
        // A slice that cuts the object (the last byte but white space is not a `}`) would be read
        // twice: not tried.
        let last = Self.lastNonWhitespace(base, n, from: start)
        guard last >= start, base.load(fromByteOffset: last, as: UInt8.self) == UInt8(ascii: "}") else { return nil }
        if reads != .swiftOnly, let end = readRootInC(base, n, from: start) {
            frameCount = 0
            state = .done
            return end
        }
        guard reads != .cOnly, let end = wholeObject(base, n, from: start, container: .root) else {
            document.clear()
            return nil
        }
        frameCount = 0
        state = .done
        return end
    }

    /// The object from `start` read by `fluxgate_json_root_read` (the whole root's member walk in
    /// C, ~760 instructions on the bench's body, its members in the order it expects first, where
    /// `wholeObject` took ~1,900): the index
    /// after its `}`, what it kept set in the document as `wholeObject` would set it; nil, nothing
    /// changed, where it gives up (whatever `wholeObject` does not take, and a body under 64
    /// bytes) or the CPU lacks AVX2.
    private mutating func readRootInC(_ base: UnsafeRawPointer, _ n: Int, from start: Int) -> Int? {
        #if arch(x86_64)
        guard Self.jsonSkipAVX2 else { return nil }
        // Not initialised: the read sets what it reports (a zeroed value cost ~30 stores).
        return withUnsafeTemporaryAllocation(of: fluxgate_json_root.self, capacity: 1) { buffer -> Int? in
            let root = buffer.baseAddress!
            let end = fluxgate_json_root_read(base.assumingMemoryBound(to: UInt8.self), n, start, root)
            guard end >= 0 else { return nil }
            keep(root, base)
            return end
        }
        #else
        return nil
        #endif
    }

    /// The index of the last byte at or after `start` that is not white space, `start - 1` when
    /// there is none.
    @inline(__always)
    static func lastNonWhitespace(_ base: UnsafeRawPointer, _ n: Int, from start: Int) -> Int {
        var last = n &- 1
        while last >= start, base.load(fromByteOffset: last, as: UInt8.self) <= 0x20,
            Self.isWhitespace(base.load(fromByteOffset: last, as: UInt8.self))
        {
            last &-= 1
        }
        return last
    }

    /// What `scan` does with `bytes` from the document's start, whose first byte but white space
    /// is a `{` at `brace` and whose last is its `}`, once `fluxgate_json_root_read` was tried from
    /// `brace + 1`: its `end` (what it found already `keep`-ed), or -1 when it gave up. (For
    /// `UsageReader`'s direct read, which takes the usual body itself and hands on the rest.)
    mutating func scan(_ bytes: UnsafeRawBufferPointer, brace: Int, readInC end: Int) {
        var next: Int
        if end >= 0 {
            frameCount = 0
            state = .done
            next = end
        } else if let swiftEnd = readWholeRoot(bytes, from: brace &+ 1, reads: .swiftOnly) {
            next = swiftEnd
        } else {
            open(array: false, role: .container(.root))
            scan(UnsafeRawBufferPointer(rebasing: bytes[(brace &+ 1)...]))
            return
        }
        readWhole = true
        if next < bytes.count { scan(UnsafeRawBufferPointer(rebasing: bytes[next...])) }
    }

    #if arch(x86_64)
    /// What `fluxgate_json_root_read` found (`root`, in the bytes at `base`), set in the document
    /// as `wholeObject` would set it.
    mutating func keep(_ root: UnsafePointer<fluxgate_json_root>, _ base: UnsafeRawPointer) {
        if root.pointee.model_at >= 0 {
            document.model.begin()
            document.model.append(UnsafeRawBufferPointer(start: base + root.pointee.model_at, count: root.pointee.model_count))
        }
        if root.pointee.type_at >= 0 {
            document.type.begin()
            document.type.append(UnsafeRawBufferPointer(start: base + root.pointee.type_at, count: root.pointee.type_count))
        }
        let written = root.pointee.written
        if written != 0 {
            if written & 1 != 0 { keep(fluxgate_json_root_counts(root, 0), at: .root) }
            if written & 2 != 0 { keep(fluxgate_json_root_counts(root, 1), at: .response) }
            if written & 4 != 0 { keep(fluxgate_json_root_counts(root, 2), at: .message) }
        }
    }

    /// The counts `fluxgate_json_root_read` found for one `usage`, normalised as
    /// `UsageCounts.normalized` makes them from the document's (`keep(_:at:)`), without making
    /// the document's (`UsageDirectTests` compares them).
    @inline(__always)
    static func normalized(_ found: UnsafePointer<fluxgate_usage_counts>) -> NormalizedUsage? {
        let given = found.pointee.given
        @inline(__always) func value(_ bit: UInt32, _ word: Int64) -> Int { given & bit != 0 ? Int(word) : 0 }
        let v = found.pointee.value
        if given & 1 != 0 {
            return NormalizedUsage(input: Int(v.0), output: value(2, v.1), cacheRead: value(4, v.2), cacheWrite: 0)
        }
        guard given & (8 | 16 | 64 | 128) != 0 else { return nil }
        let write = value(128, v.7)
        return NormalizedUsage(
            input: value(8, v.3) + value(64, v.6) + write, output: value(16, v.4),
            cacheRead: given & 64 != 0 ? Int(v.6) : value(32, v.5), cacheWrite: write)
    }

    @inline(__always)
    private static func set(_ found: UnsafePointer<fluxgate_usage_counts>, into counts: inout UsageCounts) {
        let given = found.pointee.given
        guard given != 0 else { return }
        if given & 1 != 0 { counts.promptTokens = Int(found.pointee.value.0) }
        if given & 2 != 0 { counts.completionTokens = Int(found.pointee.value.1) }
        guard given > 3 else { return }
        if given & 4 != 0 { counts.promptCachedTokens = Int(found.pointee.value.2) }
        if given & 8 != 0 { counts.inputTokens = Int(found.pointee.value.3) }
        if given & 16 != 0 { counts.outputTokens = Int(found.pointee.value.4) }
        if given & 32 != 0 { counts.inputCachedTokens = Int(found.pointee.value.5) }
        if given & 64 != 0 { counts.cacheReadInputTokens = Int(found.pointee.value.6) }
        if given & 128 != 0 { counts.cacheCreationInputTokens = Int(found.pointee.value.7) }
    }
    #endif

    #if arch(x86_64)
    /// The counts `fluxgate_json_root_read` found for `location` (`given` bit f: field f, in
    /// `UsageCounts.Field`'s order), set in the document in place.
    @inline(__always)
    private mutating func keep(_ found: UnsafePointer<fluxgate_usage_counts>, at location: UsageLocation) {
        document.start(location, present: found.pointee.present != 0)
        guard found.pointee.given != 0 else { return }
        switch location {
        case .root: Self.set(found, into: &document.usage)
        case .response: Self.set(found, into: &document.responseUsage)
        case .message: Self.set(found, into: &document.messageUsage)
        }
    }
    #endif

    /// The members of an object `container` from `start` (after its `{`) to its `}`: the index
    /// after the `}`, or nil.
    private mutating func wholeObject(_ base: UnsafeRawPointer, _ n: Int, from start: Int, container: Container) -> Int? {
        @inline(__always) func at(_ k: Int) -> UInt8 { base.load(fromByteOffset: k, as: UInt8.self) }
        @inline(__always) func skipWhitespace(_ k: Int) -> Int {
            var k = k
            while k < n, at(k) <= 0x20, Self.isWhitespace(at(k)) { k &+= 1 }
            return k
        }
        var i = skipWhitespace(start)
        guard i < n else { return nil }
        if at(i) == UInt8(ascii: "}") { return i &+ 1 }
        while true {
            guard i < n, at(i) == 0x22 else { return nil }
            let nameEnd = UsageByteScan.stringEnd(base, n, from: i &+ 1)
            guard nameEnd < n, at(nameEnd) == 0x22 else { return nil }
            var v = nameEnd &+ 1
            if v < n, at(v) == UInt8(ascii: ":") {
                v &+= 1
            } else {
                v = skipWhitespace(v)
                guard v < n, at(v) == UInt8(ascii: ":") else { return nil }
                v &+= 1
            }
            v = skipWhitespace(v)
            guard v < n else { return nil }
            let count = nameEnd &- (i &+ 1)
            // By the length first, as `name(_:)` does.
            var role = Role.skip
            if count < 64, Self.namedLengths >> UInt64(count) & 1 != 0 {
                role = Self.role(
                    ofMember: UnsafeRawBufferPointer(start: base + (i &+ 1), count: count), in: container,
                    countsDeltas: false)
            }
            let end: Int?
            let first = at(v)
            if case .skip = role, first != UInt8(ascii: "{"), first != UInt8(ascii: "[") {
                // A skipped string (`id`, `object`, …) or number (`created`), the commonest
                // values: here, not through `wholeValue`'s call and switch.
                end =
                    first == 0x22
                    ? Self.plainStringEnd(base, n, from: v &+ 1)?.end
                    : Self.skippedNumberEnd(base, n, from: v) ?? Self.literalEnd(base, n, from: v)
            } else if case .count(let location, let field) = role {
                end = countedValue(base, n, at: v, field, at: location)
            } else {
                end = wholeValue(base, n, at: v, role: role)
            }
            guard let end else { return nil }
            i = skipWhitespace(end)
            guard i < n else { return nil }
            let b = at(i)
            if b == UInt8(ascii: "}") { return i &+ 1 }
            guard b == UInt8(ascii: ",") else { return nil }
            i = skipWhitespace(i &+ 1)
        }
    }

    /// The value at `v` (not white space) of a member whose value is `role`: the index after it,
    /// its effect on the document made, or nil.
    private mutating func wholeValue(_ base: UnsafeRawPointer, _ n: Int, at v: Int, role: Role) -> Int? {
        let b = base.load(fromByteOffset: v, as: UInt8.self)
        switch role {
        case .skip:
            if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") { return Self.skipWhole(base, n, from: v &+ 1) }
            if b == 0x22 { return Self.plainStringEnd(base, n, from: v &+ 1)?.end }
            return Self.skippedNumberEnd(base, n, from: v) ?? Self.literalEnd(base, n, from: v)
        case .count(let location, let field):
            return countedValue(base, n, at: v, field, at: location)
        case .keep(let target):
            return keptValue(base, n, at: v, first: b, target)
        case .container(let container):
            // An object on the followed path, as `beginValue` and `open` take it (a given-twice
            // member's earlier value forgotten; the root's frames hold at most four, as here).
            guard b == UInt8(ascii: "{"), !container.isArray else { return nil }
            if case .usage(let location) = container {
                // What `clearPrevious` would do for it, and more: the counts start afresh.
                document.start(location, present: true)
            } else {
                clearPrevious(role)
            }
            return wholeObject(base, n, from: v &+ 1, container: container)
        case .content, .presence:
            return nil
        }
    }

    /// A skipped container from `start` (after its `{` or `[`) in the `n` bytes at `base`: the
    /// index after the bracket that closes it, or nil when the bytes end first. With AVX2, 64
    /// bytes a block and 64 then 32 a step of a long string (`fluxgate_json_skip_avx2`: the mock's
    /// 370-byte `choices` in ~260 instructions, ~510 in `UsageBlockScan`); where that gives up or
    /// the CPU lacks it, `UsageBlockScan.skip`, whose result it always is (`UsageWholeSkipTests`).
    static func skipWhole(_ base: UnsafeRawPointer, _ n: Int, from start: Int) -> Int? {
        #if arch(x86_64)
        if jsonSkipAVX2 {
            let end = fluxgate_json_skip_avx2(base.assumingMemoryBound(to: UInt8.self), n, start)
            if end >= 0 { return end }
        }
        #endif
        var position = SkipPosition(depth: 1)
        return UsageBlockScan.skip(UnsafeRawBufferPointer(start: base, count: n), from: start, &position)
    }

    /// `fluxgate_json_skip_avx2` may run (asked once per process).
    #if arch(x86_64)
    static let jsonSkipAVX2 = fluxgate_cpu_has_json_skip_avx2() != 0
    #else
    static let jsonSkipAVX2 = false
    #endif
}
