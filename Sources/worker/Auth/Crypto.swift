import COpenSSL

/// The few primitives authentication needs, on the system's libcrypto (OpenSSL 3).
/// No swift-crypto: the project links Debian's OpenSSL only (see notes/swift-on-these-machines.md).
enum Crypto {
    static let sha256Length = 32

    /// HMAC-SHA256 of `message` under `key`. The one-shot `HMAC()` is not deprecated in OpenSSL 3.
    static func hmacSHA256<Key: Collection<UInt8>, Message: Collection<UInt8>>(
        key: Key, message: Message
    ) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: sha256Length)
        var outLength: UInt32 = 0
        let result = withNonNullPointer(Array(key)) { k, kCount in
            withNonNullPointer(Array(message)) { m, mCount in
                out.withUnsafeMutableBufferPointer { o in
                    HMAC(sha256MD, k, Int32(kCount), m, mCount, o.baseAddress, &outLength)
                }
            }
        }
        precondition(result != nil && outLength == UInt32(sha256Length), "HMAC-SHA256 failed in libcrypto")
        return out
    }

    /// SHA-256 digest, used to compare static keys in constant time whatever their lengths.
    static func sha256<Bytes: Collection<UInt8>>(_ data: Bytes) -> [UInt8] {
        if let digest = data.withContiguousStorageIfAvailable({ sha256(UnsafeRawBufferPointer($0)) }) { return digest }
        return Array(data).withUnsafeBytes { sha256($0) }
    }

    static func sha256(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var zero: UInt8 = 0
        return withUnsafeMutablePointer(to: &zero) { nonNull in
            [UInt8](unsafeUninitializedCapacity: sha256Length) { out, initialized in
                var outLength: UInt32 = 0
                let rc = EVP_Digest(bytes.baseAddress ?? UnsafeRawPointer(nonNull), bytes.count, out.baseAddress, &outLength, sha256MD, nil)
                precondition(rc == 1 && outLength == UInt32(sha256Length), "SHA-256 failed in libcrypto")
                initialized = sha256Length
            }
        }
    }

    /// Fetched once, for digests and HMACs. With `EVP_sha256()` each would look the implementation
    /// up in OpenSSL 3's provider registry again (an "implicit fetch": locks and a property query),
    /// which cost more than hashing a key (a client key or a JWT is checked on every request). A fetched `EVP_MD`
    /// is immutable and may be shared by threads.
    nonisolated(unsafe) private static let sha256MD: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "SHA256", nil) else { preconditionFailure("libcrypto has no SHA256") }
        return md
    }()

    /// OpenSSL wants a non-null pointer even for zero bytes; an empty Swift array may have none.
    private static func withNonNullPointer<R>(_ bytes: [UInt8], _ body: (UnsafePointer<UInt8>, Int) -> R) -> R {
        if bytes.isEmpty {
            var zero: UInt8 = 0
            return withUnsafePointer(to: &zero) { body($0, 0) }
        }
        return bytes.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }

    /// Equality whose running time depends only on the lengths, never on where the bytes differ
    /// (`CRYPTO_memcmp`). Different lengths compare unequal at once: callers compare fixed-size
    /// digests or MACs, so the length is not a secret.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in CRYPTO_memcmp(pa.baseAddress, pb.baseAddress, a.count) == 0 }
        }
    }
}
