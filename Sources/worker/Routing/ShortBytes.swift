/// `memcmp(a, b, count) == 0` for a name of `models:` (`ModelNameIndex`'s few names compared one
/// by one): eight bytes at a time, inlined, no call (a `memcmp` call cost ~24 instructions more
/// per model-routed request, docs/performance.md "gateway7").
enum ShortBytes {
    @inline(__always)
    static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
        var i = 0
        while count - i >= 8 {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i &+= 8
        }
        while i < count {
            if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
            i &+= 1
        }
        return true
    }
}
