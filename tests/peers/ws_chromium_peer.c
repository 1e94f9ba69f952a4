/* The server side of the Chromium interop test (ws_chromium.py).
 *
 *   ws_chromium_peer [PORT]
 *
 * Serves on 127.0.0.1 (PORT 0 or absent: any), prints "listening on
 * PORT", answers GET / with a page whose script opens a WebSocket back to
 * /ws, with permessage-deflate agreed. The page sends a text message, a
 * binary one and a 1 MiB one; this server checks each and echoes it; the
 * page checks the echoes and sends its verdict as a last text message,
 * then closes with code 4321. The exit status is 0 when every message and
 * the close arrived as expected, 1 otherwise, with a line saying why. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/error.h"
#include "ws_chromium_page.h"
#include "ws_conformance_io.h"

static int
serve_page(void *arg, const struct conc__ws_http *req, conc_buf *out)
{
    (void)arg;
    if (req->target.n != 1 || req->target.p[0] != '/')
        return -1;
    return conc__ws_http_response_build(out, 200, "OK", PAGE_TYPE, PAGE,
                                        sizeof PAGE - 1);
}

/* Runs the WebSocket session and ends the process with its result. */
static void
session(struct wsp *p)
{
    struct conc__ws_event ev;
    const char *why = p->deflate ? NULL : "permessage-deflate not agreed";
    unsigned code;
    size_t n = 0;
    while (wsp_next(p, &ev, &code)) {
        if (ev.type == CONC__WS_EV_TEXT || ev.type == CONC__WS_EV_BINARY) {
            const char *bad =
                page_check(n, ev.type == CONC__WS_EV_TEXT, &ev.data);
            if (n == PAGE_ECHOES)
                printf("page: %.*s\n", (int)ev.data.len,
                       (const char *)ev.data.data);
            why = why ? why : bad;
            if (n++ < PAGE_ECHOES)
                conc__ws_conn_send(p->conn,
                                   ev.type == CONC__WS_EV_TEXT
                                       ? CONC__WS_TEXT
                                       : CONC__WS_BINARY,
                                   ev.data.data, ev.data.len);
        }
        conc_buf_free(&ev.data);
    }
    wsp_free(p);
    if (!why && n != PAGE_ECHOES + 1)
        why = "the page sent too few messages";
    if (!why && code != CLOSE_CODE)
        why = "the close code is not 4321";
    printf("%s (%zu messages, close %u)\n", why ? why : "ok", n, code);
    fflush(stdout);
    exit(why ? 1 : 0);
}

static void *
serve_one(void *arg)
{
    struct wsp p;
    int fd = (int)(intptr_t)arg;
    if (wsp_accept(fd, 1, NULL, serve_page, NULL, &p) == 1)
        session(&p);
    return NULL;
}

int
main(int argc, char **argv)
{
    int bound;
    int lfd = wsp_listen(argc > 1 ? atoi(argv[1]) : 0, &bound);
    if (lfd < 0)
        return 1;
    printf("listening on %d\n", bound);
    fflush(stdout);
    /* A thread per connection: a browser opens sockets it may never use
     * (preconnects), which must not hold up the page's WebSocket. */
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        pthread_t t;
        if (fd < 0)
            continue;
        if (pthread_create(&t, NULL, serve_one, (void *)(intptr_t)fd))
            close(fd);
        else
            pthread_detach(t);
    }
}
