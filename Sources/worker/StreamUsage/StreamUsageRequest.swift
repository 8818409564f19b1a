/// What `stream_usage: inject` does to one request body (docs/usage.md "stream_usage: inject"):
/// a streaming OpenAI request (top-level `"stream": true`) that did not ask for usage gets
/// `stream_options.include_usage: true`, by the fewest bytes changed (`BodySplice`):
///
/// * no `stream_options` (or `null`): the member is added right after `stream`'s `true`, or
///   `null` is replaced;
/// * `stream_options` is an object without `include_usage`: the member is added first in it;
/// * `include_usage` is `false` or `null`: the value becomes `true`.
///
/// Anything else is left as it is: a request that is not streamed or asked already, a body that
/// is not one JSON object, a member named twice (which one the upstream takes is its own rule),
/// a `stream_options` or `include_usage` of another type (the upstream's to refuse).
enum StreamUsageRequest {
    enum Decision: Equatable {
        /// The edits to make; the usage-only chunk is then kept from the client.
        case inject([BodySplice.Edit])
        case unchanged(Reason)
    }

    enum Reason: Equatable {
        /// Not `"stream": true`.
        case notStreaming
        /// `include_usage: true` already: the client reads the usage chunk itself.
        case asked
        /// Not one JSON object, a member named twice, or a member of an unexpected type.
        case notEditable
    }

    static let member = #""stream_options":{"include_usage":true}"#

    /// The decision for a whole body.
    static func decide(_ bytes: UnsafeRawBufferPointer) -> Decision {
        let start = JSONObjectMembers.skipWhitespace(bytes, from: 0)
        guard start < bytes.count, case .object(let members, let close) = JSONObjectMembers.members(of: bytes, at: start),
            JSONObjectMembers.skipWhitespace(bytes, from: close + 1) == bytes.count
        else { return .unchanged(.notEditable) }
        let streams = members.filter { JSONObjectMembers.key(bytes, $0.key, is: "stream") }
        guard streams.count <= 1 else { return .unchanged(.notEditable) }
        guard let stream = streams.first, JSONObjectMembers.value(bytes, stream.value, is: "true") else {
            return .unchanged(.notStreaming)
        }
        let options = members.filter { JSONObjectMembers.key(bytes, $0.key, is: "stream_options") }
        guard options.count <= 1 else { return .unchanged(.notEditable) }
        guard let option = options.first else {
            return .inject([.init(inserting: "," + member, at: stream.value.upperBound)])
        }
        if JSONObjectMembers.value(bytes, option.value, is: "null") {
            return .inject([.init(replacing: option.value, with: #"{"include_usage":true}"#)])
        }
        return includeUsage(bytes, in: option.value)
    }

    /// `stream_options` is at `range`: its `include_usage` made `true`.
    private static func includeUsage(_ bytes: UnsafeRawBufferPointer, in range: Range<Int>) -> Decision {
        guard bytes[range.lowerBound] == UInt8(ascii: "{"),
            case .object(let members, _) = JSONObjectMembers.members(
                of: UnsafeRawBufferPointer(rebasing: bytes[..<range.upperBound]), at: range.lowerBound)
        else { return .unchanged(.notEditable) }
        let flags = members.filter { JSONObjectMembers.key(bytes, $0.key, is: "include_usage") }
        guard flags.count <= 1 else { return .unchanged(.notEditable) }
        guard let flag = flags.first else {
            let separator = members.isEmpty ? "" : ","
            return .inject([.init(inserting: #""include_usage":true"# + separator, at: range.lowerBound + 1)])
        }
        if JSONObjectMembers.value(bytes, flag.value, is: "true") { return .unchanged(.asked) }
        guard JSONObjectMembers.value(bytes, flag.value, is: "false") || JSONObjectMembers.value(bytes, flag.value, is: "null")
        else { return .unchanged(.notEditable) }
        return .inject([.init(replacing: flag.value, with: "true")])
    }
}
