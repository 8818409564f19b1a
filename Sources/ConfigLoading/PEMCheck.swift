import Common
import COpenSSL

/// What the loader checks about TLS files (docs/configuration.md "Validation", applied to
/// `server.tls` and `tls_ca_file`): that they parse as PEM and that the private key belongs to the
/// certificate. Parses with the same OpenSSL the worker uses, so a file accepted here loads there.
/// Messages never contain file contents (a private key is a secret).
enum PEMCheck {
    enum Problem: Error, Equatable {
        case noCertificate(reason: String)
        case noPrivateKey(reason: String)
        case keyMismatch
    }

    /// Number of certificates in `pem` (at least one), or why there are none.
    static func certificateCount(_ pem: [UInt8]) -> Result<Int, Problem> {
        ERR_clear_error()
        defer { ERR_clear_error() }
        return withBIO(pem) { bio in
            var count = 0
            while let x509 = PEM_read_bio_X509(bio, nil, nil, nil) {
                X509_free(x509)
                count += 1
            }
            // The loop always ends with an error on the queue: "no start line" just means no
            // further block; anything else is a block that did not parse.
            let last = ERR_peek_last_error()
            if last != 0, fluxgate_ERR_is_pem_no_start_line(last) == 0 {
                return .failure(.noCertificate(reason: reasonText(last)))
            }
            return count > 0 ? .success(count) : .failure(.noCertificate(reason: "no PEM certificate found"))
        }
    }

    /// Checks that `keyPEM` holds a private key for the first certificate of `certificatePEM`.
    static func checkKey(_ keyPEM: [UInt8], matches certificatePEM: [UInt8]) -> Result<Void, Problem> {
        ERR_clear_error()
        defer { ERR_clear_error() }
        guard let key = readPrivateKey(keyPEM) else {
            let error = ERR_peek_last_error()
            return .failure(.noPrivateKey(reason: error == 0 ? "no PEM private key found" : reasonText(error)))
        }
        defer { EVP_PKEY_free(key) }
        let certificate = withBIO(certificatePEM) { PEM_read_bio_X509($0, nil, nil, nil) }
        guard let certificate else { return .failure(.noCertificate(reason: "no PEM certificate found")) }
        defer { X509_free(certificate) }
        return X509_check_private_key(certificate, key) == 1 ? .success(()) : .failure(.keyMismatch)
    }

    /// PEM_read_bio_PrivateKey with a passphrase callback that refuses: without one, OpenSSL
    /// would prompt on the terminal for an encrypted key (PEM_read_bio_PrivateKey(3)), which a
    /// service must never do. An encrypted key is therefore reported as unreadable.
    static func readPrivateKey(_ pem: [UInt8]) -> OpaquePointer? {
        withBIO(pem) { bio in
            PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil)
        }
    }

    /// OpenSSL's reason text for an error code, e.g. "bad base64 decode". Never contains input bytes.
    static func reasonText(_ error: UInt) -> String {
        guard let text = ERR_reason_error_string(error) else { return "OpenSSL error \(error)" }
        return String(cString: text)
    }

    /// A read-only memory BIO over `bytes` for the duration of `body`.
    static func withBIO<R>(_ bytes: [UInt8], _ body: (OpaquePointer) -> R) -> R {
        bytes.withUnsafeBytes { raw in
            let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count))!
            defer { BIO_free(bio) }
            return body(bio)
        }
    }
}
