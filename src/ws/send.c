/* Sending: whole messages, fragmented ones (from parts given at once or
 * from a producer), and the write limit.
 *
 * A sender holds the connection's send lock for its whole message, so
 * the frames of two messages never interleave even while one of them
 * waits for the buffer to drain between fragments, or for its producer.
 * A fragmented message that stops after its first frame cannot be taken
 * back nor finished by another sender, so the connection is failed with
 * 1011 (abandon). */
#include <math.h>

#include "ws/io.h"

/* Seconds left until `deadline` (loop time), CONC_FOREVER for none. */
static double
left(conc_ws *ws, double deadline)
{
    if (deadline < 0)
        return CONC_FOREVER;
    double t = deadline - conc_aio_loop_time(ws->loop);
    return t > 0 ? t : 0;
}

static double
deadline_of(conc_ws *ws, double timeout)
{
    if (timeout == CONC_FOREVER)
        return -1;
    return conc_aio_loop_time(ws->loop) + (timeout > 0 ? timeout : 0);
}

/* Maps what the engine or the stream said once the connection is ending
 * to the connection's end. */
static int
end_of(conc_ws *ws, int r)
{
    if (r == CONC_ESTATE || r == CONC_ECLOSED || r == -EPIPE ||
        r == -ECONNRESET)
        return conc__ws_end_error(ws);
    return r;
}

/* Flushes and, past the write limit, waits for the buffer to drain. */
static int
flush_and_drain(conc_ws *ws, double deadline)
{
    int r = conc__ws_flush(ws);
    size_t rd, wr;
    if (r < 0)
        return end_of(ws, r);
    conc_aio_stream_buffered(ws->stream, &rd, &wr);
    if (wr <= ws->write_limit)
        return 0;
    r = conc_aio_stream_drain(ws->stream, left(ws, deadline));
    return r == CONC_ETIMEDOUT || r == CONC_ECANCELED ? r : end_of(ws, r);
}

/* What follows the engine's answer to a frame to send. An engine that
 * failed the connection just now (out of memory in the compressor) has
 * queued its close frame (1011): it goes out and the close handshake runs,
 * bounded by close_timeout, as after conc_ws_close; left queued, nothing
 * would ever end the connection. */
static int
after_queue(conc_ws *ws, int r, double deadline)
{
    if (r >= 0)
        return flush_and_drain(ws, deadline);
    if (r != CONC_ESTATE && r != CONC_ECLOSED &&
        conc__ws_conn_state(ws->conn) != CONC__WS_OPEN) {
        conc__ws_flush(ws);
        conc__ws_start_close(ws, 0, NULL, 0);
    }
    return end_of(ws, r);
}

static int
check_send(conc_ws *ws, conc_ws_kind kind, double timeout)
{
    if (!ws || isnan(timeout) ||
        (kind != CONC_WS_TEXT && kind != CONC_WS_BINARY))
        return CONC_EINVAL;
    return 0;
}

static enum conc__ws_opcode
opcode_of(conc_ws_kind kind)
{
    return kind == CONC_WS_TEXT ? CONC__WS_TEXT : CONC__WS_BINARY;
}

static int
lock_send(conc_ws *ws, double deadline)
{
    int r = conc_aio_lock_acquire(ws->send_lock, left(ws, deadline));
    return r == CONC_EEMPTY || r == CONC_EBUSY ? CONC_ETIMEDOUT : r;
}

int
conc_ws_send(conc_ws *ws, conc_ws_kind kind, const void *data, size_t n,
             double timeout)
{
    int r = check_send(ws, kind, timeout);
    if (r < 0)
        return r;
    if (!data && n)
        return CONC_EINVAL;
    double deadline = deadline_of(ws, timeout);
    if ((r = lock_send(ws, deadline)) < 0)
        return r;
    r = after_queue(ws, conc__ws_conn_send(ws->conn, opcode_of(kind), data, n),
                    deadline);
    conc_aio_lock_release(ws->send_lock);
    return r;
}

static const char unfinished_reason[] = "message not finished";

/* A fragmented message under way: its opcode, the frames queued so far,
 * and whether its last one was. */
struct frags {
    enum conc__ws_opcode op;
    size_t sent;
    int done;
};

/* Queues the next frame of the message and drains past the limit. */
static int
send_fragment(conc_ws *ws, struct frags *f, const void *p, size_t n, int fin,
              double deadline)
{
    int r = conc__ws_conn_send_fragment(
        ws->conn, f->sent ? CONC__WS_CONT : f->op, p, n, fin);
    if (r < 0)
        return after_queue(ws, r, deadline);
    f->sent++;
    f->done = fin;
    return flush_and_drain(ws, deadline);
}

/* Called with the send lock held, after the message ended with `r`: a
 * message begun and not finished leaves the engine in its middle, which
 * no later message can follow, so the connection is failed with 1011, as
 * python websockets does when a fragmented send fails. */
static void
abandon_unfinished(conc_ws *ws, const struct frags *f, int r)
{
    if (r < 0 && f->sent && !f->done && conc_ws_is_open(ws) == 1)
        conc__ws_start_close(ws, CONC__WS_CLOSE_INTERNAL, unfinished_reason,
                             sizeof unfinished_reason - 1);
}

int
conc_ws_send_parts(conc_ws *ws, conc_ws_kind kind, const conc_ws_part *parts,
                   size_t n, double timeout)
{
    int r = check_send(ws, kind, timeout);
    if (r < 0)
        return r;
    if (!parts || !n)
        return CONC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!parts[i].data && parts[i].len)
            return CONC_EINVAL;
    double deadline = deadline_of(ws, timeout);
    if ((r = lock_send(ws, deadline)) < 0)
        return r;
    struct frags f = {opcode_of(kind), 0, 0};
    for (size_t i = 0; i < n && r == 0; i++)
        r = send_fragment(ws, &f, parts[i].data, parts[i].len, i + 1 == n,
                          deadline);
    abandon_unfinished(ws, &f, r);
    conc_aio_lock_release(ws->send_lock);
    return r;
}

/* Asks the producer for parts and sends each until the last; no deadline
 * here, the caller's asyncio timeout bounds every wait. */
static int
stream_parts(conc_ws *ws, struct frags *f, conc_ws_producer fn, void *arg)
{
    conc_buf part = CONC_BUF_INIT;
    int r = 0, last = 0;
    while (!last) {
        part.len = 0;
        if ((r = fn(arg, &part, &last)) < 0)
            break;
        r = send_fragment(ws, f, part.data, part.len, last != 0, -1);
        if (r < 0)
            break;
    }
    conc_buf_free(&part);
    return r < 0 ? r : 0;
}

int
conc_ws_send_stream(conc_ws *ws, conc_ws_kind kind, conc_ws_producer fn,
                    void *arg, double timeout)
{
    int r = check_send(ws, kind, timeout);
    if (r < 0)
        return r;
    if (!fn)
        return CONC_EINVAL;
    if (timeout < 0 && timeout != CONC_FOREVER)
        timeout = 0;
    conc_aio_timeout *t;
    if ((r = conc_aio_timeout_enter(timeout, &t)) < 0)
        return r;
    struct frags f = {opcode_of(kind), 0, 0};
    if ((r = lock_send(ws, -1)) == 0) {
        /* an ended connection is said before the producer is asked */
        r = conc_ws_is_open(ws) == 1 ? stream_parts(ws, &f, fn, arg)
                                     : conc__ws_end_error(ws);
        abandon_unfinished(ws, &f, r);
        conc_aio_lock_release(ws->send_lock);
    }
    return conc_aio_timeout_exit(t, r);
}

int
conc_ws_pong(conc_ws *ws, const void *data, size_t n)
{
    if (!ws || (!data && n) || n > CONC__WS_CONTROL_MAX)
        return CONC_EINVAL;
    int r = conc__ws_conn_pong(ws->conn, data, n);
    if (r < 0)
        return end_of(ws, r);
    return end_of(ws, conc__ws_flush(ws));
}
