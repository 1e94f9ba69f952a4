/* The read side of a connection: who reads the stream, and where what it
 * brings goes.
 *
 * One task at a time holds the read side (ws->rd_owner). A recv that
 * finds the inbox empty and the side free takes it and reads on its own
 * task: it feeds the engine, which queues the answers to pings and to a
 * close at once, and returns the first message, leaving whatever else
 * the bytes held in the engine for the next recv. A message then costs
 * what a stream read costs, with no task switch and no queue between the
 * socket and the caller. A recv cancelled or timed out while it reads
 * loses nothing: the stream keeps the bytes it did not hand out, and the
 * engine keeps a partial frame for the next reader.
 *
 * The background reader holds the side while no recv is outstanding, so
 * pings are answered, the peer's close is seen and keepalive's pongs come
 * in even when nobody receives. What it brings goes to the inbox, bounded
 * by max_queue: when the inbox is full it stops reading, the kernel's
 * buffer fills and the peer's sends wait. It parks (gives the side back)
 * once it has queued a message for a waiting recv, and a recv that ends
 * arms a check, a plain timer callback CONC__WS_KICK_DELAY later, that
 * wakes it only if the side is still free and no recv is outstanding by
 * then: a caller that receives in a loop keeps the side. The check is
 * armed at most once per delay, not once per message, and a connection
 * waiting in recv arms none; a call_soon per message instead cost each
 * message a handle and the loop a turn without a look at epoll.
 *
 * The end (end of stream, a transport error, a server's completed close
 * handshake) is always handled by the reader: whoever reads it records it
 * in ws->rd_end and wakes the reader, which queues what the engine still
 * holds and finishes. A recv then waits on the inbox until it is shut
 * down. */
#include <string.h>

#include "core/internal.h"
#include "ws/io.h"

/* Seconds left until `deadline` (loop time; negative: CONC_FOREVER). */
static double
left(conc_ws *ws, double deadline)
{
    if (deadline < 0)
        return CONC_FOREVER;
    double t = deadline - conc_aio_loop_time(ws->loop);
    return t > 0 ? t : 0;
}

static int
is_message(const struct conc__ws_event *ev)
{
    return ev->type == CONC__WS_EV_TEXT || ev->type == CONC__WS_EV_BINARY;
}

/* Moves a message event's data into *m. */
static void
to_msg(struct conc__ws_event *ev, struct conc__ws_msg *m)
{
    m->kind = ev->type == CONC__WS_EV_TEXT ? CONC_WS_TEXT : CONC_WS_BINARY;
    m->more = ev->more;
    m->data = ev->data;
    conc_buf_init(&ev->data);
}

/* Pongs to their pings, the peer's close code to the record; the engine
 * answered pings itself. */
static void
control(conc_ws *ws, struct conc__ws_event *ev)
{
    if (ev->type == CONC__WS_EV_PONG) {
        conc__ws_pong_received(ws, ev->data.data, ev->data.len);
    } else if (ev->type == CONC__WS_EV_CLOSE) {
        ws->peer_code = ev->code;
        conc_buf_free(&ws->peer_reason);
        ws->peer_reason = ev->data;
        conc_buf_init(&ev->data);
    }
}

/* The reader's hand-off of one event: a message to the inbox (waiting
 * for room). Returns 0, or the error that ends the reader. */
static int
dispatch(conc_ws *ws, struct conc__ws_event *ev)
{
    if (!is_message(ev)) {
        control(ws, ev);
        return 0;
    }
    if (ws->discard)
        return 0;
    struct conc__ws_msg *m = conc__malloc(sizeof *m);
    if (!m)
        return CONC_ENOMEM;
    to_msg(ev, m);
    int r = conc_aio_queue_put(ws->inbox, m, CONC_FOREVER);
    if (r < 0) {
        conc_buf_free(&m->data);
        conc__free(m);
    } else {
        ws->rd_queued++;
    }
    return ws->discard ? 0 : r;
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

/* The engine's next message, the control events before it handled.
 * Returns 1 with *m, 0 when the engine holds none. */
static int
engine_message(conc_ws *ws, struct conc__ws_msg *m)
{
    struct conc__ws_event ev;
    while (conc__ws_conn_next_event(ws->conn, &ev) == 0) {
        if (is_message(&ev)) {
            to_msg(&ev, m);
            return 1;
        }
        control(ws, &ev);
        conc_buf_free(&ev.data);
    }
    return 0;
}

/* Feeds one chunk and sends what the engine answered. Returns 0, or 1
 * when reading ends here. */
static int
feed(conc_ws *ws, const conc_buf *in)
{
    int r = conc__ws_conn_receive(ws->conn, in->data, in->len);
    conc__ws_flush(ws);
    if (r < 0 && r != CONC_ECLOSED && !ws->err)
        ws->err = r; /* the peer broke the protocol: the engine failed it */
    /* Out of memory, the engine may not have queued its close frame (nor
     * the answer to the peer's): the peer would wait for it until its
     * close_timeout. The transport is cut instead. */
    if (r == CONC_ENOMEM) {
        ws->rd_end = CONC__WS_END_CUT;
        return 1;
    }
    if (!conc__ws_conn_close_expected(ws->conn))
        return 0;
    /* Section 7.1.1: the server closes TCP first; a client gives it
     * close_timeout to do so. */
    if (ws->role == CONC__WS_SERVER) {
        ws->rd_end = CONC__WS_END_CLOSED;
        return 1;
    }
    conc__ws_arm_close_timer(ws);
    return 0;
}

/* Reads what the stream has into the engine. Returns 0 when bytes were
 * fed; CONC_ETIMEDOUT or CONC_ECANCELED with nothing consumed; 1 when
 * reading has ended (ws->rd_end says how). */
static int
read_step(conc_ws *ws, double timeout)
{
    int r =
        conc_aio_stream_read(ws->stream, CONC__WS_READ_CHUNK, timeout, &ws->in);
    if (r == CONC_ETIMEDOUT || r == CONC_ECANCELED)
        return r;
    if (r < 0 || ws->in.len == 0) {
        ws->rd_end = CONC__WS_END_CUT;
        return 1;
    }
    r = feed(ws, &ws->in);
    if (ws->in.cap > CONC__WS_IDLE_BUF) /* an idle connection keeps little */
        conc_buf_free(&ws->in);
    return r;
}

void
conc__ws_reader_wake(conc_ws *ws)
{
    if (ws->rd_parked)
        conc_aio_event_set(ws->rd_wake);
}

static void
kick_fired(void *arg)
{
    conc_ws *ws = arg;
    conc_aio_handle_free(ws->rd_kick);
    ws->rd_kick = NULL;
    if (ws->rd_end || (!ws->receiving && ws->rd_owner == CONC__WS_RD_NONE))
        conc__ws_reader_wake(ws);
}

void
conc__ws_reader_kick(conc_ws *ws)
{
    if (!ws->rd_parked || ws->rd_kick)
        return;
    if (conc_aio_call_later(ws->loop, CONC__WS_KICK_DELAY, kick_fired, ws,
                            &ws->rd_kick) < 0)
        conc__ws_reader_wake(ws); /* out of memory: a task switch instead */
}

/* A recv's own read: holds the side until the engine gives a message.
 * Returns 0 with *m, 1 when reading has ended (the reader takes over),
 * CONC_ETIMEDOUT, CONC_ECANCELED. */
static int
read_self(conc_ws *ws, double deadline, struct conc__ws_msg *m)
{
    int r = 0;
    ws->rd_owner = CONC__WS_RD_RECV;
    while (!engine_message(ws, m)) {
        if (ws->rd_end) {
            r = 1;
            break;
        }
        if ((r = read_step(ws, left(ws, deadline))) != 0)
            break;
    }
    ws->rd_owner = CONC__WS_RD_NONE;
    if (r == 1)
        conc__ws_reader_wake(ws);
    return r;
}

/* Moves an inbox item into *m. */
static void
from_inbox(void *item, struct conc__ws_msg *m)
{
    *m = *(struct conc__ws_msg *)item;
    conc__free(item);
}

int
conc__ws_next_message(conc_ws *ws, double deadline, struct conc__ws_msg *m)
{
    void *item;
    for (;;) {
        int r = conc_aio_queue_get_nowait(ws->inbox, &item);
        if (r == 0) {
            from_inbox(item, m);
            return 0;
        }
        if (r != CONC_EEMPTY || ws->rd_owner != CONC__WS_RD_NONE || ws->rd_end)
            break;
        if ((r = read_self(ws, deadline, m)) != 1)
            return r;
    }
    /* The reader reads (or ends the connection): wait for what it
     * queues. */
    int r = conc_aio_queue_get(ws->inbox, left(ws, deadline), &item);
    if (r == CONC_EEMPTY)
        return CONC_ETIMEDOUT;
    if (r == CONC_ECLOSED)
        return conc__ws_fail_end(ws);
    if (r < 0)
        return r;
    from_inbox(item, m);
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
linger(conc_ws *ws)
{
    if (conc_aio_stream_write_eof(ws->stream) < 0)
        return;
    double deadline = conc_aio_loop_time(ws->loop) + ws->close_timeout;
    for (;;) {
        double t = deadline - conc_aio_loop_time(ws->loop);
        if (t <= 0 ||
            conc_aio_stream_read(ws->stream, CONC__WS_READ_CHUNK, t, &ws->in) <
                0 ||
            ws->in.len == 0)
            return;
    }
}

/* Waits until woken (conc__ws_reader_wake). */
static int
park(conc_ws *ws)
{
    ws->rd_parked = 1;
    conc_aio_event_clear(ws->rd_wake);
    int r = conc_aio_event_wait(ws->rd_wake, CONC_FOREVER);
    ws->rd_parked = 0;
    return r;
}

/* One turn of the reader holding the side: queue what a recv left in the
 * engine, read, queue what came. Returns 1 when it queued a message for a
 * recv that waits (the put may have handed it over directly, so the
 * inbox can look empty), which will then read itself next time. */
static int
reader_turn(conc_ws *ws)
{
    size_t queued = ws->rd_queued;
    ws->rd_owner = CONC__WS_RD_READER;
    int r = dispatch_all(ws);
    if (r == 0)
        r = read_step(ws, CONC_FOREVER);
    if (r == 0)
        r = dispatch_all(ws);
    if (r < 0 && !ws->rd_end)
        ws->rd_end = CONC__WS_END_CUT; /* cancelled, out of memory */
    ws->rd_owner = CONC__WS_RD_NONE;
    return ws->receiving && ws->rd_queued != queued;
}

int
conc__ws_reader_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_ws *ws = *(conc_ws *const *)arg;
    int handed = 0;
    while (!ws->rd_end) {
        /* A recv reads itself, or is about to take what was queued for
         * it and read itself next time. */
        if (handed || ws->rd_owner == CONC__WS_RD_RECV) {
            handed = 0;
            if (park(ws) < 0)
                ws->rd_end = CONC__WS_END_CUT;
            continue;
        }
        handed = reader_turn(ws);
    }
    dispatch_all(ws);
    if (ws->rd_end == CONC__WS_END_CLOSED && !ws->err)
        linger(ws); /* not after a failure: cut at once */
    conc_buf_free(&ws->in);
    finish(ws);
    return 0;
}
