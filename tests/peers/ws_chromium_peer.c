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
#include "ws_conformance_io.h"

#define BIG_LEN    ((size_t)1 << 20)
#define CLOSE_CODE 4321
#define TEXT_MSG   "hello \xe2\x98\x83 from chromium"

static const char PAGE[] =
    "<!doctype html><meta charset=utf-8><title>conc ws</title><script>\n"
    "const ws = new WebSocket('ws://' + location.host + '/ws');\n"
    "ws.binaryType = 'arraybuffer';\n"
    "const text = 'hello \\u2603 from chromium';\n"
    "const bin = new Uint8Array(256).map((_, i) => i);\n"
    "const big = '0123456789abcdef'.repeat(65536);\n"
    "const want = [text, bin, big];\n"
    "let n = 0, bad = '';\n"
    "function same(a, b) {\n"
    "  if (typeof b === 'string') return a === b;\n"
    "  const u = new Uint8Array(a);\n"
    "  return u.length === b.length && u.every((v, i) => v === b[i]);\n"
    "}\n"
    "ws.onopen = () => { ws.send(text); ws.send(bin); ws.send(big); };\n"
    "ws.onmessage = (e) => {\n"
    "  if (!same(e.data, want[n])) bad += ' echo ' + n;\n"
    "  if (++n === want.length) {\n"
    "    ws.send('verdict ' + (bad || 'ok') +\n"
    "            ' ext=' + ws.extensions);\n"
    "    ws.close(4321, 'done');\n"
    "  }\n"
    "};\n"
    "</script>\n";

static int
serve_page(void *arg, const struct conc__ws_http *req, conc_buf *out)
{
    (void)arg;
    if (req->target.n != 1 || req->target.p[0] != '/')
        return -1;
    return conc__ws_http_response_build(
        out, 200, "OK", "Content-Type: text/html; charset=utf-8\r\n", PAGE,
        sizeof PAGE - 1);
}

static int
is_big(const conc_buf *b)
{
    static const char unit[] = "0123456789abcdef";
    if (b->len != BIG_LEN)
        return 0;
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] != (uint8_t)unit[i % 16])
            return 0;
    return 1;
}

/* Checks the n-th message the page sent. */
static const char *
check(size_t n, const struct conc__ws_event *ev)
{
    const conc_buf *b = &ev->data;
    switch (n) {
    case 0:
        return ev->type == CONC__WS_EV_TEXT && b->len == strlen(TEXT_MSG) &&
                       memcmp(b->data, TEXT_MSG, b->len) == 0
                   ? NULL
                   : "the text message differs";
    case 1:
        if (ev->type != CONC__WS_EV_BINARY || b->len != 256)
            return "the binary message differs";
        for (size_t i = 0; i < 256; i++)
            if (b->data[i] != i)
                return "the binary message differs";
        return NULL;
    case 2:
        return ev->type == CONC__WS_EV_TEXT && is_big(b)
                   ? NULL
                   : "the 1 MiB message differs";
    default:
        return ev->type == CONC__WS_EV_TEXT && b->len >= 10 &&
                       memcmp(b->data, "verdict ok", 10) == 0
                   ? NULL
                   : "the page's verdict is not ok";
    }
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
            const char *bad = check(n, &ev);
            if (n == 3)
                printf("page: %.*s\n", (int)ev.data.len,
                       (const char *)ev.data.data);
            why = why ? why : bad;
            if (n++ < 3)
                conc__ws_conn_send(p->conn,
                                   ev.type == CONC__WS_EV_TEXT
                                       ? CONC__WS_TEXT
                                       : CONC__WS_BINARY,
                                   ev.data.data, ev.data.len);
        }
        conc_buf_free(&ev.data);
    }
    wsp_free(p);
    if (!why && n != 4)
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
