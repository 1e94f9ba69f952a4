/* TCP echo of 1 KiB messages over loopback, server and clients in one
 * thread; the twin is bench_stream.py (asyncio streams, and uvloop's).
 *
 * Rows (round trips per second):
 *   stream_echo_1          one connection, one loop
 *   stream_echo_100        100 connections at once, one loop
 *   stream_echo_100_cores  100 connections, one loop per core: a server
 *                          group of one loop per CPU, and as many client
 *                          threads, each a loop with its share of the
 *                          connections
 *
 * Implementations:
 *   conc    conc_aio_start_server's echo handler and client tasks (one
 *           loop), or conc_aio_server_group and client loops (per core)
 *   epoll   the same traffic by hand (epoll_echo.c, no conc): one
 *           level-triggered epoll loop over the server's and the clients'
 *           non-blocking sockets, or per core N server threads on one
 *           port (SO_REUSEPORT) and N client threads; what a stream layer
 *           costs nothing over at best
 *
 * Each measurement sets up its own server and connections; the
 * connection setup is outside the timed part. */
#include "bench_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/aio.h"
#include "conc/aio_net.h"
#include "conc/aio_stream.h"
#include "conc/aio_sync.h"
#include "epoll_echo.h"

#define MSG       1024
#define MAX_CONNS 100
#define MAX_CORES 64
#define BOUND     60.0 /* seconds: no wait of a run lasts this long */

/* ---- conc ---------------------------------------------------------------- */

static int
echo(void *arg, conc_aio_stream *s)
{
    (void)arg;
    conc_buf b = CONC_BUF_INIT;
    while (conc_aio_stream_read(s, 64 * 1024, BOUND, &b) == 0 && b.len)
        if (conc_aio_stream_write(s, b.data, b.len) < 0)
            break;
    conc_buf_free(&b);
    return 0;
}

struct client_arg {
    conc_aio_stream *s;
    long rounds;
};

static int
client(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct client_arg *c = arg;
    static const uint8_t msg[MSG];
    conc_buf b = CONC_BUF_INIT;
    for (long i = 0; i < c->rounds; i++) {
        BENCH_CHECK(conc_aio_stream_write(c->s, msg, MSG));
        BENCH_CHECK(conc_aio_stream_readexactly(c->s, MSG, BOUND, &b));
    }
    conc_buf_free(&b);
    return 0;
}

struct run_arg {
    int conns;
    long n;
    double secs;
};

static int
conc_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct run_arg *ra = *(struct run_arg *const *)arg;
    conc_aio_loop *loop;
    conc_aio_server *srv;
    BENCH_CHECK(conc_aio_get_running_loop(&loop));
    BENCH_CHECK(
        conc_aio_start_server(loop, "127.0.0.1", 0, echo, NULL, NULL, &srv));
    struct client_arg cs[MAX_CONNS];
    conc_future *fs[MAX_CONNS];
    for (int i = 0; i < ra->conns; i++) {
        BENCH_CHECK(conc_aio_open_connection(
            "127.0.0.1", conc_aio_server_port(srv), NULL, BOUND, &cs[i].s));
        cs[i].rounds = ra->n / ra->conns;
    }
    long long t0 = bench_now_ns();
    for (int i = 0; i < ra->conns; i++)
        BENCH_CHECK(
            conc_aio_create_task(client, &cs[i], sizeof cs[i], NULL, &fs[i]));
    BENCH_CHECK(conc_aio_gather(fs, (size_t)ra->conns, 0));
    ra->secs = bench_seconds_since(t0);
    for (int i = 0; i < ra->conns; i++) {
        conc_future_free(fs[i]);
        conc_aio_stream_free(cs[i].s);
    }
    BENCH_CHECK(conc_aio_server_close(srv));
    BENCH_CHECK(conc_aio_server_wait_closed(srv, BOUND));
    conc_aio_server_free(srv);
    return 0;
}

static double
conc_run(void *ctx, long n, long *ops)
{
    struct run_arg ra = {*(int *)ctx, n < *(int *)ctx ? *(int *)ctx : n, 0};
    struct run_arg *p = &ra;
    BENCH_CHECK(conc_aio_run(conc_main, &p, sizeof p, NULL));
    *ops = ra.n / ra.conns * ra.conns;
    return ra.secs;
}

/* ---- conc, one loop per core ------------------------------------------ */

/* One client thread of the per-core run: a loop of its own driving its
 * share of the connections to the server group. */
struct core_client {
    pthread_t th;
    int port, conns;
    long per;
    pthread_barrier_t *go;
};

static int
core_clients_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct core_client *cc = *(struct core_client *const *)arg;
    struct client_arg cs[MAX_CONNS];
    conc_future *fs[MAX_CONNS];
    for (int i = 0; i < cc->conns; i++) {
        BENCH_CHECK(conc_aio_open_connection("127.0.0.1", cc->port, NULL, BOUND,
                                             &cs[i].s));
        cs[i].rounds = cc->per;
    }
    /* Every thread connected: the clock starts. Blocking the loop here
     * is harmless, it has nothing else to do yet. */
    pthread_barrier_wait(cc->go);
    for (int i = 0; i < cc->conns; i++)
        BENCH_CHECK(
            conc_aio_create_task(client, &cs[i], sizeof cs[i], NULL, &fs[i]));
    BENCH_CHECK(conc_aio_gather(fs, (size_t)cc->conns, 0));
    for (int i = 0; i < cc->conns; i++) {
        conc_future_free(fs[i]);
        conc_aio_stream_free(cs[i].s);
    }
    return 0;
}

static void *
core_client_thread(void *arg)
{
    BENCH_CHECK(conc_aio_run(core_clients_main, &arg, sizeof arg, NULL));
    return NULL;
}

static int
cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_CORES ? MAX_CORES : (int)n;
}

static double
conc_cores_run(void *ctx, long n, long *ops)
{
    int conns = *(int *)ctx, threads = cores();
    long per = n / conns > 0 ? n / conns : 1;
    static struct core_client cc[MAX_CORES];
    pthread_barrier_t go;
    conc_aio_server_group *g;
    BENCH_CHECK(conc_aio_server_group_start("127.0.0.1", 0, (unsigned)threads,
                                            echo, NULL, NULL, &g));
    pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        cc[t] = (struct core_client){.port = conc_aio_server_group_port(g),
                                     .conns = conns / threads +
                                              (t < conns % threads),
                                     .per = per,
                                     .go = &go};
        cc[t].th = bench_spawn(core_client_thread, &cc[t]);
    }
    pthread_barrier_wait(&go);
    long long t0 = bench_now_ns();
    for (int t = 0; t < threads; t++)
        bench_join(cc[t].th);
    double secs = bench_seconds_since(t0);
    BENCH_CHECK(conc_aio_server_group_stop(g, BOUND));
    conc_aio_server_group_free(g);
    pthread_barrier_destroy(&go);
    *ops = per * conns;
    return secs;
}

/* ---- raw epoll (epoll_echo.c) ---------------------------------------------
 */

static double
raw_run(void *ctx, long n, long *ops)
{
    return epoll_echo_run(*(int *)ctx, 0, n, ops);
}

static double
raw_cores_run(void *ctx, long n, long *ops)
{
    return epoll_echo_run(*(int *)ctx, cores(), n, ops);
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    static int one = 1, hundred = MAX_CONNS;
    bench_impl e1[] = {{"conc", conc_run, &one}, {"epoll", raw_run, &one}};
    bench_row(&o, "stream_echo_1", e1, 2, 1, 100);
    bench_impl e100[] = {{"conc", conc_run, &hundred},
                         {"epoll", raw_run, &hundred}};
    bench_row(&o, "stream_echo_100", e100, 2, 1, 1000);
    bench_impl ecores[] = {{"conc", conc_cores_run, &hundred},
                           {"epoll", raw_cores_run, &hundred}};
    bench_row(&o, "stream_echo_100_cores", ecores, 2, 1, 1000);
    return 0;
}
