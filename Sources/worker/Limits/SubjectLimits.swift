import CLinux
import Common

/// A JWT key's limits counted per token subject (docs/rate-limits.md "JWT keys"): the subject's
/// slot in the key's `SubjectTable`, found by a digest of its `sub`.
struct SubjectLimits {
    let kid: String
    let limits: Configuration.Limits
    let table: SubjectTable
    let requests: SubjectRequestsTable?
    /// `<key_prefix>admissions:s:<kid>:` with `rate_limits.redis`.
    let redisPrefix: String?

    /// The subject's limits; nil when the table has no room for it (every probed slot is live):
    /// the request is then counted under the key's own limits, with the tokens without `sub`.
    func limitSet(subject: String, now: Int64) -> LimitSet? {
        let digest = Crypto.sha256(subject.utf8)
        guard
            let slot = table.slot(
                for: SubjectTable.Digest(sha256: digest), now: now, window: RateLimitStage.window, requests: requests)
        else { return nil }
        return LimitSet(
            limits: limits,
            requests: limits.requestsPerMinute == nil ? nil : requests?.log(slot: slot),
            inFlight: limits.maxInFlight == nil ? nil : table.inFlight(slot: slot),
            tokens: limits.tokensPerMinute == nil ? nil : table.tokens(slot: slot),
            redisKey: redisPrefix.map { Array(($0 + Self.hex(digest.prefix(16))).utf8) })
    }

    private static let digits = Array("0123456789abcdef".utf8)

    static func hex(_ bytes: ArraySlice<UInt8>) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(2 * bytes.count)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
