/* Keepalive (python websockets' ping_interval and ping_timeout): every
 * interval a ping goes out, and the connection is failed with 1011 when
 * its pong does not come in time, so a peer that vanished without a FIN
 * is noticed.
 *
 * It runs on the loop's timers rather than in a task of its own, which
 * would cost an idle connection a stack: one timer waits for the next
 * ping, then for the pong, whose arrival (a done callback on the ping's
 * future) sets the next ping's timer. */
#include "core/internal.h"
#include "ws/io.h"

static const char keepalive_reason[] = "keepalive ping timeout";

static void keepalive_arm(conc_ws *ws, double delay, conc_aio_cb fn);

/* No pong in time: fail the connection (close frame, then the transport
 * at once, as python websockets' fail_connection does). */
static void
pong_overdue(void *arg)
{
    conc_ws *ws = arg;
    if (!ws->err)
        ws->err = CONC_ETIMEDOUT;
    conc__ws_start_close(ws, CONC__WS_CLOSE_INTERNAL, keepalive_reason,
                         sizeof keepalive_reason - 1);
    conc__ws_abort(ws);
}

static void ping_due(void *arg);

/* The pong came (or the connection ended, failing the future). */
static int
pong_done(void *arg, conc_future *f)
{
    conc_ws *ws = arg;
    if (ws->ka_pong != f)
        return 0; /* an older ping's, or the connection is being freed */
    conc_future_free(ws->ka_pong);
    ws->ka_pong = NULL;
    if (conc_ws_is_open(ws) == 1)
        keepalive_arm(ws, ws->ping_interval, ping_due);
    return 0;
}

static void
ping_due(void *arg)
{
    conc_ws *ws = arg;
    conc_future *pong;
    if (conc_ws_is_open(ws) != 1 || conc_ws_ping(ws, NULL, 0, &pong) < 0)
        return;
    if (ws->ping_timeout <= 0) { /* no timeout: just keep pinging */
        conc_future_free(pong);
        keepalive_arm(ws, ws->ping_interval, ping_due);
        return;
    }
    ws->ka_pong = pong;
    keepalive_arm(ws, ws->ping_timeout, pong_overdue);
    if (conc_future_add_done_callback(pong, pong_done, ws) < 0)
        pong_done(ws, pong); /* out of memory: ping again later */
}

static void
timer_clear(conc_ws *ws)
{
    if (ws->ka_timer) {
        conc_aio_handle_cancel(ws->ka_timer);
        conc_aio_handle_free(ws->ka_timer);
        ws->ka_timer = NULL;
    }
}

static void
keepalive_arm(conc_ws *ws, double delay, conc_aio_cb fn)
{
    timer_clear(ws);
    conc_aio_call_later(ws->loop, delay, fn, ws, &ws->ka_timer);
}

void
conc__ws_keepalive_start(conc_ws *ws)
{
    if (ws->ping_interval > 0)
        keepalive_arm(ws, ws->ping_interval, ping_due);
}

void
conc__ws_keepalive_stop(conc_ws *ws)
{
    timer_clear(ws);
    if (ws->ka_pong) {
        conc_future *f = ws->ka_pong;
        ws->ka_pong = NULL; /* pong_done then ignores it */
        conc_future_free(f);
    }
}
