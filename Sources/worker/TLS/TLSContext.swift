import COpenSSL
import Common
import Synchronization

/// An `SSL_CTX`: the settings shared by many connections (trust, certificate, protocol floor).
/// Wrapped in its own type so it cannot be confused with an `SSL` or a `BIO`, which all import as
/// `OpaquePointer`. An `SSL_CTX` may be used from any thread once configured (OpenSSL threads(7));
/// the Swift state it carries (the client session cache) has its own lock.
final class TLSContext: @unchecked Sendable {
    enum Role { case client, server }

    let role: Role
    let pointer: OpaquePointer
    /// Client only: the last resumable session per `host:port` (see `TLSSessionCache`).
    let sessions: TLSSessionCache?

    private init(role: Role, pointer: OpaquePointer) {
        self.role = role
        self.pointer = pointer
        self.sessions = role == .client ? TLSSessionCache() : nil
    }

    deinit { SSL_CTX_free(pointer) }

    /// Settings both directions share: TLS 1.2 minimum (1.0/1.1 are deprecated by RFC 8996),
    /// no renegotiation (a TLS 1.2 feature with a history of attacks, and a way for a peer to
    /// make us do handshake work mid-stream), no compression (CRIME), and buffers released while
    /// a connection is idle (nginx does the same: ~34 KiB less per idle connection). Cipher
    /// suites are OpenSSL's defaults (Debian's SECLEVEL=2 policy applies).
    private static func make(_ method: OpaquePointer?, role: Role) throws(TLSError) -> TLSContext {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(method) else { throw .setupFailed(reason: TLSError.queuedReason(default: "SSL_CTX_new failed")) }
        let context = TLSContext(role: role, pointer: ctx)
        guard fluxgate_SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 else {
            throw .setupFailed(reason: "cannot set the minimum protocol version")
        }
        SSL_CTX_set_options(ctx, fluxgate_SSL_OP_NO_RENEGOTIATION() | fluxgate_SSL_OP_NO_COMPRESSION())
        _ = fluxgate_SSL_CTX_set_mode(ctx, fluxgate_SSL_MODE_RELEASE_BUFFERS())
        return context
    }

    /// The context for connections to https upstreams: peer verification always on, trust from
    /// `ca` when given (and only from it), else the system trust store, which
    /// `SSL_CTX_set_default_verify_paths` takes from SSL_CERT_FILE / SSL_CERT_DIR when set and
    /// from Debian's /usr/lib/ssl (→ /etc/ssl/certs) otherwise.
    static func client(trusting ca: Configuration.TrustedCA?) throws(TLSError) -> TLSContext {
        let context = try make(TLS_client_method(), role: .client)
        let ctx = context.pointer
        // No verify callback: OpenSSL's verdict stands, and the handshake fails on any error.
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        if let ca {
            let store = SSL_CTX_get_cert_store(ctx)
            let certificates = try PEMReader.certificates(Array(ca.pem.utf8))
            for certificate in certificates {
                // add_cert takes its own reference.
                X509_STORE_add_cert(store, certificate)
                X509_free(certificate)
            }
        } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
            throw .setupFailed(reason: "cannot load the system trust store")
        }
        guard fluxgate_SSL_CTX_offer_alpn_http11(ctx) == 0 else { throw .setupFailed(reason: "cannot set ALPN") }
        // Client-side session caching is the application's job: OpenSSL hands each new session
        // (TLS 1.3: each ticket, which arrives after the handshake) to this callback and we offer
        // it again on the next connection to the same host (SSL_CTX_sess_set_new_cb(3)).
        _ = fluxgate_SSL_CTX_set_session_cache_mode(ctx, fluxgate_SSL_SESS_CACHE_CLIENT_NO_INTERNAL())
        SSL_CTX_sess_set_new_cb(ctx) { ssl, session in
            guard let ssl, let session, let connection = TLSConnection.owner(of: ssl) else { return 0 }
            return connection.storeSession(session) ? 1 : 0
        }
        return context
    }

    /// The listener's context: the certificate chain (leaf first) and its key, ALPN http/1.1.
    static func server(_ tls: Configuration.ServerTLS) throws(TLSError) -> TLSContext {
        let context = try make(TLS_server_method(), role: .server)
        let ctx = context.pointer
        var certificates = try PEMReader.certificates(Array(tls.certificateChainPEM.utf8))
        let leaf = certificates.removeFirst()
        defer { X509_free(leaf) }
        guard SSL_CTX_use_certificate(ctx, leaf) == 1 else {
            certificates.forEach { X509_free($0) }
            throw .setupFailed(reason: TLSError.queuedReason(default: "certificate not usable"))
        }
        for (index, certificate) in certificates.enumerated() where fluxgate_SSL_CTX_add0_chain_cert(ctx, certificate) != 1 {
            // add0 took ownership only of those that succeeded.
            certificates[index...].forEach { X509_free($0) }
            throw .setupFailed(reason: "intermediate certificate not usable")
        }
        guard let key = PEMReader.privateKey(Array(tls.privateKeyPEM.value.utf8)) else {
            throw .setupFailed(reason: "private key not readable")
        }
        defer { EVP_PKEY_free(key) }
        guard SSL_CTX_use_PrivateKey(ctx, key) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
            throw .setupFailed(reason: "private key does not match the certificate")
        }
        fluxgate_SSL_CTX_select_alpn_http11(ctx)
        // Server-side resumption needs nothing more: OpenSSL's internal server cache (TLS 1.2
        // session ids) and stateless tickets (keys per SSL_CTX) are on by default.
        return context
    }
}

/// Resumable client sessions, the newest per `host:port`. Offering a session only to the host it
/// was made with keeps verification meaningful: the resumed peer proved that host's identity.
final class TLSSessionCache: Sendable {
    /// Owns one reference to each `SSL_SESSION`.
    private let sessions = Mutex<[String: TLSSession]>([:])

    func store(_ session: TLSSession, for key: String) { sessions.withLock { $0[key] = session } }
    func session(for key: String) -> TLSSession? { sessions.withLock { $0[key] } }
}

/// One reference to an `SSL_SESSION`, released when the value goes away. Sessions are immutable
/// once made and reference-counted by OpenSSL, so sharing them between connections is safe.
final class TLSSession: @unchecked Sendable {
    let pointer: OpaquePointer
    /// Takes over a reference the caller owns.
    init(owning pointer: OpaquePointer) { self.pointer = pointer }
    deinit { SSL_SESSION_free(pointer) }
}

/// PEM parsing for the worker. The loader already checked these same bytes (PEMCheck in ConfigLoading);
/// a failure here means the configuration was not made by the loader.
enum PEMReader {
    /// Every certificate in `pem`, each an owned `X509*` (at least one).
    static func certificates(_ pem: [UInt8]) throws(TLSError) -> [OpaquePointer] {
        ERR_clear_error()
        defer { ERR_clear_error() }
        let result: [OpaquePointer] = withBIO(pem) { bio in
            var list: [OpaquePointer] = []
            while let x509 = PEM_read_bio_X509(bio, nil, nil, nil) { list.append(x509) }
            return list
        }
        guard !result.isEmpty else { throw .setupFailed(reason: "no certificate in PEM data") }
        return result
    }

    /// An owned `EVP_PKEY*`. The passphrase callback refuses: OpenSSL would otherwise prompt on
    /// the terminal for an encrypted key.
    static func privateKey(_ pem: [UInt8]) -> OpaquePointer? {
        ERR_clear_error()
        defer { ERR_clear_error() }
        return withBIO(pem) { PEM_read_bio_PrivateKey($0, nil, { _, _, _, _ in 0 }, nil) }
    }

    private static func withBIO<R>(_ bytes: [UInt8], _ body: (OpaquePointer) -> R) -> R {
        bytes.withUnsafeBytes { raw in
            let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count))!
            defer { BIO_free(bio) }
            return body(bio)
        }
    }
}
