/* TLS from the inside (context.c, session.c): what the streams use to
 * move ciphertext between a socket and a session without a copy, and the
 * context's reference count.
 *
 * A session's ciphertext lives in an OpenSSL BIO pair: one end is the
 * SSL object's, the other ("net") is ours. Each direction's buffer has a
 * fixed size, allocated at its first use, so a session's memory does not
 * grow with what the peer sends or what the caller writes. */
#ifndef CONC_TLS_INTERNAL_H
#define CONC_TLS_INTERNAL_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "conc/tls.h"

/* The largest TLS record on the wire: 2^14 bytes of plaintext with
 * TLS 1.2's allowance of 2048 for expansion and the 5-byte header (RFC
 * 5246 section 6.2.3); TLS 1.3's records are smaller. */
#define CONC__TLS_RECORD_MAX (16384 + 2048 + 5)
/* The plaintext of one record at most (RFC 8446 section 5.1). */
#define CONC__TLS_PLAIN_MAX 16384

/* The context's SSL_CTX, and in *server whether it is a server's. */
SSL_CTX *conc__tls_context_ssl(conc_tls_context *ctx, int *server);
/* Takes one more reference to the context. Any thread. */
void conc__tls_context_ref(conc_tls_context *ctx);

/* The contiguous room in the session's input buffer, at *p (0 when it is
 * full or the end of input was fed). The caller writes there, then calls
 * conc__tls_in_commit with the count written. */
size_t conc__tls_in_space(conc_tls_session *s, uint8_t **p);
void conc__tls_in_commit(conc_tls_session *s, size_t n);
/* The contiguous ciphertext waiting to be sent, at *p (0: none); the
 * caller sends some and calls conc__tls_out_consume with the count. */
size_t conc__tls_out_data(conc_tls_session *s, const uint8_t **p);
void conc__tls_out_consume(conc_tls_session *s, size_t n);
/* Records the session's last failure again, for the calling thread (the
 * streams fail in the loop's callback and report in a task). Returns
 * CONC_ETLS. */
int conc__tls_refail(conc_tls_session *s);
/* 1 once the end of the peer's ciphertext was fed. */
int conc__tls_in_ended(const conc_tls_session *s);
/* 1 while the session holds received bytes not yet read as plaintext
 * (a record in progress, records read ahead, plaintext not taken). */
int conc__tls_in_holds(conc_tls_session *s);

#endif
