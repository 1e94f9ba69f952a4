/* A WebSocket echo server: ws:// on 127.0.0.1, port argv[1] (0 picks a
 * free one). Prints "listening on PORT" first, then echoes every message
 * as it came (text as text, binary as binary) until SIGTERM or SIGINT.
 * permessage-deflate is accepted when a client offers it.
 *
 *   ws_echo_server 8765
 *
 * Python websockets' equivalent:
 *
 *   async def echo(ws):
 *       async for message in ws:
 *           await ws.send(message)
 *   async with websockets.serve(echo, "127.0.0.1", 8765):
 *       await stop */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "conc/aio_sync.h"
#include "conc/ws.h"

/* Messages up to 16 MiB, so that large-message tests have room. */
#define ECHO_MAX_SIZE ((size_t)16 << 20)
/* Seconds the connections get to close on SIGTERM. */
#define SHUTDOWN_TIMEOUT 5.0

static int
echo(void *arg, conc_ws *ws)
{
    (void)arg;
    conc_buf msg = CONC_BUF_INIT;
    conc_ws_kind kind;
    int r;
    while ((r = conc_ws_recv(ws, CONC_FOREVER, &kind, &msg)) == 0)
        if ((r = conc_ws_send(ws, kind, msg.data, msg.len, CONC_FOREVER)) < 0)
            break;
    conc_buf_free(&msg);
    return r == CONC_ECLOSED ? 0 : r;
}

static void
on_signal(void *arg)
{
    conc_aio_event_set(arg);
}

static int
serve_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    int port = *(const int *)arg;
    conc_aio_loop *loop;
    conc_aio_event *stop;
    conc_ws_server *srv;
    conc_ws_opts opts = {.max_size = ECHO_MAX_SIZE};
    int r = conc_aio_get_running_loop(&loop);
    if (r < 0 || (r = conc_aio_event_new(&stop)) < 0)
        return r;
    conc_aio_add_signal_handler(loop, SIGTERM, on_signal, stop);
    conc_aio_add_signal_handler(loop, SIGINT, on_signal, stop);
    r = conc_ws_serve(loop, "127.0.0.1", port, echo, NULL, &opts, &srv);
    if (r == 0) {
        printf("listening on %d\n", conc_ws_server_port(srv));
        fflush(stdout);
        r = conc_aio_event_wait(stop, CONC_FOREVER);
        /* Close every connection with 1001 (going away) and let the
         * handlers finish. */
        conc_ws_server_close(srv);
        conc_ws_server_wait_closed(srv, SHUTDOWN_TIMEOUT);
        conc_ws_server_free(srv);
    } else {
        fprintf(stderr, "ws_echo_server: %s\n", conc_strerror(r));
    }
    conc_aio_remove_signal_handler(loop, SIGTERM);
    conc_aio_remove_signal_handler(loop, SIGINT);
    conc_aio_event_free(stop);
    return r;
}

int
main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int r = conc_aio_run(serve_main, &port, sizeof port, NULL);
    return r < 0 ? 1 : 0;
}
