/* conc's WebSocket client (include/conc/ws.h) as an echo client, for the
 * conformance suite's fuzzing server (ws_conformance.py server):
 *
 *   ws_echo_client URL
 *
 * connects to URL (permessage-deflate offered, messages up to 64 MiB),
 * sends every message back as it came until the connection ends, and
 * prints "closed CODE". Exit status 0 once the connection ended, 1 if it
 * could not be opened. */
#include <stdint.h>
#include <stdio.h>

#include "conc/ws.h"

#define OPEN_TIMEOUT 10.0
#define MAX_MESSAGE  ((size_t)64 << 20)

static int
echo_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const char *url = *(const char *const *)arg;
    conc_ws_opts opts = {.max_size = MAX_MESSAGE};
    conc_buf msg = CONC_BUF_INIT;
    conc_ws_kind kind;
    conc_ws *ws;
    unsigned code = 0;
    int r = conc_ws_connect(url, &opts, OPEN_TIMEOUT, &ws);
    if (r < 0) {
        fprintf(stderr, "ws_echo_client: %s: %s\n", url, conc_strerror(r));
        return r;
    }
    while (conc_ws_recv(ws, CONC_FOREVER, &kind, &msg) == 0)
        if (conc_ws_send(ws, kind, msg.data, msg.len, CONC_FOREVER) < 0)
            break;
    conc_ws_wait_closed(ws, OPEN_TIMEOUT);
    conc_ws_close_code(ws, &code, NULL);
    printf("closed %u\n", code);
    conc_ws_free(ws);
    conc_buf_free(&msg);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ws_echo_client URL\n");
        return 2;
    }
    const char *url = argv[1];
    return conc_aio_run(echo_main, &url, sizeof url, NULL) < 0 ? 1 : 0;
}
