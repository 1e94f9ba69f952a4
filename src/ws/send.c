/* Sending: whole messages, fragmented ones, and the write limit.
 *
 * A sender holds the connection's send lock for its whole message, so
 * the frames of two messages never interleave even while one of them
 * waits for the buffer to drain between fragments. */
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

static int
check_send(conc_ws *ws, conc_ws_kind kind, double timeout)
{
    if (!ws || isnan(timeout) ||
        (kind != CONC_WS_TEXT && kind != CONC_WS_BINARY))
        return CONC_EINVAL;
    return 0;
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
    enum conc__ws_opcode op =
        kind == CONC_WS_TEXT ? CONC__WS_TEXT : CONC__WS_BINARY;
    r = conc__ws_conn_send(ws->conn, op, data, n);
    r = r < 0 ? end_of(ws, r) : flush_and_drain(ws, deadline);
    conc_aio_lock_release(ws->send_lock);
    return r;
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
    enum conc__ws_opcode op =
        kind == CONC_WS_TEXT ? CONC__WS_TEXT : CONC__WS_BINARY;
    for (size_t i = 0; i < n && r == 0; i++) {
        r = conc__ws_conn_send_fragment(ws->conn, i ? CONC__WS_CONT : op,
                                        parts[i].data, parts[i].len,
                                        i + 1 == n);
        r = r < 0 ? end_of(ws, r) : flush_and_drain(ws, deadline);
    }
    conc_aio_lock_release(ws->send_lock);
    return r;
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
