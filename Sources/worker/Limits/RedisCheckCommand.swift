import NIOCore

/// One check's `EVALSHA` (docs/rate-limits.md "Across hosts"), written straight into the
/// connection's outgoing buffer as RESP: an array of bulk strings (`*n`, then `$len` and the
/// bytes of each, every line ending in CRLF). hiredis's `redisFormatCommandArgv` would do the
/// same, but needs a C string and a length per argument and `malloc`s the command it returns:
/// per check that was 2 + 2n allocations and three copies of every byte (the worker's
/// instructions per Redis-backed request: docs/performance.md "Rate limits"). The connection's
/// own commands still go through hiredis, and every reply is read by hiredis.
struct RedisCheckCommand {
    /// The Redis keys of the request's limits (`<key_prefix>requests:…`, made per configuration).
    var keys: [[UInt8]]
    var limits: (UInt32, UInt32)
    /// A prefix unique to this worker process and a sequence number: the admission's member.
    var memberPrefix: [UInt8]
    var sequence: UInt64

    /// `EVALSHA sha n keys… window limits… member`, or `EVAL script …` when `sha` is nil (after
    /// `NOSCRIPT`).
    func write(sha: [UInt8]?, to buffer: inout ByteBuffer) {
        let count = 3 + 2 * keys.count + 2
        buffer.writeStaticString("*")
        Self.writeDecimal(UInt64(count), to: &buffer)
        buffer.writeStaticString("\r\n")
        if let sha {
            Self.writeBulk("EVALSHA", to: &buffer)
            Self.writeBulk(sha, to: &buffer)
        } else {
            Self.writeBulk("EVAL", to: &buffer)
            Self.writeBulk(RedisScript.bytes, to: &buffer)
        }
        Self.writeBulkDecimal(UInt64(keys.count), to: &buffer)
        for key in keys { Self.writeBulk(key, to: &buffer) }
        Self.writeBulkDecimal(UInt64(RateLimitStage.window / 1000), to: &buffer)
        Self.writeBulkDecimal(UInt64(limits.0), to: &buffer)
        if keys.count > 1 { Self.writeBulkDecimal(UInt64(limits.1), to: &buffer) }
        buffer.writeStaticString("$")
        Self.writeDecimal(UInt64(memberPrefix.count + Self.digits(sequence)), to: &buffer)
        buffer.writeStaticString("\r\n")
        buffer.writeBytes(memberPrefix)
        Self.writeDecimal(sequence, to: &buffer)
        buffer.writeStaticString("\r\n")
    }

    private static func writeBulk(_ text: StaticString, to buffer: inout ByteBuffer) {
        buffer.writeStaticString("$")
        writeDecimal(UInt64(text.utf8CodeUnitCount), to: &buffer)
        buffer.writeStaticString("\r\n")
        buffer.writeStaticString(text)
        buffer.writeStaticString("\r\n")
    }

    private static func writeBulk(_ bytes: [UInt8], to buffer: inout ByteBuffer) {
        buffer.writeStaticString("$")
        writeDecimal(UInt64(bytes.count), to: &buffer)
        buffer.writeStaticString("\r\n")
        buffer.writeBytes(bytes)
        buffer.writeStaticString("\r\n")
    }

    private static func writeBulkDecimal(_ value: UInt64, to buffer: inout ByteBuffer) {
        buffer.writeStaticString("$")
        writeDecimal(UInt64(digits(value)), to: &buffer)
        buffer.writeStaticString("\r\n")
        writeDecimal(value, to: &buffer)
        buffer.writeStaticString("\r\n")
    }

    static func digits(_ value: UInt64) -> Int {
        var count = 1
        var rest = value / 10
        while rest > 0 {
            count += 1
            rest /= 10
        }
        return count
    }

    static func writeDecimal(_ value: UInt64, to buffer: inout ByteBuffer) {
        let count = digits(value)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            var rest = value
            for index in stride(from: count - 1, through: 0, by: -1) {
                raw[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            return count
        }
    }
}
