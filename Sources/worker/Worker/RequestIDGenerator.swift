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

    /// `high` then `low` as 16 lower-case hex digits each.
    fileprivate static func write(_ high: UInt64, _ low: UInt64, into buffer: UnsafeMutableRawBufferPointer) {
        for index in 0..<16 {
            let shift = 60 &- 4 &* UInt64(index)
            buffer[index] = hexDigit(high >> shift)
            buffer[16 &+ index] = hexDigit(low >> shift)
        }
    }

    /// The hex digit of `value`'s low four bits, without a table lookup.
    @inline(__always)
    private static func hexDigit(_ value: UInt64) -> UInt8 {
        let nibble = UInt8(truncatingIfNeeded: value & 15)
        return nibble < 10 ? nibble &+ UInt8(ascii: "0") : nibble &+ (UInt8(ascii: "a") &- 10)
    }

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
