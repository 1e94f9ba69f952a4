/* A connection's life: opening it over a stream with its reader task
 * (read.c: who reads the stream), and its end (close timer, abort, the
 * last reference). */
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
    /* A reader waiting for room in the inbox must see the end too, and a
     * parked one must wake to finish. */
    conc_aio_queue_shutdown(ws->inbox, 0);
    conc__ws_reader_wake(ws);
}

void
conc__ws_arm_close_timer(conc_ws *ws)
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
        conc__ws_arm_close_timer(ws);
    /* The reader must read the answer if no recv is outstanding. */
    if (ws->rd_owner == CONC__WS_RD_NONE && !ws->receiving)
        conc__ws_reader_wake(ws);
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
    if (!r)
        r = conc_aio_event_new(&ws->rd_wake);
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
    int r = start_task(ws, conc__ws_reader_main, &ws->reader);
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
    if (ws->rd_kick) {
        conc_aio_handle_cancel(ws->rd_kick);
        conc_aio_handle_free(ws->rd_kick);
    }
    if (ws->own_stream)
        conc_aio_stream_free(ws->stream);
    conc_future_free(ws->reader);
    conc_aio_queue_free(ws->inbox);
    conc_aio_lock_free(ws->send_lock);
    conc_aio_event_free(ws->closed);
    conc_aio_event_free(ws->rd_wake);
    conc__ws_conn_free(ws->conn);
    conc_buf_free(&ws->peer_reason);
    conc_buf_free(&ws->partial);
    conc_buf_free(&ws->out);
    conc_buf_free(&ws->in);
    conc__free(ws->subprotocol);
    conc__free(ws);
}

void
conc__ws_unref(conc_ws *ws)
{
    if (ws && --ws->refs == 0)
        ws_destroy(ws);
}
