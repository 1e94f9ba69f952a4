/* Listener and Client over TCP loopback with an authkey, as
 * multiprocessing.connection's; the twin is bench_listener.py.
 *
 * Rows:
 *   listener_connect    connect with the handshake (3.12's sha256 form),
 *                       one 16-byte request and its reply, and close,
 *                       against a listener serving in another thread; the
 *                       other C column does the same on bare TCP sockets
 *                       without any handshake
 *   listener_roundtrip  16-byte send_bytes/recv_bytes round trips on one
 *                       connection with a thread echoing
 *
 * Each measurement starts its own listener and server thread and joins
 * them afterwards. CPython's connect and first request cost about 44 ms:
 * the client writes "#WELCOME#" and its request back to back, so Nagle's
 * algorithm holds the request until the server's delayed acknowledgement.
 * conc sets TCP_NODELAY and TCP_QUICKACK, and the row shows what that
 * buys. */
#include "bench_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/listener.h"

#define MSG_LEN 16
#define KEY     "bench-key"

static const conc_listener_opts lopts = {.authkey = KEY,
                                         .authkey_len = sizeof KEY - 1};
static const conc_client_opts copts = {.authkey = KEY,
                                       .authkey_len = sizeof KEY - 1};

struct server {
    conc_listener *l;
    long n; /* connections to accept, or 0 to echo on one */
};

/* Serves one request on each of s->n connections. */
static void *
accept_loop(void *arg)
{
    struct server *s = arg;
    conc_buf buf = CONC_BUF_INIT;
    for (long i = 0; i < s->n; i++) {
        conc_conn *c;
        BENCH_CHECK(conc_listener_accept(s->l, CONC_FOREVER, &c));
        BENCH_CHECK(conc_conn_recv_bytes(c, CONC_FOREVER, &buf));
        BENCH_CHECK(conc_conn_send_bytes(c, buf.data, buf.len, CONC_FOREVER));
        conc_conn_free(c);
    }
    conc_buf_free(&buf);
    return NULL;
}

static void *
echo_loop(void *arg)
{
    struct server *s = arg;
    conc_conn *c;
    conc_buf buf = CONC_BUF_INIT;
    BENCH_CHECK(conc_listener_accept(s->l, CONC_FOREVER, &c));
    int r;
    while ((r = conc_conn_recv_bytes(c, CONC_FOREVER, &buf)) == 0)
        BENCH_CHECK(conc_conn_send_bytes(c, buf.data, buf.len, CONC_FOREVER));
    BENCH_ASSERT(r == CONC_ECLOSED);
    conc_conn_free(c);
    conc_buf_free(&buf);
    return NULL;
}

static void
address_of(conc_listener *l, char *addr, size_t cap)
{
    conc_buf a = CONC_BUF_INIT;
    BENCH_CHECK(conc_listener_address(l, &a));
    BENCH_ASSERT(a.len < cap);
    memcpy(addr, a.data, a.len + 1);
    conc_buf_free(&a);
}

static double
conc_connect(void *ctx, long n, long *ops)
{
    struct server s = {.n = n + 1};
    char addr[64];
    BENCH_CHECK(conc_listener_new("127.0.0.1:0", &lopts, &s.l));
    address_of(s.l, addr, sizeof addr);
    pthread_t t = bench_spawn(accept_loop, &s);
    conc_buf buf = CONC_BUF_INIT;
    unsigned char msg[MSG_LEN] = {0};
    long long t0 = 0;
    for (long i = -1; i < n; i++) { /* one warm-up connection */
        if (i == 0)
            t0 = bench_now_ns();
        conc_conn *c;
        BENCH_CHECK(conc_client_connect(addr, &copts, CONC_FOREVER, &c));
        BENCH_CHECK(conc_conn_send_bytes(c, msg, sizeof msg, CONC_FOREVER));
        BENCH_CHECK(conc_conn_recv_bytes(c, CONC_FOREVER, &buf));
        BENCH_ASSERT(buf.len == MSG_LEN);
        conc_conn_free(c);
    }
    double secs = bench_seconds_since(t0);
    bench_join(t);
    conc_listener_free(s.l);
    conc_buf_free(&buf);
    return secs;
}

struct raw_server {
    int fd;
    long n;
};

static void *
raw_accept_loop(void *arg)
{
    struct raw_server *s = arg;
    unsigned char msg[MSG_LEN];
    for (long i = 0; i < s->n; i++) {
        int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        BENCH_ASSERT(c >= 0);
        BENCH_ASSERT(recv(c, msg, MSG_LEN, MSG_WAITALL) == MSG_LEN);
        BENCH_ASSERT(send(c, msg, MSG_LEN, 0) == MSG_LEN);
        close(c);
    }
    return NULL;
}

static double
raw_connect(void *ctx, long n, long *ops)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    struct raw_server s = {.fd = socket(AF_INET, SOCK_STREAM, 0), .n = n + 1};
    BENCH_ASSERT(s.fd >= 0 && bind(s.fd, (struct sockaddr *)&sa, sl) == 0);
    BENCH_ASSERT(listen(s.fd, 128) == 0);
    BENCH_ASSERT(getsockname(s.fd, (struct sockaddr *)&sa, &sl) == 0);
    pthread_t t = bench_spawn(raw_accept_loop, &s);
    long long t0 = 0;
    for (long i = -1; i < n; i++) {
        if (i == 0)
            t0 = bench_now_ns();
        unsigned char msg[MSG_LEN] = {0};
        int c = socket(AF_INET, SOCK_STREAM, 0);
        BENCH_ASSERT(c >= 0 && connect(c, (struct sockaddr *)&sa, sl) == 0);
        BENCH_ASSERT(send(c, msg, MSG_LEN, 0) == MSG_LEN);
        BENCH_ASSERT(recv(c, msg, MSG_LEN, MSG_WAITALL) == MSG_LEN);
        close(c);
    }
    double secs = bench_seconds_since(t0);
    bench_join(t);
    close(s.fd);
    return secs;
}

static double
conc_roundtrip(void *ctx, long n, long *ops)
{
    struct server s = {.n = 0};
    char addr[64];
    BENCH_CHECK(conc_listener_new("127.0.0.1:0", &lopts, &s.l));
    address_of(s.l, addr, sizeof addr);
    pthread_t t = bench_spawn(echo_loop, &s);
    conc_conn *c;
    BENCH_CHECK(conc_client_connect(addr, &copts, CONC_FOREVER, &c));
    conc_buf buf = CONC_BUF_INIT;
    unsigned char msg[MSG_LEN] = {0};
    long long t0 = 0;
    for (long i = -1; i < n; i++) {
        if (i == 0)
            t0 = bench_now_ns();
        memcpy(msg, &i, sizeof i);
        BENCH_CHECK(conc_conn_send_bytes(c, msg, sizeof msg, CONC_FOREVER));
        BENCH_CHECK(conc_conn_recv_bytes(c, CONC_FOREVER, &buf));
        BENCH_ASSERT(buf.len == MSG_LEN && memcmp(buf.data, &i, sizeof i) == 0);
    }
    double secs = bench_seconds_since(t0);
    conc_conn_free(c);
    bench_join(t);
    conc_listener_free(s.l);
    conc_buf_free(&buf);
    return secs;
}

int
main(int argc, char **argv)
{
    bench_opts o = bench_parse(argc, argv);
    bench_impl connects[] = {
        {"pthread", raw_connect, NULL},
        {"conc", conc_connect, NULL},
    };
    bench_impl roundtrips[] = {{"conc", conc_roundtrip, NULL}};
    bench_row(&o, "listener_connect", connects, 2, 1, 20);
    bench_row(&o, "listener_roundtrip", roundtrips, 1, 1, 100);
    return 0;
}
