#pragma once
// OpenSSL 3 through Debian's libssl-dev. Macros Swift cannot import get a
// `static inline` wrapper here (Swift imports those from a system module's header).
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>

static inline unsigned long fluxgate_openssl_version_number(void) { return OPENSSL_VERSION_NUMBER; }

// --- TLS (Sources/worker/TLS, Sources/Common/Config/PEMCheck.swift) ---
// Each of these is a macro over SSL_CTX_ctrl/SSL_ctrl/BIO_ctrl in OpenSSL 3.0.
static inline int fluxgate_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long fluxgate_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long fluxgate_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}
static inline int fluxgate_SSL_CTX_add0_chain_cert(SSL_CTX *ctx, X509 *x509) {
    return (int)SSL_CTX_add0_chain_cert(ctx, x509);
}
static inline int fluxgate_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}
static inline size_t fluxgate_BIO_pending(BIO *bio) { return BIO_pending(bio); }
static inline int fluxgate_BIO_set_mem_eof_return(BIO *bio, int v) { return (int)BIO_set_mem_eof_return(bio, v); }

static inline uint64_t fluxgate_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t fluxgate_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t fluxgate_SSL_OP_CIPHER_SERVER_PREFERENCE(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline long fluxgate_SSL_MODE_RELEASE_BUFFERS(void) { return SSL_MODE_RELEASE_BUFFERS; }
static inline long fluxgate_SSL_SESS_CACHE_CLIENT_NO_INTERNAL(void) {
    return SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE;
}

/// True when `e` only says "no further PEM block": how a loop over PEM_read_bio_X509 ends.
static inline int fluxgate_ERR_is_pem_no_start_line(unsigned long e) {
    return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

// ALPN: fluxgate speaks HTTP/1.1 only. The wire format is a length-prefixed list (RFC 7301 §3.1).
static const unsigned char fluxgate_alpn_http11[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };

/// Client side. Note the inverted convention: SSL_CTX_set_alpn_protos returns 0 on success.
static inline int fluxgate_SSL_CTX_offer_alpn_http11(SSL_CTX *ctx) {
    return SSL_CTX_set_alpn_protos(ctx, fluxgate_alpn_http11, sizeof fluxgate_alpn_http11);
}

static inline int fluxgate_alpn_select_http11(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                              const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, outlen, fluxgate_alpn_http11, sizeof fluxgate_alpn_http11, in, inlen)
        != OPENSSL_NPN_NEGOTIATED) {
        // The client offered only protocols we do not speak (e.g. h2 alone): continue without
        // ALPN rather than abort, as nginx does; the client then decides.
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

/// Server side: select http/1.1 when the client offers it.
static inline void fluxgate_SSL_CTX_select_alpn_http11(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, fluxgate_alpn_select_http11, NULL);
}
