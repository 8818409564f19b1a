import Common

/// Verifies HS256 JSON Web Tokens exactly as docs/authentication.md "JWT (HS256)" specifies, with no leeway:
/// `alg` = `HS256`, `typ` = `JWT`, `kid` naming a configured key, HMAC-SHA256 signature compared
/// in constant time, payload an object, integer `exp` with `now < exp`, integer `nbf` with
/// `now >= nbf`, and no `aud` at all. Built once per configuration snapshot.
struct JWTVerifier: Sendable {
    /// Why a token was rejected. Never shown to the client (every failure is the same 401);
    /// it exists for tests and debugging.
    enum Rejection: Error, Equatable {
        case notThreeParts
        case malformedHeader
        case unsupportedAlgorithm
        case wrongType
        case unknownKeyID
        case badSignature
        case malformedPayload
        case malformedTimeClaim
        case expired
        case notYetValid
        case audiencePresent
    }

    private let keys: [String: [UInt8]]

    init(keys: [Configuration.JWTKey]) {
        var table: [String: [UInt8]] = [:]
        // Validation guarantees unique ids; should a duplicate slip through, the first wins.
        for key in keys where table[key.id] == nil { table[key.id] = Array(key.key.value.utf8) }
        self.keys = table
    }

    var isEmpty: Bool { keys.isEmpty }

    /// A verified token: the `kid` of the key that verified it, and its `sub` claim when that is
    /// a string (what JWT limits count by: docs/rate-limits.md "JWT keys").
    struct Verified: Equatable {
        var kid: String
        var subject: String?
    }

    func verify(_ token: Substring, now: Int64) -> Result<Verified, Rejection> {
        let utf8 = token.utf8
        guard let firstDot = utf8.firstIndex(of: UInt8(ascii: ".")),
            let secondDot = utf8[utf8.index(after: firstDot)...].firstIndex(of: UInt8(ascii: ".")),
            !utf8[utf8.index(after: secondDot)...].contains(UInt8(ascii: "."))
        else { return .failure(.notThreeParts) }

        let headerPart = token[token.startIndex..<firstDot]
        let payloadPart = token[token.index(after: firstDot)..<secondDot]
        let signaturePart = token[token.index(after: secondDot)...]

        guard let headerBytes = Base64URL.decode(headerPart.utf8), let header = Self.object(headerBytes)
        else { return .failure(.malformedHeader) }
        guard header["alg"] == .string("HS256") else { return .failure(.unsupportedAlgorithm) }
        guard header["typ"] == .string("JWT") else { return .failure(.wrongType) }
        guard case .string(let kid)? = header["kid"], let key = keys[kid] else {
            return .failure(.unknownKeyID)
        }

        // The signature covers the two encoded parts exactly as sent (RFC 7515 §5.2).
        let signingInput = utf8[utf8.startIndex..<secondDot]
        guard let signature = Base64URL.decode(signaturePart.utf8),
            Crypto.constantTimeEquals(Crypto.hmacSHA256(key: key, message: signingInput), signature)
        else { return .failure(.badSignature) }

        guard let payloadBytes = Base64URL.decode(payloadPart.utf8), let claims = Self.object(payloadBytes)
        else { return .failure(.malformedPayload) }
        if claims["aud"] != nil { return .failure(.audiencePresent) }
        if let exp = claims["exp"] {
            guard let expiry = exp.int64Value else { return .failure(.malformedTimeClaim) }
            guard now < expiry else { return .failure(.expired) }
        }
        if let nbf = claims["nbf"] {
            guard let notBefore = nbf.int64Value else { return .failure(.malformedTimeClaim) }
            guard now >= notBefore else { return .failure(.notYetValid) }
        }
        guard case .string(let subject)? = claims["sub"] else { return .success(Verified(kid: kid, subject: nil)) }
        return .success(Verified(kid: kid, subject: subject))
    }

    /// A header or claim set: one JSON object (Common's strict parser: duplicate members, and so
    /// two `exp` claims, are rejected). Numbers keep their text, so `exp` must be written as an
    /// integer (`1700000000`, not `1.7e9` or `1700000000.0`).
    private static func object(_ bytes: [UInt8]) -> JSONObject? {
        (try? JSONParser.parse(bytes))?.objectValue
    }
}
