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

    /// Every complete reply in the bytes fed so far, copied; nil when the stream is not RESP.
    func feed(_ buffer: ByteBuffer) -> [RedisReply]? {
        var replies: [RedisReply] = []
        return feed(buffer) { replies.append(RedisReply($0)) } ? replies : nil
    }
}
