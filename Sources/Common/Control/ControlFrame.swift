public enum ControlProtocolError: Error, Equatable, CustomStringConvertible {
    case frameTooLarge(Int)
    case malformed(String)
    case unsupportedVersion(Int)

    public var description: String {
        switch self {
        case .frameTooLarge(let n): return "control frame of \(n) bytes exceeds the limit of \(ControlFrame.maxPayload)"
        case .malformed(let why): return "malformed control frame: \(why)"
        case .unsupportedVersion(let v): return "unsupported control protocol version \(v)"
        }
    }
}

/// Framing of the control channel: a 4-byte big-endian length, then that many bytes of JSON
/// (written and read by ControlJSONEncoder/ControlJSONDecoder: neither executable loads Foundation).
public enum ControlFrame {
    /// A frame above this is a protocol error (a config is a few KiB; this only stops a runaway).
    public static let maxPayload = 16 * 1024 * 1024

    public static func encode(_ message: ControlMessage) throws -> [UInt8] {
        let payload = try ControlJSONEncoder().encode(message)
        guard payload.count <= maxPayload else { throw ControlProtocolError.frameTooLarge(payload.count) }
        let n = UInt32(payload.count)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + payload
    }
}

/// Reassembles frames from a byte stream split anywhere (a read may end mid-length or mid-JSON,
/// or carry several frames).
public struct ControlFrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0

    public init() {}

    public mutating func feed<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete message, nil when more bytes are needed. After an error the stream is
    /// unusable: the caller closes the channel.
    public mutating func next() throws -> ControlMessage? {
        let available = buffer.count - start
        guard available >= 4 else { return nil }
        let length = Int(buffer[start]) << 24 | Int(buffer[start + 1]) << 16 | Int(buffer[start + 2]) << 8 | Int(buffer[start + 3])
        guard length <= ControlFrame.maxPayload else { throw ControlProtocolError.frameTooLarge(length) }
        guard available >= 4 + length else { return nil }
        let message: ControlMessage
        do {
            message = try ControlJSONDecoder().decode(ControlMessage.self, from: buffer[(start + 4)..<(start + 4 + length)])
            start += 4 + length
        } catch {
            throw ControlProtocolError.malformed(Self.explain(error))
        }
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 64 * 1024 {
            buffer.removeFirst(start)
            start = 0
        }
        guard message.v == 1 else { throw ControlProtocolError.unsupportedVersion(message.v) }
        return message
    }

    /// Where and why, never what: the standard library's RawRepresentable decoding puts the
    /// offending string into its message, and a misplaced value could be a provider key.
    static func explain(_ error: any Error) -> String {
        switch error {
        case let error as JSONParseError:
            return "not JSON: \(error)"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
            DecodingError.keyNotFound(_, let context):
            return "\(context.debugDescription) at \(path(context.codingPath))"
        case DecodingError.dataCorrupted(let context):
            return "invalid value at \(path(context.codingPath))"
        default:
            return "undecodable message"
        }
    }

    private static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.isEmpty ? "the top level" : codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }
}
