import CHiredis
import NIOCore

/// One Redis reply, copied out of hiredis's reply object.
enum RedisReply: Equatable {
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8]?)
    case array([RedisReply])

    init(_ reply: UnsafeMutablePointer<redisReply>) {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STATUS: self = .status(Self.text(value))
        case REDIS_REPLY_ERROR: self = .error(Self.text(value))
        case REDIS_REPLY_INTEGER: self = .integer(Int64(value.integer))
        case REDIS_REPLY_NIL: self = .bulk(nil)
        case REDIS_REPLY_ARRAY:
            self = .array((0..<value.elements).map { RedisReply(value.element[$0]!) })
        default: self = .bulk(Self.bytes(value))
        }
    }

    private static func bytes(_ value: redisReply) -> [UInt8] {
        guard let str = value.str else { return [] }
        return Array(UnsafeRawBufferPointer(start: str, count: value.len))
    }

    private static func text(_ value: redisReply) -> String { String(decoding: bytes(value), as: UTF8.self) }

    var integerValue: Int64? {
        switch self {
        case .integer(let value): return value
        case .bulk(let bytes?): return Int64(String(decoding: bytes, as: UTF8.self))
        default: return nil
        }
    }
}

/// hiredis's RESP formatter and reader (Debian's libhiredis 0.14) over bytes the worker's NIO
/// channel moves: hiredis never touches a socket here.
enum RedisWire {
    /// The command as RESP bytes, appended to `buffer`.
    static func write(_ arguments: [[UInt8]], to buffer: inout ByteBuffer) {
        var pointers: [UnsafePointer<CChar>?] = []
        var lengths: [Int] = []
        let storage = arguments.map { bytes -> UnsafeMutablePointer<CChar> in
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
            bytes.withUnsafeBytes { raw in
                if let base = raw.baseAddress {
                    copy.withMemoryRebound(to: UInt8.self, capacity: bytes.count) {
                        $0.update(from: base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
                    }
                }
            }
            return copy
        }
        defer { storage.forEach { $0.deallocate() } }
        for (pointer, bytes) in zip(storage, arguments) {
            pointers.append(UnsafePointer(pointer))
            lengths.append(bytes.count)
        }
        var command: UnsafeMutablePointer<CChar>?
        let count = redisFormatCommandArgv(&command, Int32(arguments.count), &pointers, &lengths)
        guard count > 0, let command else { return }
        defer { redisFreeCommand(command) }
        buffer.writeBytes(UnsafeRawBufferPointer(start: command, count: Int(count)))
    }
}

/// A reply reader over one connection's bytes.
final class RedisReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init() { reader = redisReaderCreate() }
    deinit { redisReaderFree(reader) }

    /// Feeds `buffer` and hands every complete reply so far to `each` (hiredis's object, freed
    /// after `each` returns: nothing is copied unless `each` copies it); false when the stream is
    /// not RESP.
    func feed(_ buffer: ByteBuffer, _ each: (UnsafeMutablePointer<redisReply>) -> Void) -> Bool {
        let fed = buffer.withUnsafeReadableBytes { raw in
            redisReaderFeed(reader, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
        }
        guard fed == REDIS_OK else { return false }
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &reply) == REDIS_OK else { return false }
            guard let reply else { return true }
            each(reply.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(reply)
        }
    }

    /// As `feed(_:_:)`, but the integer replies (`:n` CRLF: a batch of one check's answer) that
    /// come while hiredis holds nothing unread are read here and handed to `integer`: hiredis
    /// copies the bytes, then `malloc`s and frees a reply object (~900 instructions a reply).
    /// hiredis is left the rest from the first other reply, or from an incomplete one, on.
    func feed(
        _ buffer: ByteBuffer, integer: (Int64) -> Void, each: (UnsafeMutablePointer<redisReply>) -> Void
    ) -> Bool {
        var buffer = buffer
        if holdsNothing {
            while buffer.readableBytes > 0, let (value, length) = Self.integer(buffer.readableBytesView) {
                buffer.moveReaderIndex(forwardBy: length)
                integer(value)
            }
            if buffer.readableBytes == 0 { return true }
        }
        return feed(buffer, each)
    }

    /// hiredis has no reply in progress and every byte fed was parsed: read.h's public fields, as
    /// hiredis 0.14 (Debian 12's libhiredis0.14) leaves them — `ridx` -1 before the first reply,
    /// then 0 with a root task whose type is not read yet (`redisReaderGetReply` sets it up
    /// before it finds no byte). `integerRepliesAreReadWithoutHiredisOnlyWhileHiredisHoldsNothing`
    /// fails if a hiredis leaves them otherwise (the fast path would silently stay off).
    private var holdsNothing: Bool {
        let value = reader.pointee
        guard value.pos == value.len else { return false }
        return value.ridx == -1 || (value.ridx == 0 && value.rstack.0.type == -1)
    }

    /// A complete `:n` CRLF at the start of `bytes`: its value and length.
    static func integer(_ bytes: ByteBufferView) -> (Int64, Int)? {
        var index = bytes.startIndex
        guard index < bytes.endIndex, bytes[index] == UInt8(ascii: ":") else { return nil }
        index += 1
        var negative = false
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        var value: Int64 = 0
        var digits = 0
        while index < bytes.endIndex, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9"), digits < 18 {
            value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
            digits += 1
            index += 1
        }
        guard digits > 0, index + 1 < bytes.endIndex, bytes[index] == 13, bytes[index + 1] == 10 else { return nil }
        return (negative ? -value : value, index + 2 - bytes.startIndex)
    }

    /// Every complete reply in the bytes fed so far, copied; nil when the stream is not RESP.
    func feed(_ buffer: ByteBuffer) -> [RedisReply]? {
        var replies: [RedisReply] = []
        return feed(buffer) { replies.append(RedisReply($0)) } ? replies : nil
    }
}
