/* The client side of the libwebsockets interop test (ws_lws.py).
 *
 *   ws_lws_peer URL
 *
 * Talks to libwebsockets' test server with the engine as a client,
 * offering permessage-deflate (Debian's build of the test server declines
 * it, so it is reported, not required): on "lws-mirror-protocol" it sends text
 * messages and checks that each is mirrored back; on
 * "dumb-increment-protocol" it checks that the numbers the server sends
 * count up by one. Each session ends with a close handshake (1000). Exit
 * status 0 when all of it held, 1 with a line saying what did not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_conformance_io.h"

#define MIRROR_MESSAGES 20
#define INCREMENTS      5
#define LINE_MAX        128

/* Sends a close with 1000 and reads until the end; returns its code. */
static unsigned
close_normally(struct wsp *p)
{
    struct conc__ws_event ev;
    unsigned code;
    conc__ws_conn_close(p->conn, CONC__WS_CLOSE_NORMAL, NULL, 0);
    while (wsp_next(p, &ev, &code))
        conc_buf_free(&ev.data);
    return code;
}

/* The next text message as a NUL-terminated string, or -1 at the end. */
static int
next_text(struct wsp *p, char *line)
{
    struct conc__ws_event ev;
    unsigned code;
    while (wsp_next(p, &ev, &code)) {
        int text = ev.type == CONC__WS_EV_TEXT && ev.data.len < LINE_MAX;
        if (text) {
            memcpy(line, ev.data.data, ev.data.len);
            line[ev.data.len] = 0;
        }
        conc_buf_free(&ev.data);
        if (text)
            return 0;
    }
    return -1;
}

static const char *
mirror(const char *url)
{
    struct wsp p;
    char line[LINE_MAX], want[LINE_MAX];
    const char *why = NULL;
    if (wsp_connect(url, 1, "lws-mirror-protocol", &p))
        return "cannot connect with lws-mirror-protocol";
    printf("mirror: permessage-deflate %s\n",
           p.deflate ? "agreed" : "declined by the server");
    for (int i = 0; i < MIRROR_MESSAGES && !why; i++) {
        snprintf(want, sizeof want, "conc mirror message %d", i);
        conc__ws_conn_send(p.conn, CONC__WS_TEXT, want, strlen(want));
        if (next_text(&p, line))
            why = "mirror: the connection ended early";
        else if (strcmp(line, want))
            why = "mirror: a message came back changed";
    }
    if (!why && close_normally(&p) != CONC__WS_CLOSE_NORMAL)
        why = "mirror: the close handshake did not end with 1000";
    wsp_free(&p);
    return why;
}

static const char *
increment(const char *url)
{
    struct wsp p;
    char line[LINE_MAX];
    const char *why = NULL;
    long last = -1;
    if (wsp_connect(url, 1, "dumb-increment-protocol", &p))
        return "cannot connect with dumb-increment-protocol";
    for (int i = 0; i < INCREMENTS && !why; i++) {
        if (next_text(&p, line))
            why = "increment: the connection ended early";
        else if (last >= 0 && strtol(line, NULL, 10) != last + 1)
            why = "increment: the numbers do not count up by one";
        last = strtol(line, NULL, 10);
    }
    if (!why && close_normally(&p) != CONC__WS_CLOSE_NORMAL)
        why = "increment: the close handshake did not end with 1000";
    wsp_free(&p);
    return why;
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s ws://HOST:PORT/\n", argv[0]);
        return 2;
    }
    const char *why = mirror(argv[1]);
    if (!why)
        why = increment(argv[1]);
    printf("%s\n", why ? why : "ok");
    return why ? 1 : 0;
}
