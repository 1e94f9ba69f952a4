/* conc/tls.h: TLS contexts and sans-I/O sessions over OpenSSL (Python's
 * ssl.SSLContext and ssl.SSLObject with its MemoryBIOs).
 *
 * A conc_tls_context holds what many connections share: the side (client
 * or server), certificate verification (on by default for clients, with
 * the system's CA store), the certificate chain and key, ALPN and the
 * minimum protocol version. A conc_tls_session is one connection's TLS
 * state and does no I/O: the caller feeds it the ciphertext that came
 * from the peer, takes the ciphertext it must send, and reads and writes
 * plaintext in between. The streams (aio_stream.h) drive a session over a
 * socket; anything else (a test, a fuzzer, another transport) can drive
 * it through buffers.
 *
 * Memory per session is bounded: the ciphertext buffers in each direction
 * have a fixed size (conc_tls_session_feed takes what fits), and OpenSSL's
 * own record buffers are released while idle (SSL_MODE_RELEASE_BUFFERS).
 *
 * Threads: a context may be shared by any number of threads once made; a
 * session is used by one thread at a time. */
#ifndef CONC_TLS_H
#define CONC_TLS_H

#include "buf.h"
#include "common.h"
#include "error.h"

CONC_BEGIN_DECLS

typedef struct conc_tls_context conc_tls_context;
typedef struct conc_tls_session conc_tls_session;

/* Protocol versions, as TLS writes them (ssl.TLSVersion). */
#define CONC_TLS_1_2 0x0303
#define CONC_TLS_1_3 0x0304

/* Certificate verification (ssl.CERT_*). */
enum conc_tls_verify {
    /* Clients verify the server (CERT_REQUIRED and check_hostname, as
     * ssl.create_default_context); servers ask no certificate. */
    CONC_TLS_VERIFY_DEFAULT = 0,
    /* No verification (CERT_NONE, check_hostname off). */
    CONC_TLS_VERIFY_NONE = 1,
    /* Servers require a client certificate signed by a trusted CA. */
    CONC_TLS_VERIFY_REQUIRED = 2,
};

typedef struct conc_tls_opts {
    /* 1 for a server context (ssl.Purpose.CLIENT_AUTH), 0 for a client. */
    int server;
    /* One of enum conc_tls_verify. */
    int verify;
    /* PEM file of the CAs to trust (cafile=); NULL: the system's store
     * (load_default_certs). */
    const char *ca_file;
    /* PEM file of this side's certificate chain, leaf first, and of its
     * private key (load_cert_chain; key_file NULL: the key is in
     * cert_file). A server needs them. */
    const char *cert_file;
    const char *key_file;
    /* The ALPN protocols offered or accepted, in order of preference,
     * separated by commas ("h2,http/1.1"; set_alpn_protocols). NULL: no
     * ALPN. */
    const char *alpn;
    /* The oldest version allowed (minimum_version). 0: CONC_TLS_1_2. */
    int min_version;
} conc_tls_opts;

/* Makes a context from `opts` (borrowed; NULL: a client context with
 * Python's defaults) and returns it in *out: a new context freed with
 * conc_tls_context_free. Sessions and servers keep their own reference,
 * so the caller may free it as soon as they are made. Returns 0,
 * CONC_EINVAL (NULL out, a bad verify, version or ALPN list), CONC_ETLS
 * (a certificate, key or CA file that cannot be loaded, a key that does
 * not match its certificate; the message says which), CONC_ENOMEM. It
 * reads files (the system's store takes tens of milliseconds): make a
 * context once, not per connection. Any thread. */
CONC_EXTERN int conc_tls_context_new(const conc_tls_opts *opts,
                                     conc_tls_context **out);

/* Drops the caller's reference to the context; NULL does nothing. Any
 * thread. */
CONC_EXTERN void conc_tls_context_free(conc_tls_context *ctx);

/* ---- Sessions ------------------------------------------------------------ */

/* A new session of `ctx` (borrowed; the session keeps a reference) in
 * *out, freed with conc_tls_session_free. For a client, server_hostname
 * (borrowed, copied) is sent as SNI (unless it is an IP address) and the
 * server's certificate must match it; it may be NULL only when the
 * context does not verify. Servers pass NULL. Returns 0, CONC_EINVAL
 * (NULL ctx or out; a verifying client without server_hostname),
 * CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_tls_session_new(conc_tls_context *ctx,
                                     const char *server_hostname,
                                     conc_tls_session **out);

/* Feeds up to n bytes of ciphertext from the peer (`data`, borrowed) and
 * sets *taken to how many fit in the session's input buffer (0 when it is
 * full: read or handshake first). Returns 0, CONC_EINVAL (NULL),
 * CONC_ECLOSED (the end of input was fed). The thread using the session. */
CONC_EXTERN int conc_tls_session_feed(conc_tls_session *s, const void *data,
                                      size_t n, size_t *taken);

/* Tells the session that the peer's ciphertext ended (the socket's end of
 * stream). Returns 0, CONC_EINVAL (NULL). The thread using the session. */
CONC_EXTERN int conc_tls_session_feed_eof(conc_tls_session *s);

/* Advances the handshake (do_handshake). Returns 0 once it is done,
 * CONC_EAGAIN while it needs more ciphertext from the peer (send what
 * conc_tls_session_take gives first), CONC_ETLS when it failed (the
 * message says why: verification, protocol, or the peer closing during
 * the handshake), CONC_EINVAL (NULL). The thread using the session. */
CONC_EXTERN int conc_tls_session_handshake(conc_tls_session *s);

/* 1 once the handshake is done, 0 before; CONC_EINVAL for NULL. The
 * thread using the session. */
CONC_EXTERN int conc_tls_session_is_ready(conc_tls_session *s);

/* Reads up to cap bytes of plaintext into buf, and sets *n to the count;
 * *n is 0 at the end of stream (the peer's close_notify, or the end of its
 * ciphertext after the handshake). Runs the handshake first if it is not
 * done. Returns 0, CONC_EAGAIN (more ciphertext is needed), CONC_ETLS (a
 * bad record or an alert; the message says which), CONC_EINVAL (NULL,
 * cap 0). The thread using the session. */
CONC_EXTERN int conc_tls_session_read(conc_tls_session *s, void *buf,
                                      size_t cap, size_t *n);

/* Encrypts up to n bytes of plaintext (`data`, borrowed) for the peer and
 * sets *taken to how many were taken: at most what the output buffer has
 * room for, so take the ciphertext and write the rest again. Returns 0,
 * CONC_EAGAIN (nothing taken: the output buffer is full, or the handshake
 * needs the peer), CONC_ECLOSED (close was called), CONC_ETLS, CONC_EINVAL
 * (NULL). The thread using the session. */
CONC_EXTERN int conc_tls_session_write(conc_tls_session *s, const void *data,
                                       size_t n, size_t *taken);

/* The count of ciphertext bytes waiting to be sent to the peer, in *n.
 * Returns 0, CONC_EINVAL (NULL). The thread using the session. */
CONC_EXTERN int conc_tls_session_pending(conc_tls_session *s, size_t *n);

/* Moves up to cap bytes of ciphertext to send to the peer into buf and
 * sets *n to the count (0: nothing waits). Returns 0, CONC_EINVAL (NULL).
 * The thread using the session. */
CONC_EXTERN int conc_tls_session_take(conc_tls_session *s, void *buf,
                                      size_t cap, size_t *n);

/* Queues the close_notify alert (unwrap's first half): nothing more can be
 * written; reading goes on until the peer's own close_notify. Calling it
 * again does nothing. Returns 0, CONC_EINVAL (NULL). The thread using the
 * session. */
CONC_EXTERN int conc_tls_session_close(conc_tls_session *s);

/* The ALPN protocol the handshake chose (selected_alpn_protocol) in *out,
 * empty when none was. Returns 0, CONC_EINVAL (NULL), CONC_ENOMEM. *out
 * is replaced on success. The thread using the session. */
CONC_EXTERN int conc_tls_session_alpn(conc_tls_session *s, conc_buf *out);

/* The subject of the peer's certificate, one line in RFC 2253 form
 * ("CN=localhost,O=conc"), in *out; empty when the peer sent none.
 * Returns 0, CONC_EINVAL (NULL), CONC_ENOMEM. *out is replaced on
 * success. The thread using the session. */
CONC_EXTERN int conc_tls_session_peer_subject(conc_tls_session *s,
                                              conc_buf *out);

/* The host name the client sent as SNI (a server's view;
 * SSLSocket.server_hostname on the client) in *out; empty when none was
 * sent. Returns 0, CONC_EINVAL (NULL), CONC_ENOMEM. *out is replaced on
 * success. The thread using the session. */
CONC_EXTERN int conc_tls_session_server_name(conc_tls_session *s,
                                             conc_buf *out);

/* The negotiated protocol version (CONC_TLS_1_3...) in *version; 0 before
 * the handshake is done. Returns 0, CONC_EINVAL (NULL). The thread using
 * the session. */
CONC_EXTERN int conc_tls_session_version(conc_tls_session *s, int *version);

/* Frees the session and drops its reference to the context; NULL does
 * nothing. Nothing is sent: close and take first for a clean end. The
 * thread using the session. */
CONC_EXTERN void conc_tls_session_free(conc_tls_session *s);

CONC_END_DECLS

#endif
