/* WebSockets (ws.h): 16-byte messages echoed over one connection and
 * over 1,000 at once, client and server in one loop, and the memory an
 * idle connection costs. The twins are bench_ws.py (python websockets,
 * under asyncio's loop and uvloop's) and bench_ws.js (Node's ws), run by
 * bench/run.py.
 *
 * Rows:
 *   ws_pingpong_1      round trips per second, one connection
 *   ws_echo_1000       round trips per second, 1,000 connections each
 *                      with one message in flight, one loop
 *   ws_idle_mem        resident bytes per idle connection, no compression
 *   ws_idle_mem_deflate  the same with permessage-deflate (after one
 *                      message each way, so the zlib streams exist)
 *
 * Implementations:
 *   conc    conc_ws_connect and conc_ws_serve
 *   stream  the same 16-byte echo over conc's raw TCP streams
 *           (bench_stream's conc), what the WebSocket layer adds to
 *   lws     conc's client against libwebsockets' server (lws_echo.c, a
 *           process of its own), where it was built
 *
 * Memory is the growth of a fresh child process's resident set over
 * IDLE_CONNS connections, divided by the connections; both ends of each
 * connection live in that process, so a figure is one client plus one
 * server. */
#include "bench_common.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/aio.h"
#include "conc/aio_stream.h"
#include "conc/aio_sync.h"
#include "conc/ws.h"

#define MSG        16
#define BOUND      60.0 /* seconds: no wait of a run lasts this long */
#define IDLE_CONNS 1000
#define SMOKE_IDLE 20
#define MANY       1000 /* connections of ws_echo_1000 */
#define SMOKE_MANY 20
#define FDS_MANY   (4 * MANY + 64) /* both ends, and lws's */

/* ---- Ping-pong ----------------------------------------------------------- */

/* Without permessage-deflate, as the other columns (raw TCP; libwebsockets'
 * server, which declines it; Node's ws, configured so; python websockets'
 * twin, configured so): the rows measure the WebSocket layer. With it,
 * every 16-byte message would also go through zlib both ways (the
 * binding's threshold is 0, as python websockets'). */
static const conc_ws_opts plain = {.no_compression = 1};

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
    int conns;
    int port; /* a server elsewhere (lws), or 0: start conc's own */
    double secs;
};

/* libwebsockets' server's port, 0 where it is not built or did not start. */
static int lws_port;

static void
server_end(conc_ws_server *srv)
{
    BENCH_CHECK(conc_ws_server_close(srv));
    BENCH_CHECK(conc_ws_server_wait_closed(srv, BOUND));
    conc_ws_server_free(srv);
}

static int
ws_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct run_arg *ra = *(struct run_arg *const *)arg;
    static const uint8_t msg[MSG];
    conc_aio_loop *loop;
    conc_ws_server *srv = NULL;
    conc_ws *ws;
    conc_buf b = CONC_BUF_INIT;
    char url[64];
    BENCH_CHECK(conc_aio_get_running_loop(&loop));
    int port = ra->port;
    if (!port) {
        BENCH_CHECK(
            conc_ws_serve(loop, "127.0.0.1", 0, echo, NULL, &plain, &srv));
        port = conc_ws_server_port(srv);
    }
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    BENCH_CHECK(conc_ws_connect(url, &plain, BOUND, &ws));
    long long t0 = bench_now_ns();
    for (long i = 0; i < ra->n; i++) {
        BENCH_CHECK(conc_ws_send(ws, CONC_WS_BINARY, msg, MSG, BOUND));
        BENCH_CHECK(conc_ws_recv(ws, BOUND, NULL, &b));
    }
    ra->secs = bench_seconds_since(t0);
    BENCH_CHECK(conc_ws_close(ws, 1000, NULL));
    conc_ws_free(ws);
    conc_buf_free(&b);
    if (srv)
        server_end(srv);
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
    BENCH_CHECK(conc_aio_open_connection("127.0.0.1", conc_aio_server_port(srv),
                                         NULL, BOUND, &s));
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
    struct run_arg ra = {.n = n};
    struct run_arg *p = &ra;
    BENCH_CHECK(conc_aio_run((conc_task_fn)ctx, &p, sizeof p, NULL));
    *ops = n;
    return ra.secs;
}

static double
lws_pingpong_run(void *ctx, long n, long *ops)
{
    (void)ctx;
    struct run_arg ra = {.n = n, .port = lws_port};
    struct run_arg *p = &ra;
    BENCH_CHECK(conc_aio_run(ws_main, &p, sizeof p, NULL));
    *ops = n;
    return ra.secs;
}

/* ---- 1,000 connections --------------------------------------------------- */

/* One client's connection: a WebSocket or a raw stream. */
struct many_conn {
    conc_ws *ws;
    conc_aio_stream *s;
    long rounds;
};

static int
ws_many_client(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct many_conn *c = *(struct many_conn *const *)arg;
    static const uint8_t msg[MSG];
    conc_buf b = CONC_BUF_INIT;
    for (long i = 0; i < c->rounds; i++) {
        BENCH_CHECK(conc_ws_send(c->ws, CONC_WS_BINARY, msg, MSG, BOUND));
        BENCH_CHECK(conc_ws_recv(c->ws, BOUND, NULL, &b));
    }
    conc_buf_free(&b);
    return 0;
}

static int
stream_many_client(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct many_conn *c = *(struct many_conn *const *)arg;
    static const uint8_t msg[MSG];
    conc_buf b = CONC_BUF_INIT;
    for (long i = 0; i < c->rounds; i++) {
        BENCH_CHECK(conc_aio_stream_write(c->s, msg, MSG));
        BENCH_CHECK(conc_aio_stream_readexactly(c->s, MSG, BOUND, &b));
    }
    conc_buf_free(&b);
    return 0;
}

/* Runs every connection's client task at once; returns the seconds. */
static double
run_clients(struct many_conn *cs, int conns, conc_task_fn fn)
{
    conc_future **fs = calloc((size_t)conns, sizeof *fs);
    BENCH_ASSERT(fs);
    long long t0 = bench_now_ns();
    for (int i = 0; i < conns; i++) {
        struct many_conn *c = &cs[i];
        BENCH_CHECK(conc_aio_create_task(fn, &c, sizeof c, NULL, &fs[i]));
    }
    BENCH_CHECK(conc_aio_gather(fs, (size_t)conns, 0));
    double secs = bench_seconds_since(t0);
    for (int i = 0; i < conns; i++)
        conc_future_free(fs[i]);
    free(fs);
    return secs;
}

static int
ws_many_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct run_arg *ra = *(struct run_arg *const *)arg;
    conc_aio_loop *loop;
    conc_ws_server *srv = NULL;
    char url[64];
    struct many_conn *cs = calloc((size_t)ra->conns, sizeof *cs);
    BENCH_ASSERT(cs);
    BENCH_CHECK(conc_aio_get_running_loop(&loop));
    int port = ra->port;
    if (!port) {
        BENCH_CHECK(
            conc_ws_serve(loop, "127.0.0.1", 0, echo, NULL, &plain, &srv));
        port = conc_ws_server_port(srv);
    }
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    for (int i = 0; i < ra->conns; i++) {
        BENCH_CHECK(conc_ws_connect(url, &plain, BOUND, &cs[i].ws));
        cs[i].rounds = ra->n / ra->conns;
    }
    ra->secs = run_clients(cs, ra->conns, ws_many_client);
    for (int i = 0; i < ra->conns; i++) {
        BENCH_CHECK(conc_ws_close(cs[i].ws, 1000, NULL));
        conc_ws_free(cs[i].ws);
    }
    if (srv)
        server_end(srv);
    free(cs);
    return 0;
}

static int
stream_many_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct run_arg *ra = *(struct run_arg *const *)arg;
    conc_aio_loop *loop;
    conc_aio_server *srv;
    struct many_conn *cs = calloc((size_t)ra->conns, sizeof *cs);
    BENCH_ASSERT(cs);
    BENCH_CHECK(conc_aio_get_running_loop(&loop));
    BENCH_CHECK(conc_aio_start_server(loop, "127.0.0.1", 0, stream_echo, NULL,
                                      NULL, &srv));
    for (int i = 0; i < ra->conns; i++) {
        BENCH_CHECK(conc_aio_open_connection(
            "127.0.0.1", conc_aio_server_port(srv), NULL, BOUND, &cs[i].s));
        cs[i].rounds = ra->n / ra->conns;
    }
    ra->secs = run_clients(cs, ra->conns, stream_many_client);
    for (int i = 0; i < ra->conns; i++)
        conc_aio_stream_free(cs[i].s);
    BENCH_CHECK(conc_aio_server_close(srv));
    BENCH_CHECK(conc_aio_server_wait_closed(srv, BOUND));
    conc_aio_server_free(srv);
    free(cs);
    return 0;
}

/* ctx: the task body; the connections are the row's, the server conc's
 * or (lws_many_run) libwebsockets'. At least one round trip each. */
static int many_conns = MANY;

static double
many_run_on(conc_task_fn fn, int port, long n, long *ops)
{
    if (n < many_conns)
        n = many_conns;
    struct run_arg ra = {.n = n, .conns = many_conns, .port = port};
    struct run_arg *p = &ra;
    BENCH_CHECK(conc_aio_run(fn, &p, sizeof p, NULL));
    *ops = n / many_conns * many_conns;
    return ra.secs;
}

static double
many_run(void *ctx, long n, long *ops)
{
    return many_run_on((conc_task_fn)ctx, 0, n, ops);
}

static double
lws_many_run(void *ctx, long n, long *ops)
{
    (void)ctx;
    return many_run_on(ws_many_main, lws_port, n, ops);
}

/* 1,000 connections need twice as many descriptors in this process. */
static void
raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < FDS_MANY) {
        rl.rlim_cur = rl.rlim_max < FDS_MANY ? rl.rlim_max : FDS_MANY;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- libwebsockets' server ----------------------------------------------- */

static pid_t lws_pid;

/* Starts lws_echo and reads its port from its first line; leaves
 * lws_port 0 (no column, an INFO line) when it is not there. */
static void
lws_start(void)
{
#ifdef BENCH_LWS_ECHO
    int fd[2];
    BENCH_ASSERT(pipe(fd) == 0);
    fflush(stdout);
    lws_pid = fork();
    BENCH_ASSERT(lws_pid >= 0);
    if (lws_pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execl(BENCH_LWS_ECHO, BENCH_LWS_ECHO, "0", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    BENCH_ASSERT(f);
    if (fscanf(f, "listening on %d", &lws_port) != 1)
        lws_port = 0;
    fclose(f);
#endif
    if (!lws_port)
        printf("INFO ws_pingpong_1 lws libwebsockets' server not built "
               "(libwebsockets-dev)\n");
}

static void
lws_stop(void)
{
    if (lws_pid <= 0)
        return;
    int status;
    kill(lws_pid, SIGTERM);
    waitpid(lws_pid, &status, 0);
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
    BENCH_CHECK(
        conc_ws_serve(loop, "127.0.0.1", 0, idle_handler, NULL, &o, &srv));
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", conc_ws_server_port(srv));
    double before = resident();
    for (int i = 0; i < ia->conns; i++) {
        BENCH_CHECK(conc_ws_connect(url, &o, BOUND, &ws[i]));
        BENCH_CHECK(
            conc_ws_send(ws[i], CONC_WS_TEXT, "hello, idle", 11, BOUND));
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

/* Each idle row runs in a child of its own: in this process, memory an
 * earlier row freed (pooled stacks, the heap) would be reused and hide
 * the cost. */
static void
idle_row(const bench_opts *o, const char *row, int deflate)
{
    fflush(stdout);
    pid_t pid = fork();
    BENCH_ASSERT(pid >= 0);
    if (pid == 0) {
        struct idle_arg ia = {deflate, o->smoke ? SMOKE_IDLE : IDLE_CONNS, 0};
        struct idle_arg *p = &ia;
        BENCH_CHECK(conc_aio_run(idle_main, &p, sizeof p, NULL));
        printf("RESULT %s conc %.6g ns\n", row, ia.per_conn);
        fflush(stdout);
        _exit(0);
    }
    int status;
    BENCH_ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
                 WEXITSTATUS(status) == 0);
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    raise_fd_limit();
    lws_start();
    int nl = lws_port ? 3 : 2;
    many_conns = o.smoke ? SMOKE_MANY : MANY;
    bench_impl many[] = {{"conc", many_run, (void *)ws_many_main},
                         {"stream", many_run, (void *)stream_many_main},
                         {"lws", lws_many_run, NULL}};
    bench_impl pp[] = {{"conc", pingpong_run, (void *)ws_main},
                       {"stream", pingpong_run, (void *)stream_main},
                       {"lws", lws_pingpong_run, NULL}};
    bench_row(&o, "ws_pingpong_1", pp, nl, 1, 100);
    bench_row(&o, "ws_echo_1000", many, nl, 1, SMOKE_MANY);
    lws_stop();
    idle_row(&o, "ws_idle_mem", 0);
    idle_row(&o, "ws_idle_mem_deflate", 1);
    return 0;
}
