/* The server side of the Chromium interop test on conc's I/O binding
 * (include/conc/ws.h), started by ws_chromium.py.
 *
 *   ws_chromium_server [PORT]
 *
 * conc_ws_serve on 127.0.0.1 (PORT 0 or absent: any); prints "listening
 * on PORT". Its process_request hook answers GET / with the page of
 * ws_chromium_page.h and lets /ws upgrade. The handler checks and echoes
 * the page's messages, reads its verdict and the close code, and the
 * program exits 0 when all of it held and permessage-deflate was agreed,
 * else 1, printing why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/aio.h"
#include "conc/aio_sync.h"
#include "conc/ws.h"
#include "ws_chromium_page.h"

#define MAX_MESSAGE ((size_t)2 << 20)
#define WAIT_PAGE   40.0 /* seconds the page gets to finish */
#define CLOSE_WAIT  5.0

struct result {
    conc_aio_event *done;
    const char *why;
    size_t messages;
    unsigned code;
};

static int
serve_page(void *arg, const conc_ws_request *req, conc_ws_response *resp)
{
    (void)arg;
    if (strcmp(req->path, "/ws") == 0)
        return 0;
    if (strcmp(req->path, "/") == 0) {
        *resp = (conc_ws_response){.status = 200,
                                   .headers = PAGE_TYPE,
                                   .body = PAGE,
                                   .body_len = sizeof PAGE - 1};
    } else {
        *resp = (conc_ws_response){.status = 404};
    }
    return 1;
}

static int
handler(void *arg, conc_ws *ws)
{
    struct result *res = arg;
    conc_buf msg = CONC_BUF_INIT;
    conc_ws_kind kind;
    const char *why =
        conc_ws_compressed(ws) == 1 ? NULL : "permessage-deflate not agreed";
    size_t n = 0;
    while (conc_ws_recv(ws, WAIT_PAGE, &kind, &msg) == 0) {
        const char *bad = page_check(n, kind == CONC_WS_TEXT, &msg);
        why = why ? why : bad;
        if (n == PAGE_ECHOES)
            printf("page: %.*s\n", (int)msg.len, (const char *)msg.data);
        if (n++ < PAGE_ECHOES &&
            conc_ws_send(ws, kind, msg.data, msg.len, WAIT_PAGE) < 0)
            break;
    }
    conc_ws_wait_closed(ws, CLOSE_WAIT);
    conc_ws_close_code(ws, &res->code, NULL);
    conc_buf_free(&msg);
    res->why = why;
    res->messages = n;
    conc_aio_event_set(res->done);
    return 0;
}

/* The verdict on what the handler saw: NULL when all held. */
static const char *
verdict(const struct result *res)
{
    if (res->why)
        return res->why;
    if (res->messages != PAGE_ECHOES + 1)
        return "the page sent too few messages";
    return res->code == CLOSE_CODE ? NULL : "the close code is not 4321";
}

static int
server_main(const void *arg, size_t len, conc_buf *out)
{
    (void)len, (void)out;
    struct result res = {0};
    conc_ws_opts opts = {.max_size = MAX_MESSAGE,
                         .process_request = serve_page};
    conc_aio_loop *loop;
    conc_ws_server *srv;
    int r = conc_aio_get_running_loop(&loop);
    if (r < 0 || (r = conc_aio_event_new(&res.done)) < 0)
        return r;
    r = conc_ws_serve(loop, "127.0.0.1", *(const int *)arg, handler, &res,
                      &opts, &srv);
    if (r < 0) {
        conc_aio_event_free(res.done);
        return r;
    }
    printf("listening on %d\n", conc_ws_server_port(srv));
    fflush(stdout);
    if (conc_aio_event_wait(res.done, WAIT_PAGE) < 0)
        res.why = "no WebSocket session finished in time";
    conc_ws_server_close(srv);
    conc_ws_server_wait_closed(srv, CLOSE_WAIT);
    conc_ws_server_free(srv);
    conc_aio_event_free(res.done);
    const char *why = verdict(&res);
    printf("%s (%zu messages, close %u)\n", why ? why : "ok", res.messages,
           res.code);
    return why ? -1 : 0;
}

int
main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    return conc_aio_run(server_main, &port, sizeof port, NULL) < 0 ? 1 : 0;
}
