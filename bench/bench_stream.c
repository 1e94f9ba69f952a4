/* TCP echo of 1 KiB messages over loopback, server and clients in one
 * thread; the twin is bench_stream.py (asyncio streams, and uvloop's).
 *
 * Rows (round trips per second):
 *   stream_echo_1     one connection
 *   stream_echo_100   100 connections at once
 *
 * Implementations:
 *   conc    conc_aio_start_server's echo handler and client tasks, one
 *           loop
 *   epoll   the same traffic by hand: one level-triggered epoll loop over
 *           the server's and the clients' non-blocking sockets, what a
 *           stream layer costs nothing over at best
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
#include "conc/aio_stream.h"
#include "conc/aio_sync.h"

#define MSG       1024
#define MAX_CONNS 100
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

/* ---- raw epoll ------------------------------------------------------------
 */

struct raw {
    int epfd, conns;
    int cfd[MAX_CONNS], sfd[MAX_CONNS];
    long left[MAX_CONNS]; /* round trips each client still has to start */
    size_t got[MAX_CONNS];
    long done, total;
};

static void
nonblock_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Connects r->conns client sockets to a fresh listener and accepts them;
 * registers both ends. Event data: index, plus MAX_CONNS for a server
 * side. */
static void
raw_setup(struct raw *r)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    BENCH_ASSERT(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
    BENCH_ASSERT(listen(l, MAX_CONNS) == 0);
    BENCH_ASSERT(getsockname(l, (struct sockaddr *)&a, &alen) == 0);
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < r->conns; i++) {
        r->cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        BENCH_ASSERT(connect(r->cfd[i], (struct sockaddr *)&a, sizeof a) == 0);
        r->sfd[i] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        BENCH_ASSERT(r->sfd[i] >= 0);
        nonblock_nodelay(r->cfd[i]);
        nonblock_nodelay(r->sfd[i]);
        struct epoll_event ce = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        struct epoll_event se = {.events = EPOLLIN,
                                 .data.u32 = (uint32_t)(i + MAX_CONNS)};
        epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->cfd[i], &ce);
        epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->sfd[i], &se);
    }
    close(l);
}

static void
raw_event(struct raw *r, uint32_t id)
{
    static uint8_t buf[64 * 1024];
    static const uint8_t msg[MSG];
    int server = id >= MAX_CONNS, i = (int)(server ? id - MAX_CONNS : id);
    ssize_t k = recv(server ? r->sfd[i] : r->cfd[i], buf, sizeof buf, 0);
    if (k <= 0)
        return;
    if (server) {
        BENCH_ASSERT(send(r->sfd[i], buf, (size_t)k, MSG_NOSIGNAL) == k);
        return;
    }
    r->got[i] += (size_t)k;
    if (r->got[i] < MSG)
        return;
    r->got[i] = 0;
    r->done++;
    if (r->left[i]-- > 0)
        BENCH_ASSERT(send(r->cfd[i], msg, MSG, MSG_NOSIGNAL) == MSG);
}

static double
raw_run(void *ctx, long n, long *ops)
{
    struct raw r = {.conns = *(int *)ctx};
    static const uint8_t msg[MSG];
    long per = n / r.conns > 0 ? n / r.conns : 1;
    raw_setup(&r);
    r.total = per * r.conns;
    long long t0 = bench_now_ns();
    for (int i = 0; i < r.conns; i++) {
        r.left[i] = per - 1;
        BENCH_ASSERT(send(r.cfd[i], msg, MSG, MSG_NOSIGNAL) == MSG);
    }
    struct epoll_event ev[2 * MAX_CONNS];
    while (r.done < r.total) {
        int k = epoll_wait(r.epfd, ev, 2 * MAX_CONNS, -1);
        for (int j = 0; j < k; j++)
            raw_event(&r, ev[j].data.u32);
    }
    double secs = bench_seconds_since(t0);
    for (int i = 0; i < r.conns; i++) {
        close(r.cfd[i]);
        close(r.sfd[i]);
    }
    close(r.epfd);
    *ops = r.total;
    return secs;
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
    return 0;
}
