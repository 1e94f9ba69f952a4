/* A WebSocket client: connects to the URL in argv[1] (ws://host:port/path
 * or ws+unix:///socket), sends each following argument as a text message
 * and prints each reply on its own line (a binary reply as hex).
 *
 *   ws_client ws://127.0.0.1:8765/ hello world
 *
 * Python websockets' equivalent:
 *
 *   async with websockets.connect(url) as ws:
 *       for text in sys.argv[2:]:
 *           await ws.send(text)
 *           print(await ws.recv()) */
#include <stdio.h>
#include <string.h>

#include "conc/ws.h"

#define TIMEOUT 10.0 /* seconds for the handshake and each reply */

struct args {
    int argc;
    char **argv;
};

static void
print_reply(conc_ws_kind kind, const conc_buf *msg)
{
    if (kind == CONC_WS_TEXT) {
        fwrite(msg->data, 1, msg->len, stdout);
    } else {
        for (size_t i = 0; i < msg->len; i++)
            printf("%02x", msg->data[i]);
    }
    putchar('\n');
    fflush(stdout);
}

static int
client_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct args *a = arg;
    conc_ws *ws;
    conc_buf msg = CONC_BUF_INIT;
    conc_ws_kind kind;
    int r = conc_ws_connect(a->argv[1], NULL, TIMEOUT, &ws);
    if (r < 0) {
        fprintf(stderr, "ws_client: %s: %s\n", a->argv[1], conc_strerror(r));
        return r;
    }
    for (int i = 2; i < a->argc && r == 0; i++) {
        const char *text = a->argv[i];
        r = conc_ws_send(ws, CONC_WS_TEXT, text, strlen(text), TIMEOUT);
        if (!r)
            r = conc_ws_recv(ws, TIMEOUT, &kind, &msg);
        if (!r)
            print_reply(kind, &msg);
    }
    if (r < 0)
        fprintf(stderr, "ws_client: %s\n", conc_strerror(r));
    conc_ws_close(ws, 1000, NULL);
    conc_ws_free(ws);
    conc_buf_free(&msg);
    return r;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ws_client URL [TEXT...]\n");
        return 2;
    }
    struct args a = {argc, argv};
    return conc_aio_run(client_main, &a, sizeof a, NULL) < 0 ? 1 : 0;
}
