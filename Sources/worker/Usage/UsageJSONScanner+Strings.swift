// The JSON scanner's strings: member names, kept values (escapes decoded), skipped and counted ones.

extension UsageJSONScanner {
    /// What a string's bytes are kept for.
    enum StringTarget: UInt8 {
        case skip, key, model, type
        /// Counted as a content delta when not empty.
        case content

        var keepsBytes: Bool { self == .key || self == .model || self == .type }
    }

    /// A member name whose closing quote is in `bytes` and that has no escape (nearly all):
    /// named from the input in place. Returns the index after the quote; nil for the general path.
    mutating func quickKey(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        let end = UsageByteScan.stringEnd(bytes, from: start)
        guard end < bytes.count, bytes[end] == 0x22 else { return nil }
        name(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
        state = .colon
        return end &+ 1
    }

    mutating func beginKey() {
        target = .key
        key.begin()
        state = .string
    }

    mutating func beginString(_ role: Role) {
        switch role {
        case .keep(let t):
            target = t
            switch t {
            case .model: document.model.begin()
            case .type: document.type.begin()
            case .skip, .key, .content: break
            }
        case .content:
            target = .content
        case .container, .count, .presence, .skip:
            target = .skip
        }
        stringNonEmpty = false
        highSurrogate = 0
        state = .string
    }

    /// Runs through a string's plain bytes at once; returns where it stopped.
    mutating func scanString(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        let i = UsageByteScan.stringEnd(bytes, from: start)
        let n = bytes.count
        if i > start {
            stringNonEmpty = true
            if target.keepsBytes {
                flushSurrogate()
                keep(UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
            }
        }
        guard i < n else { return i }
        switch bytes[i] {
        case 0x22: endString()
        case 0x5C: state = .escape
        default: state = .failed  // a raw control character (RFC 8259 §7)
        }
        return i &+ 1
    }

    mutating func keep(_ bytes: UnsafeRawBufferPointer) {
        switch target {
        case .key: key.append(bytes)
        case .model: document.model.append(bytes)
        case .type: document.type.append(bytes)
        case .skip, .content: break
        }
    }

    mutating func keep(_ byte: UInt8) {
        switch target {
        case .key: key.append(byte)
        case .model: document.model.append(byte)
        case .type: document.type.append(byte)
        case .skip, .content: break
        }
    }

    mutating func endString() {
        flushSurrogate()
        switch target {
        case .key:
            var kept = key  // (`withBytes` is mutating: a copy, so that `name` may change `self`)
            if kept.isComplete { kept.withBytes { name($0) } } else { top.member = .skip }
            state = .colon
            return
        case .content:
            if stringNonEmpty { document.contentDeltas &+= 1 }
        case .skip, .model, .type:
            break
        }
        valueEnded()
    }

    mutating func escape(_ b: UInt8) {
        stringNonEmpty = true
        let decoded: UInt8
        switch b {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded = b
        case UInt8(ascii: "b"): decoded = 0x08
        case UInt8(ascii: "f"): decoded = 0x0C
        case UInt8(ascii: "n"): decoded = 0x0A
        case UInt8(ascii: "r"): decoded = 0x0D
        case UInt8(ascii: "t"): decoded = 0x09
        case UInt8(ascii: "u"):
            unicode = 0
            unicodeDigits = 0
            state = .unicode
            return
        default:
            state = .failed
            return
        }
        flushSurrogate()
        keep(decoded)
        state = .string
    }

    mutating func unicodeDigit(_ b: UInt8) {
        let v: UInt8
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): v = b &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): v = b &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): v = b &- UInt8(ascii: "A") &+ 10
        default: state = .failed; return
        }
        unicode = unicode << 4 | UInt32(v)
        unicodeDigits &+= 1
        guard unicodeDigits == 4 else { return }
        state = .string
        guard target.keepsBytes else { return }
        switch unicode {
        case 0xD800...0xDBFF:
            flushSurrogate()
            highSurrogate = unicode
        case 0xDC00...0xDFFF where highSurrogate != 0:
            let scalar = 0x10000 &+ ((highSurrogate &- 0xD800) << 10) &+ (unicode &- 0xDC00)
            highSurrogate = 0
            keepScalar(scalar)
        default:
            flushSurrogate()
            keepScalar(unicode)
        }
    }

    /// A high surrogate not followed by a low one stands for U+FFFD, as in the SDKs' decoders.
    mutating func flushSurrogate() {
        guard highSurrogate != 0 else { return }
        highSurrogate = 0
        keepScalar(0xFFFD)
    }

    mutating func keepScalar(_ value: UInt32) {
        let scalar = Unicode.Scalar(value) ?? "\u{FFFD}"
        for unit in UTF8.encode(scalar)! { keep(unit) }
    }
}
