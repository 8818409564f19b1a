/// Request ids made by the proxy when the client sent none (or an invalid one): 32 hex digits
/// (docs/observability.md "Request ids"). A random 128-bit seed per worker process and a counter,
/// mixed (splitmix64) so that ids look random and never repeat within the process; asked for
/// only when an id is needed (a request line is written, or `propagate_request_id` is on).
/// Touched only from the worker's event loop.
final class RequestIDGenerator {
    private let seed: (UInt64, UInt64)
    private var counter: UInt64 = 0

    init() {
        var random = SystemRandomNumberGenerator()
        seed = (random.next(), random.next())
    }

    /// The id of a request: the client's valid `x-request-id`, else a new one.
    func id(for head: RequestHead?) -> String {
        if let id = head?.clientRequestID { return id }
        return next()
    }

    func next() -> String {
        let (high, low) = nextValue()
        // Written in place: String(radix:) and padding cost ~3,000 instructions per id (callgrind).
        return String(unsafeUninitializedCapacity: 32) { buffer in
            Self.write(high, low, into: UnsafeMutableRawBufferPointer(buffer))
            return 32
        }
    }

    /// An id's 32 bytes as a value: a request line that needs an id for itself alone makes no
    /// `String` (its allocation and free cost ~600 instructions).
    struct Text {
        private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

        fileprivate init(_ high: UInt64, _ low: UInt64) {
            withUnsafeMutableBytes(of: &words) { RequestIDGenerator.write(high, low, into: $0) }
        }

        /// The id's bytes, valid during the call only.
        func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
            withUnsafeBytes(of: words, body)
        }
    }

    /// The next id, as `next()` would make it.
    func nextText() -> Text {
        let (high, low) = nextValue()
        return Text(high, low)
    }

    private func nextValue() -> (UInt64, UInt64) {
        counter &+= 1
        return (Self.mix(seed.0 &+ counter), Self.mix(seed.1 ^ counter))
    }

    /// `high` then `low` as 16 lower-case hex digits each, eight digits a step (a digit at a
    /// time cost ~130 instructions per id).
    static func write(_ high: UInt64, _ low: UInt64, into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= 32)
        buffer.storeBytes(of: hexDigits(UInt32(truncatingIfNeeded: high >> 32)).littleEndian, toByteOffset: 0, as: UInt64.self)
        buffer.storeBytes(of: hexDigits(UInt32(truncatingIfNeeded: high)).littleEndian, toByteOffset: 8, as: UInt64.self)
        buffer.storeBytes(of: hexDigits(UInt32(truncatingIfNeeded: low >> 32)).littleEndian, toByteOffset: 16, as: UInt64.self)
        buffer.storeBytes(of: hexDigits(UInt32(truncatingIfNeeded: low)).littleEndian, toByteOffset: 24, as: UInt64.self)
    }

    /// `value`'s eight lower-case hex digits, most significant first, as the bytes of a word
    /// stored little-endian: each nibble is spread into a byte of its own, the bytes put in
    /// reading order, and each becomes `0`–`9` or `a`–`f` without a branch.
    @inline(__always)
    static func hexDigits(_ value: UInt32) -> UInt64 {
        var v = UInt64(value)
        v = (v | v << 16) & 0x0000_FFFF_0000_FFFF
        v = (v | v << 8) & 0x00FF_00FF_00FF_00FF
        v = (v | v << 4) & 0x0F0F_0F0F_0F0F_0F0F
        // Byte k held nibble k (from the least significant); the first digit is the last nibble.
        v = v.byteSwapped
        // 1 in each byte whose nibble is 10 or more: those skip from `9` + 1 to `a`.
        let letters = ((v &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        return v &+ 0x3030_3030_3030_3030 &+ letters &* UInt64(UInt8(ascii: "a") &- UInt8(ascii: "9") &- 1)
    }

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
