#pragma once
// OpenSSL 3 through Debian's libssl-dev. Macros Swift cannot import get a
// `static inline` wrapper here (Swift imports those from a system module's header).
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <openssl/x509v3.h>

static inline unsigned long fluxgate_openssl_version_number(void) { return OPENSSL_VERSION_NUMBER; }
