import NIOCore

/// One request's requests limits to check in Redis: its key's, its upstream's, or both (the
/// Redis key names are the `LimitSet`s', made once per configuration: only references here).
struct RedisCheckCommand {
    var first: [UInt8]
    var firstLimit: UInt32
    var second: [UInt8]?
    var secondLimit: UInt32 = 0
}

/// The checks of one event-loop tick, as one `EVALSHA` of `RedisScript` (docs/rate-limits.md
/// "Across hosts"): one round trip and one script run for all of them, each still checked on its
/// own, in order, as if it were alone. A pure value: the client adds checks, writes the batch and
/// reads its reply with `outcome(_:)`.
///
/// The command: `EVALSHA sha K key… window expiry limit… code…`: the batch's distinct keys, the
/// window (µs), how long an admitted key is kept (ms: the window and a second), their limits in
/// the same order, then one code per check, its first key's position (1-based) plus 256 × its
/// second's (0: none). The reply: one integer per check (an array; the integer alone for a batch
/// of one), 0 admitted, else 2 × µs until a place frees, plus 1 when the check's second key
/// refused.
struct RedisCheckBatch {
    /// Checks per command at most: a larger tick goes out as several commands (one script run
    /// blocks Redis for its length, and Lua's `unpack` is bounded).
    static let maxChecks = 256
    /// Distinct keys per command at most (a code holds a key's position in one byte).
    static let maxKeys = 255

    private(set) var keys: [[UInt8]] = []
    private(set) var limits: [UInt32] = []
    private(set) var codes: [UInt32] = []

    var count: Int { codes.count }
    var isEmpty: Bool { codes.isEmpty }

    /// Adds `check`; false when it does not fit (the batch is full, or one of its keys is in with
    /// another limit: a reload changed it) and this batch must go first. Keys are found by a
    /// linear search: a tick's checks name few keys (a key's and an upstream's), and `==` of one
    /// array storage (every check of a key shares its `LimitSet`'s) is one comparison.
    mutating func add(_ check: RedisCheckCommand) -> Bool {
        guard codes.count < Self.maxChecks else { return false }
        let first = keys.firstIndex(of: check.first)
        var second: Int?
        if let key = check.second { second = keys.firstIndex(of: key) }
        if let first, limits[first] != check.firstLimit { return false }
        if let second, limits[second] != check.secondLimit { return false }
        let new = (first == nil ? 1 : 0) + (check.second != nil && second == nil ? 1 : 0)
        guard keys.count + new <= Self.maxKeys else { return false }
        var code = UInt32(first.map { $0 + 1 } ?? append(check.first, check.firstLimit))
        if let key = check.second { code |= UInt32(second.map { $0 + 1 } ?? append(key, check.secondLimit)) << 8 }
        codes.append(code)
        return true
    }

    /// The new key's 1-based position.
    private mutating func append(_ key: [UInt8], _ limit: UInt32) -> Int {
        keys.append(key)
        limits.append(limit)
        return keys.count
    }

    mutating func removeAll() {
        keys.removeAll(keepingCapacity: true)
        limits.removeAll(keepingCapacity: true)
        codes.removeAll(keepingCapacity: true)
    }

    enum Outcome: Equatable {
        case admitted
        /// The check's limit at `index` (0: its first, 1: its second) is full; a place frees in
        /// `waitMicroseconds`.
        case refused(index: Int, waitMicroseconds: Int64)
    }

    /// One check's answer in the batch's reply.
    static func outcome(_ value: Int64) -> Outcome {
        value <= 0 ? .admitted : .refused(index: Int(value & 1), waitMicroseconds: value >> 1)
    }

    /// `EVALSHA …`, or `EVAL script …` when `sha` is nil (after `NOSCRIPT`), as RESP: an array of
    /// bulk strings (`*n`, then `$len` and the bytes of each, every line ending in CRLF) stored in
    /// one reservation of the buffer, its length computed first. hiredis's formatter would make
    /// the same bytes but needs a C string per argument and `malloc`s the command (per check that
    /// was 2 + 2n allocations and three copies of every byte; a ByteBuffer write per piece, 6,500
    /// instructions per check: docs/performance.md "Rate limits").
    func write(sha: [UInt8]?, to buffer: inout ByteBuffer) {
        let window = UInt64(RateLimitStage.window / 1000)
        let count = UInt64(3 + 2 * keys.count + 2 + codes.count)
        var total = 3 + Self.digits(count)
        total += Self.bulkLength(sha == nil ? 4 : 7) + Self.bulkLength(sha?.count ?? RedisScript.bytes.count)
        total += Self.bulkLength(Self.digits(UInt64(keys.count)))
        for key in keys { total += Self.bulkLength(key.count) }
        total += Self.bulkLength(Self.digits(window)) + Self.bulkLength(Self.digits(Self.expiry))
        for limit in limits { total += Self.bulkLength(Self.digits(UInt64(limit))) }
        for code in codes { total += Self.bulkLength(Self.digits(UInt64(code))) }
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
            out.bulkDecimal(Self.expiry)
            for limit in limits { out.bulkDecimal(UInt64(limit)) }
            for code in codes { out.bulkDecimal(UInt64(code)) }
            return out.offset
        }
    }

    /// How long Redis keeps a key after an admission (ms): the window, and a second for the
    /// clocks of a script's commands (`PEXPIRE` counts from its own instant, after `TIME`'s).
    static let expiry = UInt64(RateLimitStage.window / 1_000_000 + 1000)

    /// A batch of one check as it was written with a script's sha, kept by the client: at low
    /// concurrency every tick is one check, most of them of the same key and limit, and their
    /// commands are the same bytes. Its own storage (never a slice of the connection's buffer,
    /// which would then be copied at its next write).
    struct Written {
        fileprivate let keys: ([UInt8], [UInt8]?)
        fileprivate let limits: (UInt32, UInt32)
        fileprivate let code: UInt32
        fileprivate let sha: [UInt8]
        fileprivate let bytes: ByteBuffer
    }

    /// As `write(sha:to:)`, but a batch of one check that `last` wrote already is copied from it
    /// (the RESP of a one-key batch was ~1,400 instructions; `==` of the key and sha arrays is
    /// one comparison of their storage), and `last` becomes a new batch of one.
    func write(sha: [UInt8]?, to buffer: inout ByteBuffer, reusing last: inout Written?) {
        guard codes.count == 1, let sha else { return write(sha: sha, to: &buffer) }
        let second = keys.count > 1 ? keys[1] : nil
        if let last, last.code == codes[0], last.keys.0 == keys[0], last.keys.1 == second, last.limits.0 == limits[0],
            last.limits.1 == (second == nil ? 0 : limits[1]), last.sha == sha
        {
            buffer.writeImmutableBuffer(last.bytes)
            return
        }
        let start = buffer.writerIndex
        write(sha: sha, to: &buffer)
        var bytes = ByteBufferAllocator().buffer(capacity: buffer.writerIndex - start)
        bytes.writeImmutableBuffer(buffer.getSlice(at: start, length: buffer.writerIndex - start)!)
        last = Written(
            keys: (keys[0], second), limits: (limits[0], second == nil ? 0 : limits[1]), code: codes[0], sha: sha,
            bytes: bytes)
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
        let count = RedisCheckBatch.digits(value)
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
        header(RedisCheckBatch.digits(value))
        decimal(value)
        crlf()
    }
}
