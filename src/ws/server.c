/* conc_ws_serve: a stream server whose handler does the server's opening
 * handshake, runs the caller's handler with the connection, then closes
 * it and waits for its reader before the stream goes away. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ws/io.h"

#define HEAD_END     "\r\n\r\n"
#define HEAD_END_LEN 4
/* Attempts at waiting for the reader's end when the handler's task is
 * being cancelled (each attempt consumes one cancellation). */
#define END_WAIT_TRIES 3

static const struct conc__ws_deflate_opts deflate_defaults;

struct conc_ws_server {
    conc_aio_server *srv;
    conc_aio_loop *loop;
    conc_ws_handler fn;
    void *arg;
    conc_ws_opts o;
    int refs; /* the caller's, and one per running handler */
    int closing;
    conc_ws *conns; /* the connections whose handler runs */
};

static void
track(conc_ws_server *srv, conc_ws *ws)
{
    ws->srv_prev = NULL;
    ws->srv_next = srv->conns;
    if (srv->conns)
        srv->conns->srv_prev = ws;
    srv->conns = ws;
}

static void
untrack(conc_ws_server *srv, conc_ws *ws)
{
    if (ws->srv_prev)
        ws->srv_prev->srv_next = ws->srv_next;
    else
        srv->conns = ws->srv_next;
    if (ws->srv_next)
        ws->srv_next->srv_prev = ws->srv_prev;
}

static const char *
reason_of(unsigned status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 426:
        return "Upgrade Required";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* Answers with plain HTTP and returns 1 (no upgrade), or an error. */
static int
answer(conc_aio_stream *s, const conc_ws_opts *o, const conc_ws_response *rsp)
{
    conc_buf b = CONC_BUF_INIT;
    int r = conc__ws_http_response_build(
        &b, rsp->status, rsp->reason ? rsp->reason : reason_of(rsp->status),
        rsp->headers, rsp->body, rsp->body_len);
    if (!r)
        r = conc_aio_stream_write(s, b.data, b.len);
    if (!r)
        r = conc_aio_stream_drain(s, o->close_timeout);
    conc_buf_free(&b);
    return r < 0 ? r : 1;
}

static int
refuse(conc_aio_stream *s, const conc_ws_opts *o, unsigned status,
       const char *headers, const char *body)
{
    conc_ws_response rsp = {.status = status,
                            .headers = headers,
                            .body = body,
                            .body_len = strlen(body)};
    return answer(s, o, &rsp);
}

static int
origin_ok(const conc_ws_opts *o, const struct conc__ws_upgrade *u)
{
    if (!o->origins)
        return 1;
    for (size_t i = 0; i < o->norigins; i++) {
        const char *want = o->origins[i];
        if (want && strlen(want) == u->origin.n &&
            memcmp(want, u->origin.p, u->origin.n) == 0)
            return 1;
    }
    return 0;
}

/* Runs the process_request hook: 0 goes on, else answer()'s result. */
static int
hook(conc_aio_stream *s, const conc_ws_opts *o, const struct conc__ws_http *h,
     const conc_buf *head)
{
    if (!o->process_request)
        return 0;
    char *path = conc__malloc(h->target.n + 1);
    if (!path)
        return CONC_ENOMEM;
    memcpy(path, h->target.p, h->target.n);
    path[h->target.n] = '\0';
    conc_ws_request req = {path, (const char *)head->data, head->len};
    conc_ws_response rsp = {0};
    int r = o->process_request(o->process_request_arg, &req, &rsp);
    if (r == 1)
        r = answer(s, o, &rsp);
    conc__free(path);
    return r;
}

/* Checks the upgrade itself; 0 or the refusal's result. */
static int
check_upgrade(conc_aio_stream *s, const conc_ws_opts *o,
              const struct conc__ws_http *h, struct conc__ws_upgrade *u)
{
    static const char version[] = "Sec-WebSocket-Version: 13\r\n";
    static const char upgrade[] =
        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
    int r = conc__ws_upgrade_check(h, u);
    if (r == CONC_ENOENT)
        return refuse(s, o, 426, upgrade, "WebSocket upgrade expected\n");
    if (r == CONC_EVALUE)
        return refuse(s, o, 426, version, "Unsupported WebSocket version\n");
    if (r < 0)
        return refuse(s, o, 400, NULL, "Invalid WebSocket handshake\n");
    if (!origin_ok(o, u))
        return refuse(s, o, 403, NULL, "Origin not allowed\n");
    return 0;
}

struct agreed {
    const char *sub;
    int has_deflate;
    struct conc__ws_deflate_params params;
    conc_buf ext;
};

static int
negotiate(const conc_ws_opts *o, const struct conc__ws_http *h,
          struct agreed *a)
{
    if (o->nsubprotocols)
        conc__ws_subprotocol_select(h, (const char *const *)o->subprotocols,
                                    o->nsubprotocols, &a->sub);
    if (o->no_compression)
        return 0;
    int r = conc__ws_deflate_accept_offer(h, &deflate_defaults, &a->params,
                                          &a->ext);
    a->has_deflate = r == 0;
    if (!r && (r = conc_buf_append(&a->ext, "", 1)) < 0)
        return r;
    return r == CONC_ENOENT ? 0 : r;
}

static int
accept_upgrade(conc_aio_stream *s, const conc_ws_opts *o,
               const struct conc__ws_http *h, const struct conc__ws_upgrade *u,
               conc_ws **out)
{
    struct agreed a = {.ext = CONC_BUF_INIT};
    char accept[CONC__WS_ACCEPT_LEN + 1];
    conc_buf rsp = CONC_BUF_INIT;
    int r = negotiate(o, h, &a);
    if (r == CONC_EPROTO) {
        conc_buf_free(&a.ext);
        return refuse(s, o, 400, NULL, "Invalid extension header\n");
    }
    if (!r)
        r = conc__ws_accept(u->key.p, u->key.n, accept);
    if (!r)
        r = conc__ws_response_build(&rsp, accept, a.sub,
                                    a.has_deflate ? (char *)a.ext.data : NULL,
                                    o->extra_headers);
    if (!r)
        r = conc_aio_stream_write(s, rsp.data, rsp.len);
    if (!r)
        r = conc__ws_open(s, 0, CONC__WS_SERVER, o,
                          a.has_deflate ? &a.params : NULL, a.sub, out);
    conc_buf_free(&a.ext);
    conc_buf_free(&rsp);
    return r;
}

/* The opening handshake: 0 with *out, 1 if answered with plain HTTP, or
 * an error (the connection is dropped). */
static int
handshake(conc_aio_stream *s, const conc_ws_opts *o, conc_ws **out)
{
    conc_buf head = CONC_BUF_INIT;
    struct conc__ws_http *h = conc__malloc(sizeof *h);
    struct conc__ws_upgrade u;
    size_t used;
    int r = h ? conc_aio_stream_readuntil(s, HEAD_END, HEAD_END_LEN,
                                          o->open_timeout, &head)
              : CONC_ENOMEM;
    if (!r &&
        conc__ws_http_parse((const char *)head.data, head.len, 1, h, &used) < 0)
        r = refuse(s, o, 400, NULL, "Invalid HTTP request\n");
    if (!r)
        r = hook(s, o, h, &head);
    if (!r)
        r = check_upgrade(s, o, h, &u);
    if (!r)
        r = accept_upgrade(s, o, h, &u, out);
    conc__free(h);
    conc_buf_free(&head);
    return r;
}

static void
server_unref(conc_ws_server *srv)
{
    if (--srv->refs == 0)
        conc__free(srv);
}

/* After the caller's handler: close, and wait for the reader to be done
 * with the stream the stream server is about to free. */
static void
end_connection(conc_ws *ws)
{
    /* Nobody receives any more: a reader waiting for room in the inbox
     * must go on reading, to see the peer's close. */
    ws->discard = 1;
    conc_aio_queue_shutdown(ws->inbox, 1);
    if (conc_ws_close(ws, CONC__WS_CLOSE_NORMAL, NULL) < 0)
        conc__ws_abort(ws);
    for (int i = 0; i < END_WAIT_TRIES && !conc_aio_event_is_set(ws->closed);
         i++)
        conc_aio_event_wait(ws->closed, CONC_FOREVER);
    ws->server_owned = 0;
    conc__ws_unref(ws);
}

static int
serve_one(void *arg, conc_aio_stream *s)
{
    conc_ws_server *srv = arg;
    conc_ws *ws = NULL;
    srv->refs++;
    int r = handshake(s, &srv->o, &ws);
    if (r == 0) {
        ws->server_owned = 1;
        track(srv, ws);
        if (srv->closing)
            conc__ws_start_close(ws, CONC__WS_CLOSE_GOING_AWAY, NULL, 0);
        r = srv->fn(srv->arg, ws);
        untrack(srv, ws);
        end_connection(ws);
    } else if (r == 1) {
        r = 0;
    }
    server_unref(srv);
    return r;
}

typedef int (*start_fn)(conc_ws_server *srv, const char *where, int port,
                        const conc_aio_stream_opts *so);

static int
start_tcp(conc_ws_server *srv, const char *host, int port,
          const conc_aio_stream_opts *so)
{
    return conc_aio_start_server(srv->loop, host, port, serve_one, srv, so,
                                 &srv->srv);
}

static int
start_unix(conc_ws_server *srv, const char *path, int port,
           const conc_aio_stream_opts *so)
{
    (void)port;
    return conc_aio_start_unix_server(srv->loop, path, serve_one, srv, so,
                                      &srv->srv);
}

static int
serve(conc_aio_loop *loop, start_fn start, const char *where, int port,
      conc_ws_handler fn, void *arg, const conc_ws_opts *opts,
      conc_ws_server **out)
{
    if (!loop || !fn || !out)
        return CONC_EINVAL;
    conc_ws_server *srv = conc__calloc(1, sizeof *srv);
    if (!srv)
        return CONC_ENOMEM;
    *srv = (conc_ws_server){.loop = loop, .fn = fn, .arg = arg, .refs = 1};
    conc__ws_opts_resolve(opts, &srv->o);
    conc_aio_stream_opts so;
    conc__ws_stream_opts(&srv->o, &so);
    int r = start(srv, where, port, &so);
    if (r < 0) {
        conc__free(srv);
        return r;
    }
    *out = srv;
    return 0;
}

int
conc_ws_serve(conc_aio_loop *loop, const char *host, int port,
              conc_ws_handler fn, void *arg, const conc_ws_opts *opts,
              conc_ws_server **out)
{
    return serve(loop, start_tcp, host, port, fn, arg, opts, out);
}

int
conc_ws_unix_serve(conc_aio_loop *loop, const char *path, conc_ws_handler fn,
                   void *arg, const conc_ws_opts *opts, conc_ws_server **out)
{
    if (!path)
        return CONC_EINVAL;
    return serve(loop, start_unix, path, 0, fn, arg, opts, out);
}

int
conc_ws_server_port(conc_ws_server *srv)
{
    return srv ? conc_aio_server_port(srv->srv) : CONC_EINVAL;
}

int
conc_ws_server_close(conc_ws_server *srv)
{
    if (!srv)
        return CONC_EINVAL;
    srv->closing = 1;
    for (conc_ws *ws = srv->conns; ws; ws = ws->srv_next)
        conc__ws_start_close(ws, CONC__WS_CLOSE_GOING_AWAY, NULL, 0);
    return srv->srv ? conc_aio_server_close(srv->srv) : 0;
}

int
conc_ws_server_wait_closed(conc_ws_server *srv, double timeout)
{
    if (!srv || isnan(timeout))
        return CONC_EINVAL;
    return conc_aio_server_wait_closed(srv->srv, timeout);
}

/* The last step of conc_ws_server_free, one loop turn later: a handler
 * task accepted just before the free has started (and taken its
 * reference) by then. */
static void
release_later(void *arg)
{
    server_unref(arg);
}

void
conc_ws_server_free(conc_ws_server *srv)
{
    if (!srv)
        return;
    conc_ws_server_close(srv);
    /* Once every handler has returned nothing can reach srv any more;
     * otherwise a handler accepted just before may not have started. */
    int idle = conc_aio_server_wait_closed(srv->srv, 0) == 0;
    conc_aio_server_free(srv->srv);
    srv->srv = NULL;
    if (idle || conc_aio_call_soon(srv->loop, release_later, srv, NULL) < 0)
        server_unref(srv);
}
