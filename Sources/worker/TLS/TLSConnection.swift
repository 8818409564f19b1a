import COpenSSL
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// One TLS session (`SSL`) over two memory BIOs: OpenSSL never touches the socket. Ciphertext
/// from the network is `feed`-ed into the read BIO; ciphertext OpenSSL produces accumulates in
/// the write BIO until `takeCiphertext` drains it. Used by `TLSHandler` on one event loop only.
///
/// OpenSSL's error queue is per thread and its entries outlive the call that made them, so every
/// SSL call here is preceded by `ERR_clear_error()`: otherwise `SSL_get_error` can report a stale
/// error from an unrelated connection on the same loop (SSL_get_error(3)).
final class TLSConnection {
    enum Step: Equatable {
        case done
        /// Needs more ciphertext from the peer.
        case wantRead
        case failed(TLSError)
    }

    enum ReadResult: Equatable {
        /// Every plaintext byte available was read; more needs more ciphertext.
        case wantRead
        /// The peer sent close_notify: a clean end of stream.
        case closeNotify
        case failed(TLSError)
    }

    private let ssl: OpaquePointer
    /// Network → OpenSSL.
    private let readBIO: OpaquePointer
    /// OpenSSL → network.
    private let writeBIO: OpaquePointer
    private let context: TLSContext
    /// Client: `host:port`, the key of the session cache.
    private let sessionKey: String?

    /// A client connection to `host` (a name or an IP literal without brackets).
    convenience init(client context: TLSContext, host: String, port: UInt16) throws(TLSError) {
        try self.init(context: context, sessionKey: "\(host):\(port)")
        SSL_set_connect_state(ssl)
        // Hostname checks: no partial wildcards (`f*.example.com`), as curl and browsers.
        SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
        if Self.isIPLiteral(host) {
            // RFC 6066 §3: SNI carries host names only. The certificate must list the address
            // as an iPAddress subjectAltName.
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 else {
                throw .setupFailed(reason: "cannot set the IP address to verify")
            }
        } else {
            guard fluxgate_SSL_set_tlsext_host_name(ssl, host) == 1, SSL_set1_host(ssl, host) == 1 else {
                throw .setupFailed(reason: "cannot set the host name to verify")
            }
        }
        if let session = context.sessions?.session(for: "\(host):\(port)") {
            // Only an offer: the server may decline and a full handshake follows.
            SSL_set_session(ssl, session.pointer)
        }
    }

    convenience init(server context: TLSContext) throws(TLSError) {
        try self.init(context: context, sessionKey: nil)
        SSL_set_accept_state(ssl)
    }

    private init(context: TLSContext, sessionKey: String?) throws(TLSError) {
        ERR_clear_error()
        guard let ssl = SSL_new(context.pointer) else { throw .setupFailed(reason: "SSL_new failed") }
        guard let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw .setupFailed(reason: "BIO_new failed")
        }
        // An empty memory BIO reports "retry" (-1), not end of file, so SSL_read and
        // SSL_do_handshake say WANT_READ when they run out of ciphertext. End of stream is
        // decided by TLSHandler from the socket, never by OpenSSL reading an empty buffer.
        _ = fluxgate_BIO_set_mem_eof_return(readBIO, -1)
        // SSL_set_bio hands both BIOs to the SSL: SSL_free frees them.
        SSL_set_bio(ssl, readBIO, writeBIO)
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        self.context = context
        self.sessionKey = sessionKey
        // Lets the session callback (a C function pointer, no captures) find this object.
        // Index 0 is the "app data" slot (SSL_set_app_data). Unretained: it is cleared in deinit
        // and the SSL never outlives this object.
        SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        SSL_set_ex_data(ssl, 0, nil)
        SSL_free(ssl)
    }

    static func owner(of ssl: OpaquePointer) -> TLSConnection? {
        guard let raw = SSL_get_ex_data(ssl, 0) else { return nil }
        return Unmanaged<TLSConnection>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Called by OpenSSL with a new reference to a session; true when it was kept.
    func storeSession(_ session: OpaquePointer) -> Bool {
        guard let sessionKey, let cache = context.sessions, SSL_SESSION_is_resumable(session) == 1 else { return false }
        cache.store(TLSSession(owning: session), for: sessionKey)
        return true
    }

    /// Whether the last handshake resumed a session (tests and logs).
    var sessionReused: Bool { SSL_session_reused(ssl) == 1 }

    /// The protocol ALPN selected, if any.
    var negotiatedALPN: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    // MARK: Ciphertext

    func feed(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { raw in
            guard raw.count > 0 else { return }
            // A memory BIO grows to take everything; it only fails on allocation failure.
            _ = BIO_write(readBIO, raw.baseAddress, Int32(raw.count))
        }
    }

    /// Everything OpenSSL has produced for the network since the last call, or nil.
    func takeCiphertext(allocator: ByteBufferAllocator) -> ByteBuffer? {
        let pending = fluxgate_BIO_pending(writeBIO)
        guard pending > 0 else { return nil }
        var buffer = allocator.buffer(capacity: pending)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { raw in
            Int(max(0, BIO_read(writeBIO, raw.baseAddress, Int32(pending))))
        }
        return buffer
    }

    // MARK: Session

    func handshake() -> Step {
        while true {
            ERR_clear_error()
            let rc = SSL_do_handshake(ssl)
            if rc == 1 { return .done }
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_READ:
                return .wantRead
            case SSL_ERROR_WANT_WRITE:
                // A memory write BIO never fills, so this does not happen; retrying is correct
                // if it ever does, because the caller drains the write BIO after every step.
                continue
            default:
                return .failed(failure(default: "handshake failed", duringHandshake: true))
            }
        }
    }

    /// Appends all the plaintext OpenSSL can produce from the ciphertext fed so far.
    func readPlaintext(into buffer: inout ByteBuffer) -> ReadResult {
        while true {
            // Plaintext never exceeds the ciphertext it came from: size reads to what is queued.
            let want = max(fluxgate_BIO_pending(readBIO) + Int(SSL_pending(ssl)), 1024)
            var rc: Int32 = 0
            ERR_clear_error()
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: min(want, 64 * 1024)) { raw in
                rc = SSL_read(ssl, raw.baseAddress, Int32(clamping: raw.count))
                return rc > 0 ? Int(rc) : 0
            }
            if rc > 0 { continue }
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_READ:
                return .wantRead
            case SSL_ERROR_WANT_WRITE:
                continue
            case SSL_ERROR_ZERO_RETURN:
                return .closeNotify
            default:
                return .failed(failure(default: "record error", duringHandshake: false))
            }
        }
    }

    /// Encrypts all of `buffer` into the write BIO. Without SSL_MODE_ENABLE_PARTIAL_WRITE and
    /// with a memory BIO, SSL_write takes everything or fails.
    func write(_ buffer: ByteBuffer) -> TLSError? {
        var remaining = buffer
        while remaining.readableBytes > 0 {
            ERR_clear_error()
            // SSL_write with 0 bytes is undefined behaviour in older OpenSSLs: never called so.
            let rc = remaining.withUnsafeReadableBytes { raw in
                SSL_write(ssl, raw.baseAddress, Int32(clamping: raw.count))
            }
            if rc > 0 {
                remaining.moveReaderIndex(forwardBy: Int(rc))
                continue
            }
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_WRITE, SSL_ERROR_WANT_READ:
                // Neither can happen with memory BIOs and renegotiation off.
                return .protocolError(reason: "write would block")
            default:
                return failure(default: "write failed", duringHandshake: false)
            }
        }
        return nil
    }

    /// Queues our close_notify in the write BIO. We do not wait for the peer's (RFC 8446 §6.1
    /// allows closing the connection right after sending ours).
    func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }

    private func failure(default fallback: String, duringHandshake: Bool) -> TLSError {
        let verify = SSL_get_verify_result(ssl)
        if duringHandshake, verify != X509_V_OK {
            let reason = X509_verify_cert_error_string(verify).map { String(cString: $0) } ?? "error \(verify)"
            return .verificationFailed(code: Int(verify), reason: reason)
        }
        let reason = TLSError.queuedReason(default: fallback)
        return duringHandshake ? .handshakeFailed(reason: reason) : .protocolError(reason: reason)
    }

    static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
