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
    /// `NOSCRIPT`): its length is computed first and the bytes stored in one reservation of the
    /// buffer (a ByteBuffer write per piece was 6,500 instructions per check).
    func write(sha: [UInt8]?, to buffer: inout ByteBuffer) {
        let window = UInt64(RateLimitStage.window / 1000)
        let two = keys.count > 1
        let memberLength = memberPrefix.count + Self.digits(sequence)
        let count = UInt64(3 + 2 * keys.count + 2)
        var total = 3 + Self.digits(count)
        total += Self.bulkLength(sha == nil ? 4 : 7) + Self.bulkLength(sha?.count ?? RedisScript.bytes.count)
        total += Self.bulkLength(Self.digits(UInt64(keys.count)))
        for key in keys { total += Self.bulkLength(key.count) }
        total += Self.bulkLength(Self.digits(window)) + Self.bulkLength(Self.digits(UInt64(limits.0)))
        if two { total += Self.bulkLength(Self.digits(UInt64(limits.1))) }
        total += Self.bulkLength(memberLength)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { raw in
            var out = RESPOut(base: raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
            out.byte(UInt8(ascii: "*"))
            out.decimal(count)
            out.crlf()
            if let sha {
                out.bulk(Self.evalsha)
                out.bulk(sha)
            } else {
                out.bulk(Self.eval)
                out.bulk(RedisScript.bytes)
            }
            out.bulkDecimal(UInt64(keys.count))
            for key in keys { out.bulk(key) }
            out.bulkDecimal(window)
            out.bulkDecimal(UInt64(limits.0))
            if two { out.bulkDecimal(UInt64(limits.1)) }
            out.header(memberLength)
            out.bytes(memberPrefix)
            out.decimal(sequence)
            out.crlf()
            return out.offset
        }
    }

    private static let evalsha = Array("EVALSHA".utf8)
    private static let eval = Array("EVAL".utf8)

    /// `$len CRLF bytes CRLF`.
    private static func bulkLength(_ length: Int) -> Int { 1 + digits(UInt64(length)) + 2 + length + 2 }

    static func digits(_ value: UInt64) -> Int {
        var count = 1
        var rest = value / 10
        while rest > 0 {
            count += 1
            rest /= 10
        }
        return count
    }
}

/// Bytes stored at a pointer into reserved space (the length was computed before).
private struct RESPOut {
    let base: UnsafeMutablePointer<UInt8>
    var offset = 0

    mutating func byte(_ value: UInt8) {
        base[offset] = value
        offset += 1
    }

    mutating func crlf() {
        byte(13)
        byte(10)
    }

    mutating func bytes(_ value: [UInt8]) {
        value.withUnsafeBufferPointer { source in
            guard let from = source.baseAddress else { return }
            (base + offset).update(from: from, count: source.count)
        }
        offset += value.count
    }

    mutating func decimal(_ value: UInt64) {
        let count = RedisCheckCommand.digits(value)
        var rest = value
        for index in stride(from: count - 1, through: 0, by: -1) {
            base[offset + index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        }
        offset += count
    }

    mutating func header(_ length: Int) {
        byte(UInt8(ascii: "$"))
        decimal(UInt64(length))
        crlf()
    }

    mutating func bulk(_ value: [UInt8]) {
        header(value.count)
        bytes(value)
        crlf()
    }

    mutating func bulkDecimal(_ value: UInt64) {
        header(RedisCheckCommand.digits(value))
        decimal(value)
        crlf()
    }
}
