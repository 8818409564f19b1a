import Common

/// `retry.on` as the exchange reads it (docs/routing-and-forwarding.md "Retries and failover"):
/// three flags and the statuses as bits, a trivial value, so that copying the exchange's settings
/// per request stays a plain copy (a `Set` in them made every copy go through value witnesses
/// and reference counting). Built once per route.
struct RetryRules: Equatable {
    var connect = true
    var timeout = false
    var reset = false
    /// Bit 0: 429; bit 1 + (s − 500): the status s from 500 to 599.
    private var low: UInt64 = 0
    private var high: UInt64 = 0

    init(_ conditions: Configuration.RetryConditions = Configuration.RetryConditions()) {
        connect = conditions.connect
        timeout = conditions.timeout
        reset = conditions.reset
        for status in conditions.statuses {
            guard let bit = Self.bit(UInt(status)) else { continue }
            if bit < 64 { low |= 1 << UInt64(bit) } else { high |= 1 << UInt64(bit - 64) }
        }
    }

    /// The status fails a try. Inlined: asked twice per response head of a route with `failover`.
    @inline(__always)
    func retries(status: UInt) -> Bool {
        guard let bit = Self.bit(status) else { return false }
        return bit < 64 ? low & (1 << UInt64(bit)) != 0 : high & (1 << UInt64(bit - 64)) != 0
    }

    @inline(__always)
    private static func bit(_ status: UInt) -> Int? {
        if status == 429 { return 0 }
        return (500...599).contains(status) ? 1 + Int(status - 500) : nil
    }
}
