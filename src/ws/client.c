/* conc_ws_connect: the URL, the stream, the client's opening handshake. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/tls.h"
#include "core/internal.h"
#include "ws/io.h"

#define WS_PORT      80
#define WSS_PORT     443
#define HOST_MAX     256
#define HEAD_END     "\r\n\r\n"
#define HEAD_END_LEN 4

static const struct conc__ws_deflate_opts deflate_defaults;

struct url {
    int unix_socket;
    int tls; /* wss:// */
    int port;
    char host[HOST_MAX]; /* a name or address, without brackets */
    const char *path;    /* into the URL; "" becomes "/" */
    const char *unix_path;
};

static int
url_authority(const char *a, size_t n, int default_port, struct url *u)
{
    const char *host = a, *colon;
    size_t hn = n;
    u->port = default_port;
    if (n && a[0] == '[') { /* [IPv6]:port */
        const char *close = memchr(a, ']', n);
        if (!close)
            return CONC_EINVAL;
        host = a + 1;
        hn = (size_t)(close - host);
        colon = close + 1 < a + n && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(a, ':', n);
        if (colon)
            hn = (size_t)(colon - a);
    }
    if (colon) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (end != a + n || p < 0 || p > 65535 || end == colon + 1)
            return CONC_EINVAL;
        u->port = (int)p;
    }
    if (!hn || hn >= HOST_MAX)
        return CONC_EINVAL;
    memcpy(u->host, host, hn);
    u->host[hn] = '\0';
    return 0;
}

static int
url_parse(const char *url, struct url *u)
{
    static const char unix_scheme[] = "ws+unix://";
    memset(u, 0, sizeof *u);
    if (strncmp(url, unix_scheme, sizeof unix_scheme - 1) == 0) {
        u->unix_socket = 1;
        u->unix_path = url + sizeof unix_scheme - 1;
        u->path = "/";
        strcpy(u->host, "localhost");
        return *u->unix_path ? 0 : CONC_EINVAL;
    }
    int port;
    const char *a;
    if (strncmp(url, "ws://", 5) == 0)
        a = url + 5, port = WS_PORT;
    else if (strncmp(url, "wss://", 6) == 0)
        a = url + 6, port = WSS_PORT, u->tls = 1;
    else
        return CONC_EINVAL;
    size_t n = strcspn(a, "/?#");
    if (a[n] == '#')
        return CONC_EINVAL;
    u->path = a + n;
    return url_authority(a, n, port, u);
}

/* The Host header: the name, bracketed for IPv6, with a port that is not
 * the scheme's. */
static void
host_header(const struct url *u, const char *url, char *out, size_t cap)
{
    int v6 = strchr(u->host, ':') != NULL;
    int dflt = u->unix_socket ||
               u->port == (strncmp(url, "wss:", 4) == 0 ? WSS_PORT : WS_PORT);
    if (dflt)
        snprintf(out, cap, v6 ? "[%s]" : "%s", u->host);
    else
        snprintf(out, cap, v6 ? "[%s]:%d" : "%s:%d", u->host, u->port);
}

static double
left(double deadline)
{
    if (deadline < 0)
        return CONC_FOREVER;
    conc_aio_loop *loop;
    if (conc_aio_get_running_loop(&loop) < 0)
        return 0;
    double t = deadline - conc_aio_loop_time(loop);
    return t > 0 ? t : 0;
}

static int
send_request(conc_aio_stream *s, const struct url *u, const char *url,
             const conc_ws_opts *o, char key[CONC__WS_KEY_LEN + 1])
{
    char host[HOST_MAX + 16];
    conc_buf ext = CONC_BUF_INIT, req = CONC_BUF_INIT;
    host_header(u, url, host, sizeof host);
    int r = conc__ws_key_new(key);
    if (!r && !o->no_compression)
        r = conc__ws_deflate_offer(&ext, &deflate_defaults);
    if (!r && ext.len) /* a C string for the request's builder */
        r = conc_buf_append(&ext, "", 1);
    struct conc__ws_request_opts ro = {
        .host = host,
        .path = *u->path ? u->path : "/",
        .origin = o->origin,
        .subprotocols = o->subprotocols,
        .nsubprotocols = o->nsubprotocols,
        .extensions = ext.len ? (const char *)ext.data : NULL,
        .extra_headers = o->extra_headers,
    };
    if (!r)
        r = conc__ws_request_build(&req, &ro, key);
    if (!r)
        r = conc_aio_stream_write(s, req.data, req.len);
    conc_buf_free(&ext);
    conc_buf_free(&req);
    return r;
}

/* Reads and checks the 101; on success fills params, has_deflate, sub. */
static int
read_response(conc_aio_stream *s, const conc_ws_opts *o, const char *key,
              double deadline, struct conc__ws_deflate_params *params,
              int *has_deflate, const char **sub)
{
    conc_buf head = CONC_BUF_INIT;
    struct conc__ws_http *h = conc__malloc(sizeof *h);
    size_t used;
    int r = h ? 0 : CONC_ENOMEM;
    if (!r)
        r = conc_aio_stream_readuntil(s, HEAD_END, HEAD_END_LEN, left(deadline),
                                      &head);
    /* Each refusal's message says how far the answer got: h->status is
     * only read once a head was parsed. */
    if (r == CONC_EINCOMPLETE)
        r = conc_fail(CONC_EPROTO, "WebSocket handshake failed: the server "
                                   "closed the connection before answering");
    else if (r == CONC_ELIMIT)
        r = conc_fail(CONC_EPROTO,
                      "WebSocket handshake failed: the server's "
                      "answer has no end of head within the limit");
    else if (!r && conc__ws_http_parse((const char *)head.data, head.len, 0, h,
                                       &used) < 0)
        r = conc_fail(CONC_EPROTO, "WebSocket handshake failed: the server's "
                                   "answer is not an HTTP/1.1 response");
    else if (!r && (r = conc__ws_response_check(
                        h, key, (const char *const *)o->subprotocols,
                        o->nsubprotocols, sub)) == CONC_EPROTO)
        conc_fail(r,
                  h->status == 101
                      ? "WebSocket handshake failed: the server answered %u "
                        "without a valid upgrade (Upgrade, Connection, "
                        "Sec-WebSocket-Accept or subprotocol)"
                      : "WebSocket handshake failed: the server answered %u",
                  h->status);
    if (!r && !o->no_compression) {
        r = conc__ws_deflate_accept_response(h, &deflate_defaults, params);
        *has_deflate = r == 0;
        if (r == CONC_ENOENT)
            r = 0;
    }
    conc__free(h);
    conc_buf_free(&head);
    return r;
}

static int
open_stream(const struct url *u, const conc_ws_opts *o, double deadline,
            conc_aio_stream **s)
{
    conc_aio_stream_opts so;
    conc__ws_stream_opts(o, &so);
    if (u->unix_socket)
        return conc_aio_open_unix_connection(u->unix_path, &so, left(deadline),
                                             s);
    if (!u->tls && so.ssl)
        return conc_fail(CONC_EINVAL, "a TLS context was given for a ws:// "
                                      "URL: use wss://");
    conc_tls_context *own = NULL;
    if (u->tls && !so.ssl) { /* python websockets' default context */
        int r = conc_tls_context_new(NULL, &own);
        if (r < 0)
            return r;
        so.ssl = own;
    }
    int r = conc_aio_open_connection(u->host, u->port, &so, left(deadline), s);
    conc_tls_context_free(own); /* the stream keeps its own reference */
    return r;
}

int
conc_ws_connect(const char *url, const conc_ws_opts *opts, double timeout,
                conc_ws **out)
{
    if (!url || !out || isnan(timeout))
        return CONC_EINVAL;
    conc_aio_loop *loop;
    conc_ws_opts o;
    struct url u;
    int r = conc_aio_get_running_loop(&loop);
    if (r < 0)
        return r;
    if ((r = url_parse(url, &u)) < 0)
        return r;
    conc__ws_opts_resolve(opts, &o);
    double deadline = timeout == CONC_FOREVER ? -1
                                              : conc_aio_loop_time(loop) +
                                                    (timeout > 0 ? timeout : 0);
    conc_aio_stream *s;
    if ((r = open_stream(&u, &o, deadline, &s)) < 0)
        return r;
    char key[CONC__WS_KEY_LEN + 1];
    struct conc__ws_deflate_params params;
    int has_deflate = 0;
    const char *sub = NULL;
    r = send_request(s, &u, url, &o, key);
    if (!r)
        r = read_response(s, &o, key, deadline, &params, &has_deflate, &sub);
    if (!r)
        r = conc__ws_open(s, 1, CONC__WS_CLIENT, &o,
                          has_deflate ? &params : NULL, sub, out);
    if (r < 0)
        conc_aio_stream_free(s);
    return r;
}
