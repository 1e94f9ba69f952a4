/* TLS contexts (ssl.SSLContext): an OpenSSL SSL_CTX set up once with
 * Python's defaults and the caller's options, shared by the sessions made
 * from it, each of which holds a reference.
 *
 * The defaults are ssl.create_default_context's: a client verifies the
 * server's chain against the system's CAs and its name; a server asks no
 * certificate of its clients; TLS 1.2 at least; renegotiation refused
 * (it is a denial-of-service lever and TLS 1.3 dropped it). */
#include <stdatomic.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/internal.h"
#include "tls/tls_internal.h"

#define ALPN_NAME_MAX 255 /* a protocol name's length byte (RFC 7301) */

struct conc_tls_context {
    SSL_CTX *ctx;
    atomic_size_t refs;
    int server;
    /* The ALPN list in its wire form (length-prefixed names), for the
     * server's choice; immutable once made. */
    unsigned char *alpn;
    size_t alpn_len;
};

/* Records OpenSSL's last error as a CONC_ETLS failure about `what`. */
static int
ssl_fail(const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return conc_fail(CONC_ETLS, "%s %s: %s", what, file ? file : "",
                     why ? why : "unknown error");
}

/* "h2,http/1.1" into the wire form "\x02h2\x08http/1.1". */
static int
alpn_wire(const char *list, unsigned char **out, size_t *len)
{
    size_t n = strlen(list);
    unsigned char *w = conc__malloc(n + 1);
    if (!w)
        return CONC_ENOMEM;
    size_t at = 0;
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        size_t k = end ? (size_t)(end - p) : strlen(p);
        if (k == 0 || k > ALPN_NAME_MAX) {
            conc__free(w);
            return conc_fail(CONC_EINVAL, "bad ALPN list \"%s\"", list);
        }
        w[at++] = (unsigned char)k;
        memcpy(w + at, p, k);
        at += k;
        if (!end)
            break;
        p = end + 1;
    }
    *out = w;
    *len = at;
    return 0;
}

/* The server's ALPN choice: its own first preference that the client
 * offers (as Python's set_alpn_protocols on a server); none, and the
 * extension is left out, as OpenSSL and Python do. */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
            const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    conc_tls_context *c = arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, c->alpn, (unsigned)c->alpn_len, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int
set_verify(conc_tls_context *c, const conc_tls_opts *o)
{
    int mode = SSL_VERIFY_NONE;
    if (!o->server && o->verify == CONC_TLS_VERIFY_DEFAULT)
        mode = SSL_VERIFY_PEER;
    if (o->verify == CONC_TLS_VERIFY_REQUIRED)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(c->ctx, mode, NULL);
    if (mode == SSL_VERIFY_NONE && !o->ca_file)
        return 0;
    if (o->ca_file) {
        if (SSL_CTX_load_verify_locations(c->ctx, o->ca_file, NULL) != 1)
            return ssl_fail("cannot load the CA file", o->ca_file);
    } else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
        return ssl_fail("cannot load the system's CA store", NULL);
    }
    return 0;
}

static int
set_chain(conc_tls_context *c, const conc_tls_opts *o)
{
    if (!o->cert_file)
        return o->key_file ? conc_fail(CONC_EINVAL, "a key without a "
                                                    "certificate")
                           : 0;
    const char *key = o->key_file ? o->key_file : o->cert_file;
    if (SSL_CTX_use_certificate_chain_file(c->ctx, o->cert_file) != 1)
        return ssl_fail("cannot load the certificate chain", o->cert_file);
    if (SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) != 1)
        return ssl_fail("cannot load the private key", key);
    if (SSL_CTX_check_private_key(c->ctx) != 1)
        return ssl_fail("the key does not match the certificate", key);
    return 0;
}

static int
set_alpn(conc_tls_context *c, const conc_tls_opts *o)
{
    if (!o->alpn)
        return 0;
    int r = alpn_wire(o->alpn, &c->alpn, &c->alpn_len);
    if (r < 0)
        return r;
    if (o->server) {
        SSL_CTX_set_alpn_select_cb(c->ctx, alpn_select, c);
        return 0;
    }
    /* set_alpn_protos returns 0 on success, unlike the rest of OpenSSL. */
    if (SSL_CTX_set_alpn_protos(c->ctx, c->alpn, (unsigned)c->alpn_len))
        return ssl_fail("cannot set the ALPN list", NULL);
    return 0;
}

/* The SSL_CTX with the settings every conc context shares. */
static int
make_ctx(conc_tls_context *c, const conc_tls_opts *o)
{
    c->ctx = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
    if (!c->ctx)
        return ssl_fail("cannot make a context", NULL);
    int min = o->min_version ? o->min_version : CONC_TLS_1_2;
    SSL_CTX_set_min_proto_version(c->ctx, min);
    /* Release the record buffers of idle connections (asyncio and uvloop
     * grew without bound here: cpython#109534, uvloop#565); write a
     * record at a time from a buffer that moves (the stream's). */
    SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS |
                                 SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION);
    /* conc's clients never resume, and a ticket is bytes and CPU for
     * every handshake: a server sends none. */
    if (o->server)
        SSL_CTX_set_num_tickets(c->ctx, 0);
    return 0;
}

int
conc_tls_context_new(const conc_tls_opts *opts, conc_tls_context **out)
{
    conc_tls_opts o = opts ? *opts : (conc_tls_opts){0};
    if (!out || o.verify < CONC_TLS_VERIFY_DEFAULT ||
        o.verify > CONC_TLS_VERIFY_REQUIRED ||
        (o.min_version && o.min_version != CONC_TLS_1_2 &&
         o.min_version != CONC_TLS_1_3))
        return CONC_EINVAL;
    conc_tls_context *c = conc__calloc(1, sizeof *c);
    if (!c)
        return CONC_ENOMEM;
    atomic_init(&c->refs, 1);
    c->server = o.server != 0;
    ERR_clear_error();
    int r = make_ctx(c, &o);
    if (r == 0)
        r = set_verify(c, &o);
    if (r == 0)
        r = set_chain(c, &o);
    if (r == 0)
        r = set_alpn(c, &o);
    if (r < 0) {
        conc_tls_context_free(c);
        return r;
    }
    *out = c;
    return 0;
}

void
conc__tls_context_ref(conc_tls_context *ctx)
{
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

void
conc_tls_context_free(conc_tls_context *ctx)
{
    if (!ctx ||
        atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(ctx->ctx);
    conc__free(ctx->alpn);
    conc__free(ctx);
}

SSL_CTX *
conc__tls_context_ssl(conc_tls_context *ctx, int *server)
{
    *server = ctx->server;
    return ctx->ctx;
}
