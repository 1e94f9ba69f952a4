/* Keepalive (python websockets' ping_interval and ping_timeout): a task
 * per connection pings every interval and fails the connection with 1011
 * when the pong does not come in time, so a peer that vanished without a
 * FIN is noticed. */
#include "ws/io.h"

static const char keepalive_reason[] = "keepalive ping timeout";

/* No pong in time: fail the connection (close frame, then the transport
 * at once, as python websockets' fail_connection does). */
static void
keepalive_fail(conc_ws *ws)
{
    if (!ws->err)
        ws->err = CONC_ETIMEDOUT;
    conc__ws_start_close(ws, CONC__WS_CLOSE_INTERNAL, keepalive_reason,
                         sizeof keepalive_reason - 1);
    conc__ws_abort(ws);
}

int
conc__ws_keepalive_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_ws *ws = *(conc_ws *const *)arg;
    while (conc_aio_sleep(ws->ping_interval) == 0 && conc_ws_is_open(ws) == 1) {
        conc_future *pong;
        if (conc_ws_ping(ws, NULL, 0, &pong) < 0)
            break;
        int r = ws->ping_timeout > 0 ? conc_aio_wait_for(pong, ws->ping_timeout)
                                     : 0;
        conc_future_free(pong);
        if (r == CONC_ETIMEDOUT) {
            keepalive_fail(ws);
            break;
        }
        if (r == CONC_ECANCELED || conc_ws_is_open(ws) != 1)
            break;
    }
    return 0;
}
