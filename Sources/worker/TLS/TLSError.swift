import COpenSSL

/// Why a TLS connection failed. Descriptions use OpenSSL's fixed reason texts only: they never
/// contain key material, certificate contents or request data.
enum TLSError: Error, Equatable, CustomStringConvertible {
    /// The peer's certificate was rejected: `code` is OpenSSL's X509_V_ERR_* value.
    case verificationFailed(code: Int, reason: String)
    /// The handshake failed for another reason (protocol version, cipher, malformed record...).
    case handshakeFailed(reason: String)
    case handshakeTimeout
    /// The TCP connection ended before the handshake completed.
    case closedDuringHandshake
    /// The peer closed the TCP connection without a close_notify alert: whatever it was sending
    /// may have been cut by an attacker (RFC 8446 §6.1), so this is not a clean end of stream.
    case truncated
    /// A record failed after the handshake (bad MAC, unexpected message, renegotiation attempt).
    case protocolError(reason: String)
    /// A context or connection could not be set up (out of memory, unusable trust store).
    case setupFailed(reason: String)

    /// A short classification for the 502 message: what failed, in the user's words.
    var summary: String {
        switch self {
        case .verificationFailed(let code, let reason):
            switch Int32(code) {
            case X509_V_ERR_CERT_HAS_EXPIRED: return "certificate expired (\(reason))"
            case X509_V_ERR_CERT_NOT_YET_VALID: return "certificate not yet valid (\(reason))"
            case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
                return "certificate is for another host, wrong host (\(reason))"
            case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
                X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
                X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
                return "certificate untrusted (\(reason))"
            default: return "certificate rejected (\(reason))"
            }
        case .handshakeFailed(let reason): return "handshake failed (\(reason))"
        case .handshakeTimeout: return "handshake timed out"
        case .closedDuringHandshake: return "connection closed during the handshake"
        case .truncated: return "connection closed without close_notify (truncated)"
        case .protocolError(let reason): return "protocol error (\(reason))"
        case .setupFailed(let reason): return "setup failed (\(reason))"
        }
    }

    var description: String { "TLS \(summary)" }

    /// The reason text of the earliest error on this thread's OpenSSL error queue.
    static func queuedReason(default fallback: String) -> String {
        let code = ERR_peek_error()
        guard code != 0, let text = ERR_reason_error_string(code) else { return fallback }
        return String(cString: text)
    }
}
