/// The bytes of a `/metrics` answer as they are written: strings appended as UTF-8, integers
/// written digit by digit (no String per number). What lets a scrape of 10,000 series render in
/// a few milliseconds (docs/performance.md "Rendering /metrics").
public struct MetricsText {
    public var bytes: [UInt8] = []

    public init(capacity: Int) { bytes.reserveCapacity(capacity) }

    @inline(__always) public static func += (text: inout MetricsText, string: String) {
        text.bytes.append(contentsOf: string.utf8)
    }

    @inline(__always) mutating func append(_ string: StaticString) {
        string.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    @inline(__always) mutating func append(_ name: [UInt8]) { bytes.append(contentsOf: name) }

    /// A decimal integer, as the text format writes counters.
    mutating func append(_ value: Int64) {
        if value < 0 {
            bytes.append(0x2D)
            append(UInt64(0) &- UInt64(bitPattern: value))
        } else {
            append(UInt64(value))
        }
    }

    mutating func append(_ value: UInt64) {
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes of room, 20 needed
        withUnsafeMutableBytes(of: &digits) { room in
            var index = room.count
            var rest = value
            repeat {
                index -= 1
                room[index] = UInt8(truncatingIfNeeded: 0x30 &+ rest % 10)
                rest /= 10
            } while rest != 0
            bytes.append(contentsOf: room[index...])
        }
    }
}
