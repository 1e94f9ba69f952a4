/* Receiving, pings, closing, and what a caller may ask of a connection. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "core/internal.h"
#include "ws/io.h"

/* Bytes of the payload of a ping made by conc_ws_ping(ws, NULL, 0). */
#define PING_RANDOM_LEN 4

/* The connection's end, with a message that says how it ended (python
 * websockets' ConnectionClosed text). */
int
conc__ws_fail_end(const conc_ws *ws)
{
    int err = conc__ws_end_error(ws);
    unsigned code = ws->peer_code;
    if (code == CONC__WS_CLOSE_ABNORMAL)
        return conc_fail(err,
                         "WebSocket connection ended without a close "
                         "frame (1006): %s",
                         conc_strerror(err));
    return conc_fail(
        err, "WebSocket connection closed: received %u %.*s", code,
        (int)(ws->peer_reason.len < 123 ? ws->peer_reason.len : 123),
        ws->peer_reason.data ? (const char *)ws->peer_reason.data : "");
}

/* Joins pieces into ws->partial until the message's last one. */
static int
assemble(conc_ws *ws, double deadline)
{
    for (;;) {
        struct conc__ws_msg m;
        int r = conc__ws_next_message(ws, deadline, &m);
        if (r < 0)
            return r;
        if (!ws->partial_open) {
            ws->partial_open = 1;
            ws->partial_kind = m.kind;
            ws->partial.len = 0;
        }
        if (!ws->partial.len && !ws->partial.cap) { /* take it, no copy */
            ws->partial = m.data;
            conc_buf_init(&m.data);
        } else if (m.data.len &&
                   conc_buf_append(&ws->partial, m.data.data, m.data.len)) {
            conc_buf_free(&m.data);
            return CONC_ENOMEM;
        }
        conc_buf_free(&m.data);
        if (!m.more)
            return 0;
    }
}

/* The loop time a timeout ends at; negative for CONC_FOREVER. */
static double
deadline_of(conc_ws *ws, double timeout)
{
    if (timeout == CONC_FOREVER)
        return -1;
    return conc_aio_loop_time(ws->loop) + (timeout > 0 ? timeout : 0);
}

int
conc_ws_recv(conc_ws *ws, double timeout, conc_ws_kind *kind, conc_buf *out)
{
    if (!ws || !out || isnan(timeout))
        return CONC_EINVAL;
    if (ws->receiving)
        return CONC_ESTATE;
    ws->receiving = 1;
    int r = assemble(ws, deadline_of(ws, timeout));
    ws->receiving = 0;
    conc__ws_reader_kick(ws);
    if (r < 0)
        return r;
    if (kind)
        *kind = ws->partial_kind;
    conc_buf_free(out);
    *out = ws->partial;
    conc_buf_init(&ws->partial);
    ws->partial_open = 0;
    return 0;
}

int
conc_ws_recv_stream(conc_ws *ws, double timeout, conc_ws_kind *kind,
                    conc_buf *out, int *fin)
{
    if (!ws || !out || !fin || isnan(timeout))
        return CONC_EINVAL;
    if (ws->receiving)
        return CONC_ESTATE;
    struct conc__ws_msg m;
    if (ws->partial_open) { /* what a timed-out recv had joined */
        if (kind)
            *kind = ws->partial_kind;
        conc_buf_free(out);
        *out = ws->partial;
        conc_buf_init(&ws->partial);
        ws->partial_open = 0;
        *fin = 0;
        return 0;
    }
    ws->receiving = 1;
    int r = conc__ws_next_message(ws, deadline_of(ws, timeout), &m);
    ws->receiving = 0;
    conc__ws_reader_kick(ws);
    if (r < 0)
        return r;
    if (kind)
        *kind = m.kind;
    *fin = !m.more;
    conc_buf_free(out);
    *out = m.data;
    return 0;
}

void
conc__ws_pong_received(conc_ws *ws, const uint8_t *p, size_t n)
{
    struct conc__ws_ping *q = ws->pings;
    while (q && !(q->n == n && (n == 0 || memcmp(q->data, p, n) == 0)))
        q = q->next;
    if (!q)
        return; /* unsolicited: a heartbeat */
    struct conc__ws_ping *end = q->next;
    while (ws->pings != end) {
        q = ws->pings;
        ws->pings = q->next;
        conc_future_set_result(q->pong, NULL, 0);
        conc_future_free(q->pong);
        conc__free(q);
    }
}

void
conc__ws_pings_fail(conc_ws *ws)
{
    while (ws->pings) {
        struct conc__ws_ping *q = ws->pings;
        ws->pings = q->next;
        conc_future_set_exception(q->pong, conc__ws_end_error(ws),
                                  "the WebSocket connection ended");
        conc_future_free(q->pong);
        conc__free(q);
    }
}

static int
ping_payload(conc_ws *ws, struct conc__ws_ping *q, const void *data, size_t n)
{
    if (data || n) {
        memcpy(q->data, data, n);
        q->n = n;
    } else {
        q->n = PING_RANDOM_LEN;
        if (RAND_bytes(q->data, PING_RANDOM_LEN) != 1)
            return -EIO;
    }
    for (struct conc__ws_ping *o = ws->pings; o; o = o->next)
        if (o->n == q->n && memcmp(o->data, q->data, q->n) == 0)
            return CONC_EEXIST;
    return 0;
}

int
conc_ws_ping(conc_ws *ws, const void *data, size_t n, conc_future **pong)
{
    if (!ws || !pong || (!data && n) || n > CONC__WS_CONTROL_MAX)
        return CONC_EINVAL;
    if (conc__ws_conn_state(ws->conn) != CONC__WS_OPEN)
        return conc__ws_end_error(ws);
    struct conc__ws_ping *q = conc__calloc(1, sizeof *q);
    if (!q)
        return CONC_ENOMEM;
    int r = ping_payload(ws, q, data, n);
    if (!r)
        r = conc_future_new(&q->pong);
    if (!r)
        r = conc__ws_conn_ping(ws->conn, q->data, q->n);
    if (r < 0) {
        conc_future_free(q->pong);
        conc__free(q);
        return r == CONC_ESTATE || r == CONC_ECLOSED ? conc__ws_end_error(ws)
                                                     : r;
    }
    conc__ws_flush(ws);
    struct conc__ws_ping **tail = &ws->pings;
    while (*tail)
        tail = &(*tail)->next;
    *tail = q;
    *pong = conc_future_ref(q->pong);
    return 0;
}

int
conc_ws_close(conc_ws *ws, unsigned code, const char *reason)
{
    if (!ws)
        return CONC_EINVAL;
    size_t n = reason ? strlen(reason) : 0;
    int r = conc__ws_start_close(ws, code, reason, n);
    if (r < 0)
        return r;
    /* The close timer bounds this wait. */
    return conc_aio_event_wait(ws->closed, CONC_FOREVER);
}

int
conc_ws_wait_closed(conc_ws *ws, double timeout)
{
    if (!ws || isnan(timeout))
        return CONC_EINVAL;
    int r = conc_aio_event_wait(ws->closed, timeout);
    return r;
}

int
conc_ws_close_code(conc_ws *ws, unsigned *code, conc_buf *reason)
{
    if (!ws || !code)
        return CONC_EINVAL;
    if (reason) {
        conc_buf b = CONC_BUF_INIT;
        if (ws->peer_reason.len &&
            conc_buf_append(&b, ws->peer_reason.data, ws->peer_reason.len) < 0)
            return CONC_ENOMEM;
        conc_buf_free(reason);
        *reason = b;
    }
    *code = ws->peer_code;
    return 0;
}

int
conc_ws_is_open(conc_ws *ws)
{
    if (!ws)
        return CONC_EINVAL;
    return conc__ws_conn_state(ws->conn) == CONC__WS_OPEN &&
           !conc_aio_event_is_set(ws->closed);
}

const char *
conc_ws_subprotocol(conc_ws *ws)
{
    return ws ? ws->subprotocol : NULL;
}

int
conc_ws_compressed(conc_ws *ws)
{
    return ws ? ws->compressed : CONC_EINVAL;
}

conc_aio_stream *
conc_ws_stream(conc_ws *ws)
{
    return ws ? ws->stream : NULL;
}

void
conc_ws_free(conc_ws *ws)
{
    if (!ws || ws->server_owned)
        return;
    if (!conc_aio_event_is_set(ws->closed))
        conc__ws_abort(ws);
    conc__ws_unref(ws);
}
