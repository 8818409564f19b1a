import COpenSSL
import Foundation

/// Makes HS256 tokens for tests (and deliberately broken ones), signing with the system OpenSSL.
public enum TestJWT {
    public static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func hmacSHA256(key: String, message: String) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let keyBytes = Array(key.utf8), messageBytes = Array(message.utf8)
        _ = HMAC(EVP_sha256(), keyBytes, Int32(keyBytes.count), messageBytes, messageBytes.count, &out, &length)
        return out
    }

    /// `header` and `payload` are JSON texts; the signature is computed over them with `key`.
    public static func make(header: String, payload: String, key: String) -> String {
        let signingInput = base64URL(Array(header.utf8)) + "." + base64URL(Array(payload.utf8))
        return signingInput + "." + base64URL(hmacSHA256(key: key, message: signingInput))
    }

    public static func make(kid: String, key: String, claims: String = "{}") -> String {
        make(header: "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"\(kid)\"}", payload: claims, key: key)
    }

    public static var now: Int { Int(Date().timeIntervalSince1970) }
}
