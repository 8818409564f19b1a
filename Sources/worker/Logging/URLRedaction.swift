#if canImport(Glibc)
import Glibc
#endif
import Common

/// What a request line may show of a URL (docs/security.md "What is never logged"): the
/// `request_url` and `target_url` of `RequestLogRecord` go through `redactingCredentials`.
///
/// * Userinfo (`http://user:secret@host/…`) becomes `REDACTED`. Such a request is refused with
///   400 before it goes anywhere (RFC 9110 §4.2.4, `RequestPreflight`), but its line is written.
/// * The value of a query parameter whose name conventionally carries a credential (Google's
///   `?key=`, signed URLs' `sig=`, OAuth's `access_token=`) becomes `REDACTED`. Names are compared
///   percent-decoded and case-insensitively, as the upstream reads them: `k%65y` is `key`.
///
/// Everything else is kept as Fluxgate logs it. Only the log line is redacted; the upstream gets
/// the target unchanged.
enum URLRedaction {
    /// Query parameter names (percent-decoded, lower-cased) whose values are credentials.
    static let credentialParameters: Set<[UInt8]> = Set(
        [
            "key", "api_key", "apikey", "api-key", "access_token", "token", "auth", "sig", "signature",
            "secret", "password", "client_secret", "x-amz-signature", "x-goog-signature", "code",
        ].map { Array($0.utf8) })

    /// A name longer than this, even fully percent-encoded, is none of `credentialParameters`.
    private static let longestEncodedName = 3 * (credentialParameters.map(\.count).max() ?? 0)

    /// `mayHaveUserinfo` false for a URL the proxy made itself (`target_url`: a configured origin,
    /// which cannot have userinfo, and the client's path).
    static func redactingCredentials(_ url: String, mayHaveUserinfo: Bool = true) -> String {
        var url = url
        let redacted = url.withUTF8 { redacting(UnsafeRawBufferPointer($0), mayHaveUserinfo: mayHaveUserinfo) }
        return redacted.map { String(decoding: $0, as: UTF8.self) } ?? url
    }

    /// The redacted bytes, or nil when nothing needs redacting (almost always: one `memchr` for
    /// `?`; a byte loop cost ~700 instructions per logged request).
    static func redacting(_ url: UnsafeRawBufferPointer, mayHaveUserinfo: Bool = true) -> [UInt8]? {
        let userinfo = mayHaveUserinfo ? RequestTarget.userinfo(in: url) : nil
        let afterUserinfo = userinfo?.upperBound ?? 0
        let question =
            afterUserinfo < url.count
            ? memchr(url.baseAddress! + afterUserinfo, Int32(UInt8(ascii: "?")), url.count - afterUserinfo)
                .map { url.baseAddress!.distance(to: UnsafeRawPointer($0)) }
            : nil
        guard userinfo != nil || question != nil else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(url.count + 8)
        var changed = false
        var next = 0
        if let userinfo {
            out += url[..<userinfo.lowerBound]
            out += redactedText
            next = userinfo.upperBound
            changed = true
        }
        guard let question else { return out + url[next...] }
        out += url[next...question]
        var start = question + 1
        while start <= url.count {
            let end = url[start...].firstIndex(of: UInt8(ascii: "&")) ?? url.count
            if let equals = url[start..<end].firstIndex(of: UInt8(ascii: "=")), isCredential(url[start..<equals]) {
                out += url[start...equals]
                out += redactedText
                changed = true
            } else {
                out += url[start..<end]
            }
            if end < url.count { out.append(UInt8(ascii: "&")) }
            start = end + 1
        }
        return changed ? out : nil
    }

    private static let redactedText = Array("REDACTED".utf8)

    /// The parameter name percent-decoded (`%XX`; a `%` without two hex digits stays) and
    /// lower-cased (ASCII), looked up in `credentialParameters`.
    static func isCredential(_ name: Slice<UnsafeRawBufferPointer>) -> Bool {
        guard !name.isEmpty, name.count <= longestEncodedName else { return false }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(name.count)
        var i = name.startIndex
        while i < name.endIndex {
            var byte = name[i]
            if byte == UInt8(ascii: "%"), name.endIndex - i >= 3,
                let high = name[i + 1].hexDigitValue, let low = name[i + 2].hexDigitValue
            {
                byte = high << 4 | low
                i += 3
            } else {
                i += 1
            }
            decoded.append(ASCIIBytes.lower(byte))
        }
        return credentialParameters.contains(decoded)
    }

}
