/// The one JSON string escaper: control frames (`JSONValue.serialized`), log lines in both
/// formats (`LogLineFormatter`, `LogLineBuilder`) and the proxy's own error bodies write their
/// strings through it.
///
/// The rule: `"` and `\` are escaped, `\n`, `\r`, `\t` get their short escapes, every other
/// C0 control character and DEL (0x7F) becomes `\u00XX` (lowercase hex); everything else is
/// copied as UTF-8. RFC 8259 §7 requires escaping only `"`, `\` and U+0000–U+001F; DEL is
/// escaped as well because these strings end up in log lines read on terminals (DEL is a
/// terminal control character, and a log line should carry none raw), and `\u007f` reads back as
/// DEL with any JSON parser, so control frames still round-trip every string exactly.
public enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    public static func quoted(_ text: String) -> String {
        var text = text
        return text.withUTF8 { bytes in
            if bytes.allSatisfy(isPlain) {
                return String(unsafeUninitializedCapacity: bytes.count + 2) { out in
                    out[0] = UInt8(ascii: "\"")
                    _ = UnsafeMutableBufferPointer(rebasing: out[1...]).initialize(from: bytes)
                    out[bytes.count + 1] = UInt8(ascii: "\"")
                    return bytes.count + 2
                }
            }
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count + 16)
            appendQuoted(bytes, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// Appends `text` as a JSON string literal, quotes included, to `out`.
    public static func appendQuoted(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { appendQuoted($0, to: &out) }
    }

    /// Appends the UTF-8 `bytes` (valid UTF-8: a Swift string's) as a JSON string literal.
    public static func appendQuoted(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in bytes {
            if isPlain(byte) {
                out.append(byte)
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): out += #"\""#.utf8
            case UInt8(ascii: "\\"): out += #"\\"#.utf8
            case UInt8(ascii: "\n"): out += #"\n"#.utf8
            case UInt8(ascii: "\r"): out += #"\r"#.utf8
            case UInt8(ascii: "\t"): out += #"\t"#.utf8
            default:
                out += #"\u00"#.utf8
                out.append(hexDigit(byte >> 4))
                out.append(hexDigit(byte & 0xF))
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// A byte the escaper copies unchanged: what a caller may copy itself between quotes.
    @inline(__always)
    public static func isPlain(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte != 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\")
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
