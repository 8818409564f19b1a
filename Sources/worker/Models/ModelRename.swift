import Common
import NIOCore

/// The rename of docs/routing-and-forwarding.md "Model routing": the one string literal of the
/// top-level `model` replaced by the upstream's name, written by the one escaper (`JSONText`);
/// every other byte of the body is copied unchanged (`BodySplice`).
enum ModelRename {
    /// `body` with the bytes at `literal` (a string literal, quotes included, as `ModelMember`
    /// found it) replaced by `name` as a JSON string.
    static func splice(_ body: ByteBuffer, literal: Range<Int>, with name: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        BodySplice.apply([.init(replacing: literal, with: JSONText.quoted(name))], to: body, allocator: allocator)
    }
}

/// The body of the proxy's own `GET /v1/models` (docs/routing-and-forwarding.md "Model
/// routing"): OpenAI's list format, or Anthropic's when the request carries `anthropic-version`.
/// `data` is always an array, `[]` when the key may use no model.
enum ModelListing {
    static func body(_ entries: [ModelTable.Entry], anthropic: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64 + entries.count * 96)
        if anthropic {
            out += #"{"data":["#.utf8
            for (n, entry) in entries.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                out += #"{"type":"model","id":"#.utf8
                JSONText.appendQuoted(entry.name, to: &out)
                out += #","display_name":"#.utf8
                JSONText.appendQuoted(entry.name, to: &out)
                out += #","created_at":"1970-01-01T00:00:00Z"}"#.utf8
            }
            out += #"],"has_more":false,"first_id":"#.utf8
            appendQuotedOrNull(entries.first?.name, to: &out)
            out += #","last_id":"#.utf8
            appendQuotedOrNull(entries.last?.name, to: &out)
            out.append(UInt8(ascii: "}"))
        } else {
            out += #"{"object":"list","data":["#.utf8
            for (n, entry) in entries.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                out += #"{"id":"#.utf8
                JSONText.appendQuoted(entry.name, to: &out)
                out += #","object":"model","created":0,"owned_by":"#.utf8
                JSONText.appendQuoted(entry.upstreamName, to: &out)
                out.append(UInt8(ascii: "}"))
            }
            out += "]}".utf8
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendQuotedOrNull(_ text: String?, to out: inout [UInt8]) {
        if let text { JSONText.appendQuoted(text, to: &out) } else { out += "null".utf8 }
    }
}
