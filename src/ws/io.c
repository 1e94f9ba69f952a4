/* A connection's life: opening it over a stream, the reader task that
 * feeds the engine and hands messages to recv, and its end (close timer,
 * abort, the last reference).
 *
 * The reader is the only task that reads the stream. It stops reading
 * while the inbox holds max_queue messages (the put waits), which is the
 * receive side's backpressure: the kernel's buffer fills and the peer's
 * sends wait. */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ws/io.h"

static void
msg_drop(void *item)
{
    struct conc__ws_msg *m = item;
    if (!m)
        return;
    conc_buf_free(&m->data);
    conc__free(m);
}

void
conc__ws_opts_resolve(const conc_ws_opts *in, conc_ws_opts *out)
{
    static const conc_ws_opts zero;
    *out = in ? *in : zero;
    if (!out->max_size)
        out->max_size = CONC__WS_MAX_MESSAGE_DEFAULT;
    if (!out->max_queue)
        out->max_queue = CONC__WS_MAX_QUEUE_DEFAULT;
    if (!out->write_limit)
        out->write_limit = CONC__WS_WRITE_LIMIT_DEFAULT;
    if (out->ping_interval == 0)
        out->ping_interval = CONC__WS_PING_INTERVAL_DEFAULT;
    if (out->ping_timeout == 0)
        out->ping_timeout = CONC__WS_PING_TIMEOUT_DEFAULT;
    if (!(out->close_timeout > 0))
        out->close_timeout = CONC__WS_CLOSE_TIMEOUT_DEFAULT;
    if (!(out->open_timeout > 0))
        out->open_timeout = CONC__WS_OPEN_TIMEOUT_DEFAULT;
}

void
conc__ws_stream_opts(const conc_ws_opts *o, conc_aio_stream_opts *out)
{
    static const conc_aio_stream_opts zero;
    *out = o->stream ? *o->stream : zero;
    out->high_water = o->write_limit;
    out->low_water = o->write_limit / 4;
    /* send queues a whole frame and then drains: the stream must never
     * refuse it half-way. */
    out->write_limit = SIZE_MAX / 2;
}

int
conc__ws_end_error(const conc_ws *ws)
{
    return ws->err ? ws->err : CONC_ECLOSED;
}

int
conc__ws_flush(conc_ws *ws)
{
    int r = conc__ws_conn_take_output(ws->conn, &ws->out);
    if (r < 0 || !ws->out.len)
        return r;
    r = conc_aio_stream_write(ws->stream, ws->out.data, ws->out.len);
    ws->out.len = 0;
    return r;
}

/* The close timer: the peer took too long; end the transport. */
static void
close_timer_fired(void *arg)
{
    conc__ws_abort(arg);
}

void
conc__ws_abort(conc_ws *ws)
{
    conc_aio_stream_close(ws->stream);
    /* A reader waiting for room in the inbox must see the end too. */
    conc_aio_queue_shutdown(ws->inbox, 0);
}

static void
arm_close_timer(conc_ws *ws)
{
    if (!ws->close_timer)
        conc_aio_call_later(ws->loop, ws->close_timeout, close_timer_fired, ws,
                            &ws->close_timer);
}

int
conc__ws_start_close(conc_ws *ws, unsigned code, const char *reason, size_t n)
{
    if (conc__ws_conn_state(ws->conn) == CONC__WS_OPEN) {
        int r = conc__ws_conn_close(ws->conn, code, reason, n);
        if (r == CONC_EINVAL)
            return r;
        ws->close_local = 1;
        conc__ws_flush(ws);
    }
    if (!conc_aio_event_is_set(ws->closed))
        arm_close_timer(ws);
    return 0;
}

/* Hands one event to its place: messages to the inbox (waiting for room),
 * pongs to their pings, the peer's close code to the record. Returns 0,
 * or the error that ends the reader. */
static int
dispatch(conc_ws *ws, struct conc__ws_event *ev)
{
    switch (ev->type) {
    case CONC__WS_EV_TEXT:
    case CONC__WS_EV_BINARY: {
        struct conc__ws_msg *m = conc__malloc(sizeof *m);
        if (!m)
            return CONC_ENOMEM;
        m->kind = ev->type == CONC__WS_EV_TEXT ? CONC_WS_TEXT : CONC_WS_BINARY;
        m->more = ev->more;
        m->data = ev->data;
        conc_buf_init(&ev->data);
        int r = ws->discard ? CONC_ECLOSED
                            : conc_aio_queue_put(ws->inbox, m, CONC_FOREVER);
        if (r < 0)
            msg_drop(m);
        return ws->discard ? 0 : r;
    }
    case CONC__WS_EV_PONG:
        conc__ws_pong_received(ws, ev->data.data, ev->data.len);
        break;
    case CONC__WS_EV_CLOSE:
        ws->peer_code = ev->code;
        conc_buf_free(&ws->peer_reason);
        ws->peer_reason = ev->data;
        conc_buf_init(&ev->data);
        break;
    case CONC__WS_EV_PING:
        break;
    }
    return 0;
}

static int
dispatch_all(conc_ws *ws)
{
    struct conc__ws_event ev;
    int r = 0;
    while (r == 0 && conc__ws_conn_next_event(ws->conn, &ev) == 0) {
        r = dispatch(ws, &ev);
        conc_buf_free(&ev.data);
    }
    return r;
}

/* Feeds one chunk; returns 1 when the reader should stop. */
static int
feed(conc_ws *ws, const conc_buf *in)
{
    int r = conc__ws_conn_receive(ws->conn, in->data, in->len);
    conc__ws_flush(ws);
    if (r < 0 && r != CONC_ECLOSED && !ws->err)
        ws->err = r; /* the peer broke the protocol: the engine failed it */
    if (dispatch_all(ws) < 0)
        return 1;
    /* Out of memory, the engine may not have queued its close frame (nor
     * the answer to the peer's): the peer would wait for it until its
     * close_timeout. The transport is cut instead. */
    if (r == CONC_ENOMEM)
        return 1;
    if (!conc__ws_conn_close_expected(ws->conn))
        return 0;
    /* Section 7.1.1: the server closes TCP first; a client gives it
     * close_timeout to do so. */
    if (ws->role == CONC__WS_SERVER)
        return 1;
    arm_close_timer(ws);
    return 0;
}

/* The reader's end: record why, wake everyone, release the transport. */
static void
finish(conc_ws *ws)
{
    conc__ws_conn_receive_eof(ws->conn);
    dispatch_all(ws);
    if (!ws->err && !ws->peer_code && !ws->close_local)
        ws->err = CONC_EBROKEN; /* the peer vanished without a close */
    if (!ws->peer_code)
        ws->peer_code = CONC__WS_CLOSE_ABNORMAL;
    conc__ws_pings_fail(ws);
    if (ws->close_timer) {
        conc_aio_handle_cancel(ws->close_timer);
        conc_aio_handle_free(ws->close_timer);
        ws->close_timer = NULL;
    }
    conc__ws_keepalive_stop(ws);
    conc_aio_stream_close(ws->stream);
    conc_aio_queue_shutdown(ws->inbox, 0);
    conc_aio_event_set(ws->closed);
}

/* A server's end of a completed close handshake (section 7.1.1: the
 * server closes TCP first). It half-closes, then reads and drops what the
 * client still sends until the client closes too, or close_timeout
 * passes: closing a socket that has unread bytes (a ping the client sent
 * after its close frame) makes the kernel answer with a reset, which can
 * destroy the close frame still on its way to the client. */
static void
linger(conc_ws *ws, conc_buf *in)
{
    if (conc_aio_stream_write_eof(ws->stream) < 0)
        return;
    double deadline = conc_aio_loop_time(ws->loop) + ws->close_timeout;
    for (;;) {
        double left = deadline - conc_aio_loop_time(ws->loop);
        if (left <= 0 ||
            conc_aio_stream_read(ws->stream, CONC__WS_READ_CHUNK, left, in) <
                0 ||
            in->len == 0)
            return;
    }
}

static int
reader_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_ws *ws = *(conc_ws *const *)arg;
    conc_buf in = CONC_BUF_INIT;
    for (;;) {
        int r = conc_aio_stream_read(ws->stream, CONC__WS_READ_CHUNK,
                                     CONC_FOREVER, &in);
        if (r < 0 || in.len == 0)
            break;
        if (feed(ws, &in)) {
            if (ws->role == CONC__WS_SERVER && !ws->err &&
                conc__ws_conn_close_expected(ws->conn))
                linger(ws, &in); /* not after a failure: cut at once */
            break;
        }
        if (in.cap > CONC__WS_IDLE_BUF) /* an idle connection keeps little */
            conc_buf_free(&in);
    }
    conc_buf_free(&in);
    finish(ws);
    return 0;
}

static int
ws_alloc(const conc_ws_opts *o, conc_ws **out)
{
    conc_ws *ws = conc__calloc(1, sizeof *ws);
    if (!ws)
        return CONC_ENOMEM;
    ws->refs = 1;
    ws->write_limit = o->write_limit;
    ws->ping_interval = o->ping_interval;
    ws->ping_timeout = o->ping_timeout;
    ws->close_timeout = o->close_timeout;
    conc_aio_queue_opts qo = {.maxsize = o->max_queue, .drop = msg_drop};
    int r = conc_aio_queue_new(&qo, &ws->inbox);
    if (!r)
        r = conc_aio_lock_new(&ws->send_lock);
    if (!r)
        r = conc_aio_event_new(&ws->closed);
    if (r < 0) {
        conc__ws_unref(ws);
        return r;
    }
    *out = ws;
    return 0;
}

/* A task's reference is dropped when the task is done, whether or not
 * its body ran: a task cancelled before its first step (a loop shutting
 * down) never runs it. */
static int
task_done(void *arg, conc_future *f)
{
    (void)f;
    conc__ws_unref(arg);
    return 0;
}

static int
start_task(conc_ws *ws, conc_task_fn fn, conc_future **out)
{
    int r = conc_aio_loop_create_task(ws->loop, fn, &ws, sizeof ws, NULL, out);
    if (r < 0)
        return r;
    ws->refs++;
    r = conc_future_add_done_callback(*out, task_done, ws);
    if (r < 0) { /* out of memory: the task must not run without its ref */
        ws->refs--;
        conc_aio_task_cancel(*out, NULL);
        conc_future_free(*out);
        *out = NULL;
    }
    return r;
}

static int
start_tasks(conc_ws *ws)
{
    int r = start_task(ws, reader_main, &ws->reader);
    if (r < 0)
        return r;
    conc__ws_keepalive_start(ws);
    return 0;
}

int
conc__ws_open(conc_aio_stream *stream, int own_stream, enum conc__ws_role role,
              const conc_ws_opts *o,
              const struct conc__ws_deflate_params *deflate,
              const char *subprotocol, conc_ws **out)
{
    conc_ws *ws;
    int r = ws_alloc(o, &ws);
    if (r < 0)
        return r;
    ws->role = role;
    struct conc__ws_conn_opts co = {.role = role,
                                    .max_message = o->max_size,
                                    .deflate = deflate,
                                    .stream = 1};
    ws->compressed = deflate != NULL;
    if ((r = conc_aio_get_running_loop(&ws->loop)) < 0 ||
        (r = conc__ws_conn_new(&co, &ws->conn)) < 0 ||
        (subprotocol && !(ws->subprotocol = conc__strdup(subprotocol)))) {
        conc__ws_unref(ws);
        return r < 0 ? r : CONC_ENOMEM;
    }
    ws->stream = stream;
    if ((r = start_tasks(ws)) < 0) {
        conc__ws_unref(ws);
        return r;
    }
    ws->own_stream = own_stream;
    *out = ws;
    return 0;
}

static void
ws_destroy(conc_ws *ws)
{
    conc__ws_keepalive_stop(ws);
    conc__ws_pings_fail(ws);
    if (ws->close_timer) {
        conc_aio_handle_cancel(ws->close_timer);
        conc_aio_handle_free(ws->close_timer);
    }
    if (ws->own_stream)
        conc_aio_stream_free(ws->stream);
    conc_future_free(ws->reader);
    conc_aio_queue_free(ws->inbox);
    conc_aio_lock_free(ws->send_lock);
    conc_aio_event_free(ws->closed);
    conc__ws_conn_free(ws->conn);
    conc_buf_free(&ws->peer_reason);
    conc_buf_free(&ws->partial);
    conc_buf_free(&ws->out);
    conc__free(ws->subprotocol);
    conc__free(ws);
}

void
conc__ws_unref(conc_ws *ws)
{
    if (ws && --ws->refs == 0)
        ws_destroy(ws);
}
