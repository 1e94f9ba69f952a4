/* conc_ws_broadcast (websockets.broadcast): one message to many
 * connections, never waiting. A slow peer is skipped, or closed, rather
 * than let its write buffer grow without bound. */
#include "ws/io.h"

static int
broadcast_one(conc_ws *ws, enum conc__ws_opcode op, const void *data,
              size_t len, unsigned slow_code)
{
    size_t rd, wr;
    if (conc_ws_is_open(ws) != 1 || conc_aio_lock_locked(ws->send_lock))
        return 0; /* ended, or in the middle of a fragmented message */
    if (conc_aio_stream_buffered(ws->stream, &rd, &wr) < 0)
        return 0;
    if (wr > ws->write_limit) {
        if (slow_code)
            conc__ws_start_close(ws, slow_code, "too slow", 8);
        return 0;
    }
    if (conc__ws_conn_send(ws->conn, op, data, len) < 0)
        return 0;
    return conc__ws_flush(ws) == 0;
}

int
conc_ws_broadcast(conc_ws *const *conns, size_t n, conc_ws_kind kind,
                  const void *data, size_t len, unsigned slow_code,
                  size_t *sent)
{
    if ((!conns && n) || (!data && len) ||
        (kind != CONC_WS_TEXT && kind != CONC_WS_BINARY) ||
        (slow_code && !conc__ws_close_code_valid(slow_code)))
        return CONC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!conns[i])
            return CONC_EINVAL;
    if (kind == CONC_WS_TEXT && conc__utf8_check(data, len) < 0)
        return CONC_EVALUE;
    enum conc__ws_opcode op =
        kind == CONC_WS_TEXT ? CONC__WS_TEXT : CONC__WS_BINARY;
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += (size_t)broadcast_one(conns[i], op, data, len, slow_code);
    if (sent)
        *sent = count;
    return 0;
}
