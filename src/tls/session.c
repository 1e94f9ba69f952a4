/* TLS sessions without I/O (ssl.SSLObject over MemoryBIOs): an SSL object
 * whose ciphertext goes through a BIO pair, so that the caller moves the
 * bytes and the session never touches a socket.
 *
 *   peer --feed--> [net | in buffer] --> SSL --read--> plaintext
 *   peer <--take-- [net | out buffer] <-- SSL <--write-- plaintext
 *
 * Both buffers have a fixed size. write encrypts only while the output
 * buffer has room for a whole record, so OpenSSL never holds a record
 * half written (its WANT_WRITE retry rule never applies); feed takes only
 * what fits. The error queue of OpenSSL is per thread: each call clears
 * it first so that SSL_get_error sees only its own failure.
 *
 * After the handshake, the end of the peer's ciphertext without a
 * close_notify is read as the end of stream, as asyncio does (HTTP/1.1
 * and most protocols frame their own ends); during the handshake it is a
 * failure that says the peer closed. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "conc/buf.h"
#include "core/internal.h"
#include "tls/tls_internal.h"

/* The ciphertext buffers: the input takes a socket read's worth; the
 * output holds two records, so one can be encrypted while the last is
 * sent. */
#define IN_BUF  (16 * 1024)
#define OUT_BUF (2 * CONC__TLS_RECORD_MAX)
#define WHY_MAX 160 /* bytes of a failure's reason kept */

struct conc_tls_session {
    SSL *ssl;
    BIO *net; /* our end of the pair; SSL owns the other */
    conc_tls_context *ctx;
    int eof_fed;
    int closed;        /* close_notify queued */
    char why[WHY_MAX]; /* the last failure's message */
};

/* Records why the session failed as CONC_ETLS: the certificate check,
 * the peer closing during the handshake, or OpenSSL's reason. */
static int
tls_fail(conc_tls_session *s, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    long v = SSL_get_verify_result(s->ssl);
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    int r;
    if (v != X509_V_OK)
        r = conc_fail(CONC_ETLS, "%s: certificate verify failed: %s", what,
                      X509_verify_cert_error_string(v));
    else if (s->eof_fed && !SSL_is_init_finished(s->ssl))
        r = conc_fail(CONC_ETLS,
                      "%s: the peer closed the connection during the "
                      "handshake",
                      what);
    else
        r = conc_fail(CONC_ETLS, "%s: %s", what, why ? why : "protocol error");
    ERR_clear_error();
    snprintf(s->why, sizeof s->why, "%s", conc_failure_message());
    return r;
}

/* Sets the name to send (SNI) and to check the certificate against. */
static int
set_host(conc_tls_session *s, const char *host, int verify)
{
    unsigned char ip[sizeof(struct in6_addr)];
    int is_ip =
        inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    /* RFC 6066 section 3: SNI carries host names, never addresses. */
    if (!is_ip && SSL_set_tlsext_host_name(s->ssl, host) != 1)
        return CONC_ENOMEM;
    if (!verify)
        return 0;
    X509_VERIFY_PARAM *param = SSL_get0_param(s->ssl);
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                   : X509_VERIFY_PARAM_set1_host(param, host, 0);
    return ok == 1 ? 0 : CONC_ENOMEM;
}

/* The SSL object over a new BIO pair. */
static int
make_ssl(conc_tls_session *s, SSL_CTX *ctx)
{
    BIO *inner = NULL;
    s->ssl = SSL_new(ctx);
    if (!s->ssl)
        return CONC_ENOMEM;
    /* The inner end's write buffer is the output; ours is the input. */
    if (BIO_new_bio_pair(&inner, OUT_BUF, &s->net, IN_BUF) != 1)
        return CONC_ENOMEM;
    SSL_set_bio(s->ssl, inner, inner);
    return 0;
}

int
conc_tls_session_new(conc_tls_context *ctx, const char *server_hostname,
                     conc_tls_session **out)
{
    if (!ctx || !out)
        return CONC_EINVAL;
    int server;
    SSL_CTX *sctx = conc__tls_context_ssl(ctx, &server);
    int verify = !server && (SSL_CTX_get_verify_mode(sctx) & SSL_VERIFY_PEER);
    if (verify && !server_hostname)
        return conc_fail(CONC_EINVAL, "a verifying client needs "
                                      "server_hostname");
    conc_tls_session *s = conc__calloc(1, sizeof *s);
    if (!s)
        return CONC_ENOMEM;
    conc__tls_context_ref(ctx);
    s->ctx = ctx;
    ERR_clear_error();
    int r = make_ssl(s, sctx);
    if (r == 0 && !server && server_hostname)
        r = set_host(s, server_hostname, verify);
    if (r < 0) {
        ERR_clear_error();
        conc_tls_session_free(s);
        return r;
    }
    if (server)
        SSL_set_accept_state(s->ssl);
    else
        SSL_set_connect_state(s->ssl);
    *out = s;
    return 0;
}

void
conc_tls_session_free(conc_tls_session *s)
{
    if (!s)
        return;
    SSL_free(s->ssl); /* and the inner end of the pair */
    BIO_free(s->net);
    conc_tls_context_free(s->ctx);
    conc__free(s);
}

int
conc_tls_session_feed(conc_tls_session *s, const void *data, size_t n,
                      size_t *taken)
{
    if (!s || !data || !taken)
        return CONC_EINVAL;
    if (s->eof_fed)
        return conc_fail(CONC_ECLOSED, "the end of input was fed");
    *taken = 0;
    while (*taken < n) {
        uint8_t *p;
        size_t room = conc__tls_in_space(s, &p);
        size_t k = n - *taken < room ? n - *taken : room;
        if (!k)
            break;
        memcpy(p, (const uint8_t *)data + *taken, k);
        conc__tls_in_commit(s, k);
        *taken += k;
    }
    return 0;
}

int
conc_tls_session_feed_eof(conc_tls_session *s)
{
    if (!s)
        return CONC_EINVAL;
    if (!s->eof_fed)
        BIO_shutdown_wr(s->net);
    s->eof_fed = 1;
    return 0;
}

/* Maps the result of an SSL call that did not succeed. */
static int
ssl_result(conc_tls_session *s, int k, const char *what)
{
    int e = SSL_get_error(s->ssl, k);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return CONC_EAGAIN;
    }
    return tls_fail(s, what);
}

int
conc_tls_session_handshake(conc_tls_session *s)
{
    if (!s)
        return CONC_EINVAL;
    ERR_clear_error();
    int k = SSL_do_handshake(s->ssl);
    return k == 1 ? 0 : ssl_result(s, k, "TLS handshake failed");
}

int
conc_tls_session_is_ready(conc_tls_session *s)
{
    return s ? SSL_is_init_finished(s->ssl) : CONC_EINVAL;
}

int
conc_tls_session_read(conc_tls_session *s, void *buf, size_t cap, size_t *n)
{
    if (!s || !buf || !n || !cap)
        return CONC_EINVAL;
    ERR_clear_error();
    int k = SSL_read(s->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    if (k > 0) {
        *n = (size_t)k;
        return 0;
    }
    int e = SSL_get_error(s->ssl, k);
    int done = SSL_is_init_finished(s->ssl);
    /* close_notify; or the input's end without one, after the handshake
     * (see the top of the file). */
    if (e == SSL_ERROR_ZERO_RETURN ||
        (done && s->eof_fed && e != SSL_ERROR_WANT_WRITE)) {
        ERR_clear_error();
        *n = 0;
        return 0;
    }
    return ssl_result(s, k, done ? "TLS read failed" : "TLS handshake failed");
}

int
conc_tls_session_write(conc_tls_session *s, const void *data, size_t n,
                       size_t *taken)
{
    if (!s || !data || !taken)
        return CONC_EINVAL;
    if (s->closed)
        return conc_fail(CONC_ECLOSED, "the TLS session is closed");
    BIO *inner = SSL_get_wbio(s->ssl);
    size_t done = 0;
    int r = 0;
    ERR_clear_error();
    while (done < n &&
           BIO_ctrl_get_write_guarantee(inner) >= CONC__TLS_RECORD_MAX) {
        size_t len =
            n - done < CONC__TLS_PLAIN_MAX ? n - done : CONC__TLS_PLAIN_MAX;
        int k = SSL_write(s->ssl, (const uint8_t *)data + done, (int)len);
        if (k <= 0) {
            r = ssl_result(s, k, "TLS write failed");
            break;
        }
        done += (size_t)k;
    }
    if (r < 0 && r != CONC_EAGAIN)
        return r;
    *taken = done;
    return done || !n ? 0 : CONC_EAGAIN;
}

int
conc_tls_session_pending(conc_tls_session *s, size_t *n)
{
    if (!s || !n)
        return CONC_EINVAL;
    *n = BIO_ctrl_pending(s->net);
    return 0;
}

int
conc_tls_session_take(conc_tls_session *s, void *buf, size_t cap, size_t *n)
{
    if (!s || !buf || !n)
        return CONC_EINVAL;
    *n = 0;
    while (*n < cap) {
        const uint8_t *p;
        size_t have = conc__tls_out_data(s, &p);
        size_t k = cap - *n < have ? cap - *n : have;
        if (!k)
            break;
        memcpy((uint8_t *)buf + *n, p, k);
        conc__tls_out_consume(s, k);
        *n += k;
    }
    return 0;
}

int
conc_tls_session_close(conc_tls_session *s)
{
    if (!s)
        return CONC_EINVAL;
    if (s->closed)
        return 0;
    s->closed = 1;
    /* Before the handshake is done there is nothing to close: OpenSSL
     * refuses, and the caller just drops the connection. */
    ERR_clear_error();
    if (SSL_is_init_finished(s->ssl))
        (void)SSL_shutdown(s->ssl);
    ERR_clear_error();
    return 0;
}

int
conc_tls_session_alpn(conc_tls_session *s, conc_buf *out)
{
    if (!s || !out)
        return CONC_EINVAL;
    const unsigned char *p = NULL;
    unsigned len = 0;
    SSL_get0_alpn_selected(s->ssl, &p, &len);
    return conc__buf_set(out, p ? (const void *)p : "", len);
}

int
conc_tls_session_peer_subject(conc_tls_session *s, conc_buf *out)
{
    if (!s || !out)
        return CONC_EINVAL;
    X509 *cert = SSL_get1_peer_certificate(s->ssl);
    if (!cert)
        return conc__buf_set(out, "", 0);
    BIO *mem = BIO_new(BIO_s_mem());
    int r = CONC_ENOMEM;
    if (mem && X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0,
                                  XN_FLAG_RFC2253) >= 0) {
        char *text;
        long len = BIO_get_mem_data(mem, &text);
        r = conc__buf_set(out, len > 0 ? text : "", len > 0 ? (size_t)len : 0);
    }
    BIO_free(mem);
    X509_free(cert);
    ERR_clear_error();
    return r;
}

int
conc_tls_session_server_name(conc_tls_session *s, conc_buf *out)
{
    if (!s || !out)
        return CONC_EINVAL;
    const char *name = SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name);
    return conc__buf_set(out, name ? name : "", name ? strlen(name) : 0);
}

int
conc_tls_session_version(conc_tls_session *s, int *version)
{
    if (!s || !version)
        return CONC_EINVAL;
    *version = SSL_is_init_finished(s->ssl) ? SSL_version(s->ssl) : 0;
    return 0;
}

/* ---- Zero-copy access for the streams (tls_internal.h) ------------------ */

size_t
conc__tls_in_space(conc_tls_session *s, uint8_t **p)
{
    char *buf = NULL;
    int k = s->eof_fed ? 0 : BIO_nwrite0(s->net, &buf);
    *p = (uint8_t *)buf;
    return k > 0 ? (size_t)k : 0;
}

void
conc__tls_in_commit(conc_tls_session *s, size_t n)
{
    char *buf;
    (void)BIO_nwrite(s->net, &buf, (int)n);
}

size_t
conc__tls_out_data(conc_tls_session *s, const uint8_t **p)
{
    char *buf = NULL;
    int k = BIO_nread0(s->net, &buf);
    *p = (const uint8_t *)buf;
    return k > 0 ? (size_t)k : 0;
}

void
conc__tls_out_consume(conc_tls_session *s, size_t n)
{
    char *buf;
    (void)BIO_nread(s->net, &buf, (int)n);
}

int
conc__tls_refail(conc_tls_session *s)
{
    return conc_fail(CONC_ETLS, "%s", s->why[0] ? s->why : "TLS failed");
}

int
conc__tls_in_ended(const conc_tls_session *s)
{
    return s->eof_fed;
}

int
conc__tls_in_holds(conc_tls_session *s)
{
    return SSL_has_pending(s->ssl) || BIO_pending(SSL_get_rbio(s->ssl)) > 0;
}
