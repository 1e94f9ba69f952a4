/* WebSockets (ws.h): 16-byte messages echoed over one connection, client
 * and server in one loop, and the memory an idle connection costs. The
 * twins are bench_ws.py (python websockets, under asyncio's loop and
 * uvloop's) and bench_ws.js (Node's ws), run by bench/run.py.
 *
 * Rows:
 *   ws_pingpong_1      round trips per second, one connection
 *   ws_idle_mem        resident bytes per idle connection, no compression
 *   ws_idle_mem_deflate  the same with permessage-deflate (after one
 *                      message each way, so the zlib streams exist)
 *
 * Implementations:
 *   conc    conc_ws_connect and conc_ws_serve
 *   stream  the same 16-byte echo over conc's raw TCP streams
 *           (bench_stream's conc), what the WebSocket layer adds to
 *
 * Memory is the growth of this process's resident set over IDLE_CONNS
 * connections, divided by the connections; both ends of each connection
 * live in this process, so a figure is one client plus one server. */
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conc/aio.h"
#include "conc/aio_stream.h"
#include "conc/aio_sync.h"
#include "conc/ws.h"

#define MSG        16
#define BOUND      60.0 /* seconds: no wait of a run lasts this long */
#define IDLE_CONNS 1000
#define SMOKE_IDLE 20

/* ---- Ping-pong ----------------------------------------------------------- */

static int
echo(void *arg, conc_ws *ws)
{
    (void)arg;
    conc_buf m = CONC_BUF_INIT;
    conc_ws_kind kind;
    while (conc_ws_recv(ws, BOUND, &kind, &m) == 0)
        if (conc_ws_send(ws, kind, m.data, m.len, BOUND) < 0)
            break;
    conc_buf_free(&m);
    return 0;
}

struct run_arg {
    long n;
    double secs;
};

static int
ws_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct run_arg *ra = *(struct run_arg *const *)arg;
    static const uint8_t msg[MSG];
    conc_aio_loop *loop;
    conc_ws_server *srv;
    conc_ws *ws;
    conc_buf b = CONC_BUF_INIT;
    char url[64];
    BENCH_CHECK(conc_aio_get_running_loop(&loop));
    BENCH_CHECK(conc_ws_serve(loop, "127.0.0.1", 0, echo, NULL, NULL, &srv));
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", conc_ws_server_port(srv));
    BENCH_CHECK(conc_ws_connect(url, NULL, BOUND, &ws));
    long long t0 = bench_now_ns();
    for (long i = 0; i < ra->n; i++) {
        BENCH_CHECK(conc_ws_send(ws, CONC_WS_BINARY, msg, MSG, BOUND));
        BENCH_CHECK(conc_ws_recv(ws, BOUND, NULL, &b));
    }
    ra->secs = bench_seconds_since(t0);
    BENCH_CHECK(conc_ws_close(ws, 1000, NULL));
    conc_ws_free(ws);
    conc_buf_free(&b);
    BENCH_CHECK(conc_ws_server_close(srv));
    BENCH_CHECK(conc_ws_server_wait_closed(srv, BOUND));
    conc_ws_server_free(srv);
    return 0;
}

static int
stream_echo(void *arg, conc_aio_stream *s)
{
    (void)arg;
    conc_buf b = CONC_BUF_INIT;
    while (conc_aio_stream_read(s, 64 * 1024, BOUND, &b) == 0 && b.len)
        if (conc_aio_stream_write(s, b.data, b.len) < 0)
            break;
    conc_buf_free(&b);
    return 0;
}

static int
stream_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct run_arg *ra = *(struct run_arg *const *)arg;
    static const uint8_t msg[MSG];
    conc_aio_loop *loop;
    conc_aio_server *srv;
    conc_aio_stream *s;
    conc_buf b = CONC_BUF_INIT;
    BENCH_CHECK(conc_aio_get_running_loop(&loop));
    BENCH_CHECK(conc_aio_start_server(loop, "127.0.0.1", 0, stream_echo, NULL,
                                      NULL, &srv));
    BENCH_CHECK(conc_aio_open_connection(
        "127.0.0.1", conc_aio_server_port(srv), NULL, BOUND, &s));
    long long t0 = bench_now_ns();
    for (long i = 0; i < ra->n; i++) {
        BENCH_CHECK(conc_aio_stream_write(s, msg, MSG));
        BENCH_CHECK(conc_aio_stream_readexactly(s, MSG, BOUND, &b));
    }
    ra->secs = bench_seconds_since(t0);
    conc_aio_stream_free(s);
    conc_buf_free(&b);
    BENCH_CHECK(conc_aio_server_close(srv));
    BENCH_CHECK(conc_aio_server_wait_closed(srv, BOUND));
    conc_aio_server_free(srv);
    return 0;
}

static double
pingpong_run(void *ctx, long n, long *ops)
{
    struct run_arg ra = {n, 0};
    struct run_arg *p = &ra;
    BENCH_CHECK(conc_aio_run((conc_task_fn)ctx, &p, sizeof p, NULL));
    *ops = n;
    return ra.secs;
}

/* ---- Idle memory ----------------------------------------------------------
 */

/* Resident bytes of this process (/proc/self/statm, second field). */
static double
resident(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    BENCH_ASSERT(f && fscanf(f, "%ld %ld", &pages, &rss) == 2);
    fclose(f);
    return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

struct idle_arg {
    int deflate, conns;
    double per_conn;
};

static conc_aio_event *idle_stop;

static int
idle_handler(void *arg, conc_ws *ws)
{
    (void)arg;
    conc_buf m = CONC_BUF_INIT;
    conc_ws_kind kind;
    if (conc_ws_recv(ws, BOUND, &kind, &m) == 0)
        conc_ws_send(ws, kind, m.data, m.len, BOUND);
    conc_buf_free(&m);
    conc_aio_event_wait(idle_stop, BOUND);
    return 0;
}

static int
idle_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct idle_arg *ia = *(struct idle_arg *const *)arg;
    conc_ws_opts o = {.no_compression = !ia->deflate};
    conc_aio_loop *loop;
    conc_ws_server *srv;
    conc_buf b = CONC_BUF_INIT;
    char url[64];
    conc_ws **ws = calloc((size_t)ia->conns, sizeof *ws);
    BENCH_ASSERT(ws);
    BENCH_CHECK(conc_aio_event_new(&idle_stop));
    BENCH_CHECK(conc_aio_get_running_loop(&loop));
    BENCH_CHECK(conc_ws_serve(loop, "127.0.0.1", 0, idle_handler, NULL, &o,
                              &srv));
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", conc_ws_server_port(srv));
    double before = resident();
    for (int i = 0; i < ia->conns; i++) {
        BENCH_CHECK(conc_ws_connect(url, &o, BOUND, &ws[i]));
        BENCH_CHECK(conc_ws_send(ws[i], CONC_WS_TEXT, "hello, idle", 11,
                                 BOUND));
        BENCH_CHECK(conc_ws_recv(ws[i], BOUND, NULL, &b));
    }
    ia->per_conn = (resident() - before) / ia->conns;
    conc_aio_event_set(idle_stop);
    for (int i = 0; i < ia->conns; i++) {
        conc_ws_close(ws[i], 1000, NULL);
        conc_ws_free(ws[i]);
    }
    BENCH_CHECK(conc_ws_server_close(srv));
    BENCH_CHECK(conc_ws_server_wait_closed(srv, BOUND));
    conc_ws_server_free(srv);
    conc_aio_event_free(idle_stop);
    conc_buf_free(&b);
    free(ws);
    return 0;
}

static void
idle_row(const bench_opts *o, const char *row, int deflate)
{
    struct idle_arg ia = {deflate, o->smoke ? SMOKE_IDLE : IDLE_CONNS, 0};
    struct idle_arg *p = &ia;
    BENCH_CHECK(conc_aio_run(idle_main, &p, sizeof p, NULL));
    printf("RESULT %s conc %.6g ns\n", row, ia.per_conn);
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    bench_impl pp[] = {{"conc", pingpong_run, (void *)ws_main},
                       {"stream", pingpong_run, (void *)stream_main}};
    bench_row(&o, "ws_pingpong_1", pp, 2, 1, 100);
    idle_row(&o, "ws_idle_mem", 0);
    idle_row(&o, "ws_idle_mem_deflate", 1);
    return 0;
}
