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
        counter &+= 1
        let high = Self.mix(seed.0 &+ counter)
        let low = Self.mix(seed.1 ^ counter)
        // Written in place: String(radix:) and padding cost ~3,000 instructions per id (callgrind).
        return String(unsafeUninitializedCapacity: 32) { buffer in
            for index in 0..<16 {
                buffer[index] = Self.digits[Int(truncatingIfNeeded: high >> (60 - 4 * UInt64(index))) & 15]
                buffer[16 + index] = Self.digits[Int(truncatingIfNeeded: low >> (60 - 4 * UInt64(index))) & 15]
            }
            return 32
        }
    }

    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
