/* Sockets below the streams (aio_net.h): the loop's sock_* calls on raw
 * non-blocking sockets, name resolution in a thread, IPv6 streams, UDP
 * datagram endpoints with ICMP errors and a bounded receive queue, and a
 * server run by one loop per thread on one port.
 *
 * Every wait a test expects to end has a bounded timeout; the leak guard
 * checks that no descriptor, thread or allocation is left. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc_test.h"

#ifndef CONC_PEERS_DIR
#error "CONC_PEERS_DIR must name tests/peers"
#endif
#define PYTHON     "/usr/bin/python3"
#define DGRAM_PEER CONC_PEERS_DIR "/datagram_peer.py"
#define PEER_WAIT  30.0 /* seconds: bound on any wait for the peer */
#define PEER_N     3    /* datagrams exchanged with the peer */

#define BOUND  5.0  /* seconds: a wait that must end well before this */
#define SHORT  0.05 /* seconds: a timeout meant to run out */
#define BIG    (1024 * 1024) /* bytes: more than a socket buffer holds */
#define CHUNK  (64 * 1024)
#define NCONN  24   /* connections spread over a group's loops */
#define LOOPS  2    /* loops of the group under test */
#define FLOOD  500  /* datagrams sent at an endpoint nobody reads */
#define DGRAM  1024 /* bytes per flood datagram */
#define RCVBUF 4096 /* the flooded endpoint's receive buffer */

#define MAIN(name)                                                             \
    static int name(const void *arg, size_t len, conc_buf *result)
#define UNUSED_ARGS (void)arg, (void)len, (void)result

static void
run(conc_task_fn main)
{
    assert_conc_ok(conc_aio_run(main, NULL, 0, NULL));
}

static void
assert_buf(const conc_buf *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
}

/* A non-blocking socket listening on 127.0.0.1 at a free port. */
static int
raw_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sin;
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static struct sockaddr_in
loopback(int port)
{
    return (struct sockaddr_in){.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
}

static int
new_tcp(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    return fd;
}

/* ---- sock_* ------------------------------------------------------------- */

/* Accepts one connection and echoes a BIG-byte message back. */
static int
sock_echo(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    int lfd = *(const int *)arg, c;
    int r = conc_aio_sock_accept(lfd, BOUND, &c);
    if (r < 0)
        return r;
    conc_buf b = CONC_BUF_INIT;
    size_t total = 0;
    while (r == 0 && total < BIG) {
        if ((r = conc_aio_sock_recv(c, CHUNK, BOUND, &b)) == 0 && !b.len)
            r = CONC_EINCOMPLETE;
        if (r == 0)
            r = conc_aio_sock_sendall(c, b.data, b.len, BOUND);
        total += b.len;
    }
    conc_buf_free(&b);
    close(c);
    return r;
}

struct send_arg {
    int fd;
    const char *data;
    size_t n;
};

static int
sender(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct send_arg *a = arg;
    return conc_aio_sock_sendall(a->fd, a->data, a->n, BOUND);
}

MAIN(sock_main)
{
    UNUSED_ARGS;
    int port, lfd = raw_listener(&port);
    conc_future *srv, *w;
    assert_conc_ok(
        conc_aio_create_task(sock_echo, &lfd, sizeof lfd, NULL, &srv));
    int fd = new_tcp();
    struct sockaddr_in sin = loopback(port);
    assert_conc_ok(conc_aio_sock_connect(fd, &sin, sizeof sin, BOUND));
    /* BIG bytes do not fit the socket buffers: sendall waits while the
     * echo comes back, read by this task beside it. */
    char *out = malloc(BIG), *in = malloc(BIG);
    assert_non_null(out);
    assert_non_null(in);
    for (size_t i = 0; i < BIG; i++)
        out[i] = (char)(i * 31 + 7);
    struct send_arg sa = {fd, out, BIG};
    assert_conc_ok(conc_aio_create_task(sender, &sa, sizeof sa, NULL, &w));
    size_t got = 0, k;
    while (got < BIG) {
        assert_conc_ok(
            conc_aio_sock_recv_into(fd, in + got, BIG - got, BOUND, &k));
        assert_true(k > 0);
        got += k;
    }
    assert_memory_equal(in, out, BIG);
    assert_conc_ok(conc_aio_await(w));
    assert_conc_ok(conc_aio_await(srv));
    /* The peer closed: the end of stream reads as nothing. */
    assert_conc_ok(conc_aio_sock_recv_into(fd, in, 1, BOUND, &k));
    assert_int_equal(k, 0);
    conc_future_free(w);
    conc_future_free(srv);
    free(out);
    free(in);
    close(fd);
    close(lfd);
    return 0;
}

static void
test_sock_echo(void **state)
{
    (void)state;
    run(sock_main);
}

static int
blocked_recv(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_buf b = CONC_BUF_INIT;
    int r = conc_aio_sock_recv(*(const int *)arg, 1, CONC_FOREVER, &b);
    conc_buf_free(&b);
    return r;
}

/* Timeouts, cancellation, a refused connect, and bad arguments. */
MAIN(sock_errors_main)
{
    UNUSED_ARGS;
    int port, lfd = raw_listener(&port), c;
    conc_buf b = CONC_BUF_INIT;
    assert_conc(conc_aio_sock_accept(lfd, 0, &c), CONC_ETIMEDOUT);
    assert_conc(conc_aio_sock_accept(lfd, SHORT, &c), CONC_ETIMEDOUT);
    int fd = new_tcp();
    struct sockaddr_in sin = loopback(port);
    assert_conc_ok(conc_aio_sock_connect(fd, &sin, sizeof sin, BOUND));
    assert_conc_ok(conc_aio_sock_accept(lfd, BOUND, &c));
    assert_conc(conc_aio_sock_recv(fd, 16, SHORT, &b), CONC_ETIMEDOUT);
    conc_future *f;
    assert_conc_ok(
        conc_aio_create_task(blocked_recv, &fd, sizeof fd, NULL, &f));
    assert_conc_ok(conc_aio_sleep(0));
    assert_int_equal(conc_aio_task_cancel(f, NULL), 1);
    assert_conc(conc_aio_await(f), CONC_ECANCELED);
    conc_future_free(f);
    /* The peer resets: a clear error, not a hang. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c);
    assert_conc(conc_aio_sock_recv(fd, 16, BOUND, &b), -ECONNRESET);
    close(fd);
    /* Nobody listens any more. */
    close(lfd);
    fd = new_tcp();
    assert_conc(conc_aio_sock_connect(fd, &sin, sizeof sin, BOUND),
                -ECONNREFUSED);
    close(fd);
    assert_conc(conc_aio_sock_recv(-1, 1, 0, &b), CONC_EINVAL);
    assert_conc(conc_aio_sock_recv(0, 0, 0, &b), CONC_EINVAL);
    assert_conc(conc_aio_sock_sendall(0, "x", 1, NAN), CONC_EINVAL);
    conc_buf_free(&b);
    return 0;
}

static void
test_sock_errors(void **state)
{
    (void)state;
    run(sock_errors_main);
    conc_buf b = CONC_BUF_INIT;
    int c;
    assert_conc(conc_aio_sock_recv(0, 1, 0, &b), CONC_ESTATE);
    assert_conc(conc_aio_sock_accept(0, 0, &c), CONC_ESTATE);
}

/* ---- Resolution and IPv6 ------------------------------------------------ */

static int
echo(void *arg, conc_aio_stream *s)
{
    (void)arg;
    conc_buf b = CONC_BUF_INIT;
    int r;
    while ((r = conc_aio_stream_read(s, CHUNK, BOUND, &b)) == 0 && b.len) {
        if ((r = conc_aio_stream_write(s, b.data, b.len)) < 0 ||
            (r = conc_aio_stream_drain(s, BOUND)) < 0)
            break;
    }
    conc_buf_free(&b);
    return r;
}

/* One round trip to host:port; the peer's name into *peer. */
static void
round_trip(const char *host, int port, conc_buf *peer)
{
    conc_aio_stream *s;
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_open_connection(host, port, NULL, BOUND, &s));
    assert_conc_ok(conc_aio_stream_write(s, "ping\n", 5));
    assert_conc_ok(conc_aio_stream_readline(s, BOUND, &b));
    assert_buf(&b, "ping\n");
    assert_conc_ok(conc_aio_stream_peername(s, peer));
    conc_aio_stream_free(s);
    conc_buf_free(&b);
}

static int
have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6,
                              .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int ok = bind(fd, (struct sockaddr *)&s6, sizeof s6) == 0;
    close(fd);
    return ok;
}

MAIN(resolve_main)
{
    UNUSED_ARGS;
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_getaddrinfo("127.0.0.1", 80, 0, &b));
    assert_buf(&b, "127.0.0.1:80\n");
    assert_conc_ok(conc_aio_getaddrinfo("::1", 443, 0, &b));
    assert_buf(&b, "[::1]:443\n");
    /* A name goes to a thread: with no time to wait it times out. */
    assert_conc(conc_aio_getaddrinfo("localhost", 80, 0, &b), CONC_ETIMEDOUT);
    assert_conc_ok(conc_aio_getaddrinfo("localhost", 80, BOUND, &b));
    assert_true(strstr((const char *)b.data, "127.0.0.1:80\n") ||
                strstr((const char *)b.data, "[::1]:80\n"));
    assert_conc(conc_aio_getaddrinfo("localhost", 65536, BOUND, &b),
                CONC_EINVAL);

    conc_aio_loop *loop;
    conc_aio_server *srv;
    assert_conc_ok(conc_aio_get_running_loop(&loop));
    /* host NULL: every interface, both families when the machine has
     * IPv6, on one port. */
    assert_conc_ok(
        conc_aio_start_server(loop, NULL, 0, echo, NULL, NULL, &srv));
    int port = conc_aio_server_port(srv);
    assert_true(port > 0);
    round_trip("localhost", port, &b);
    round_trip("127.0.0.1", port, &b);
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    assert_buf(&b, want);
    if (have_ipv6()) {
        round_trip("::1", port, &b);
        snprintf(want, sizeof want, "[::1]:%d", port);
        assert_buf(&b, want);
    }
    conc_aio_server_free(srv);
    if (have_ipv6()) {
        assert_conc_ok(
            conc_aio_start_server(loop, "::1", 0, echo, NULL, NULL, &srv));
        port = conc_aio_server_port(srv);
        round_trip("::1", port, &b);
        /* Only ::1 listens (IPV6_V6ONLY); 127.0.0.1 at this port may be
         * another program's, so it is not tried. */
        snprintf(want, sizeof want, "[::1]:%d", port);
        assert_buf(&b, want);
        assert_conc_ok(conc_aio_server_close(srv));
        assert_conc_ok(conc_aio_server_wait_closed(srv, BOUND));
        conc_aio_server_free(srv);
    }
    conc_buf_free(&b);
    return 0;
}

static void
test_resolve_and_ipv6(void **state)
{
    (void)state;
    run(resolve_main);
}

/* ---- Datagrams ---------------------------------------------------------- */

static int
blocked_recvfrom(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_aio_datagram *d;
    memcpy(&d, arg, sizeof d);
    conc_buf b = CONC_BUF_INIT;
    int r = conc_aio_datagram_recvfrom(d, BOUND, &b, NULL);
    conc_buf_free(&b);
    return r;
}

MAIN(datagram_main)
{
    UNUSED_ARGS;
    conc_aio_datagram *a, *b, *c;
    conc_buf data = CONC_BUF_INIT, from = CONC_BUF_INIT, name = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_datagram_open("127.0.0.1", 0, NULL, 0, NULL, &a));
    int pa = conc_aio_datagram_port(a);
    assert_true(pa > 0);
    assert_conc_ok(conc_aio_datagram_open(NULL, 0, "127.0.0.1", pa, NULL, &b));
    int pb = conc_aio_datagram_port(b);
    assert_conc_ok(conc_aio_datagram_sendto(b, "hello", 5, NULL, 0, BOUND));
    assert_conc_ok(conc_aio_datagram_recvfrom(a, BOUND, &data, &from));
    assert_buf(&data, "hello");
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%d", pb);
    assert_buf(&from, want);
    assert_conc_ok(
        conc_aio_datagram_sendto(a, "back", 4, "127.0.0.1", pb, BOUND));
    assert_conc_ok(conc_aio_datagram_recvfrom(b, BOUND, &data, NULL));
    assert_buf(&data, "back");
    assert_conc(conc_aio_datagram_recvfrom(a, SHORT, &data, &from),
                CONC_ETIMEDOUT);
    assert_buf(&data, "back"); /* unchanged on failure */
    assert_conc(conc_aio_datagram_sendto(a, "x", 1, NULL, 0, 0), CONC_EINVAL);
    assert_conc(conc_aio_datagram_sendto(a, "x", 1, "nohost", 1, 0),
                CONC_EINVAL);

    /* ICMP port unreachable comes back as ECONNREFUSED, and the endpoint
     * stays usable. */
    conc_aio_datagram_close(a);
    assert_conc(conc_aio_datagram_port(a), CONC_ECLOSED);
    assert_conc_ok(conc_aio_datagram_sendto(b, "lost", 4, NULL, 0, BOUND));
    assert_conc(conc_aio_datagram_recvfrom(b, BOUND, &data, NULL),
                -ECONNREFUSED);
    assert_conc(conc_aio_datagram_recvfrom(b, 0, &data, NULL), CONC_ETIMEDOUT);
    conc_aio_datagram_free(a);

    /* Closing wakes a waiting receiver. */
    conc_future *f;
    assert_conc_ok(
        conc_aio_create_task(blocked_recvfrom, &b, sizeof b, NULL, &f));
    assert_conc_ok(conc_aio_sleep(0));
    assert_conc_ok(conc_aio_datagram_close(b));
    assert_conc(conc_aio_await(f), CONC_ECLOSED);
    conc_future_free(f);
    assert_conc(conc_aio_datagram_sendto(b, "x", 1, NULL, 0, 0), CONC_ECLOSED);
    conc_aio_datagram_free(b);

    /* Nobody receives: the kernel's bounded buffer keeps some, drops the
     * rest, and the endpoint holds no memory for them. */
    conc_aio_datagram_opts small = {.rcvbuf = RCVBUF};
    assert_conc_ok(conc_aio_datagram_open("127.0.0.1", 0, NULL, 0, &small, &c));
    assert_conc_ok(conc_aio_datagram_open(NULL, 0, "127.0.0.1",
                                          conc_aio_datagram_port(c), NULL, &b));
    char blob[DGRAM] = {0};
    for (int i = 0; i < FLOOD; i++)
        assert_conc_ok(
            conc_aio_datagram_sendto(b, blob, sizeof blob, NULL, 0, BOUND));
    int kept = 0;
    while (conc_aio_datagram_recvfrom(c, 0, &data, NULL) == 0) {
        assert_int_equal(data.len, DGRAM); /* each datagram whole */
        kept++;
    }
    assert_true(kept > 0);
    assert_true(kept < FLOOD);
    conc_aio_datagram_free(b);
    conc_aio_datagram_free(c);
    conc_buf_free(&data);
    conc_buf_free(&from);
    conc_buf_free(&name);
    return 0;
}

static void
test_datagram(void **state)
{
    (void)state;
    run(datagram_main);
    conc_aio_datagram *d;
    conc_buf b = CONC_BUF_INIT;
    assert_conc(conc_aio_datagram_open(NULL, 0, NULL, 0, NULL, &d),
                CONC_EINVAL);
    assert_conc(conc_aio_datagram_open("::1", 0, "127.0.0.1", 9, NULL, &d),
                CONC_EINVAL);
    assert_conc_ok(conc_aio_datagram_open("127.0.0.1", 0, NULL, 0, NULL, &d));
    assert_conc(conc_aio_datagram_recvfrom(d, 0, &b, NULL), CONC_ESTATE);
    conc_aio_datagram_free(d);
    conc_aio_datagram_free(NULL);
}

/* CPython's asyncio datagram endpoint as the peer: conc sends, asyncio
 * answers upper-cased. */
MAIN(python_datagram_main)
{
    (void)len, (void)result;
    conc_aio_datagram *d;
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_datagram_open(NULL, 0, "127.0.0.1",
                                          *(const int *)arg, NULL, &d));
    for (int i = 0; i < PEER_N; i++) {
        char msg[16], want[16];
        snprintf(msg, sizeof msg, "ping %d", i);
        snprintf(want, sizeof want, "PING %d", i);
        assert_conc_ok(
            conc_aio_datagram_sendto(d, msg, strlen(msg), NULL, 0, PEER_WAIT));
        assert_conc_ok(conc_aio_datagram_recvfrom(d, PEER_WAIT, &b, NULL));
        assert_buf(&b, want);
    }
    conc_buf_free(&b);
    conc_aio_datagram_free(d);
    return 0;
}

static void
test_python_datagram_peer(void **state)
{
    (void)state;
    if (access(PYTHON, X_OK) != 0)
        skip();
    char count[8];
    snprintf(count, sizeof count, "%d", PEER_N);
    char *argv[] = {PYTHON, DGRAM_PEER, count, NULL};
    conc_popen *p = conc_test_peer_start(argv);
    int out, rc = -1;
    int port = conc_test_peer_port(p, PEER_WAIT, &out);
    char line[64];
    assert_conc_ok(
        conc_aio_run(python_datagram_main, &port, sizeof port, NULL));
    conc_test_read_line(out, PEER_WAIT, line, sizeof line);
    assert_string_equal(line, "done");
    assert_conc_ok(conc_popen_wait(p, PEER_WAIT, &rc));
    assert_int_equal(rc, 0);
    conc_popen_free(p);
}

/* ---- Servers on every core ---------------------------------------------- */

/* The loops the group's handlers ran on, from every loop's thread. */
struct seen {
    pthread_mutex_t mu;
    conc_aio_loop *loops[LOOPS];
    int n, conns;
};

static int
note_and_echo(void *arg, conc_aio_stream *s)
{
    struct seen *sn = arg;
    conc_aio_loop *loop;
    conc_aio_get_running_loop(&loop);
    pthread_mutex_lock(&sn->mu);
    int known = 0;
    for (int i = 0; i < sn->n; i++)
        known |= sn->loops[i] == loop;
    if (!known && sn->n < LOOPS)
        sn->loops[sn->n++] = loop;
    sn->conns++;
    pthread_mutex_unlock(&sn->mu);
    return echo(NULL, s);
}

static int
group_client(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_buf peer = CONC_BUF_INIT;
    round_trip("127.0.0.1", *(const int *)arg, &peer);
    conc_buf_free(&peer);
    return 0;
}

MAIN(group_clients_main)
{
    (void)len, (void)result;
    conc_future *fs[NCONN];
    for (int i = 0; i < NCONN; i++)
        assert_conc_ok(
            conc_aio_create_task(group_client, arg, sizeof(int), NULL, &fs[i]));
    assert_conc_ok(conc_aio_gather(fs, NCONN, 0));
    for (int i = 0; i < NCONN; i++)
        conc_future_free(fs[i]);
    return 0;
}

MAIN(refused_main)
{
    (void)len, (void)result;
    conc_aio_stream *s;
    return conc_aio_open_connection("127.0.0.1", *(const int *)arg, NULL, BOUND,
                                    &s) == -ECONNREFUSED
               ? 0
               : CONC_EVALUE;
}

static void
test_server_group(void **state)
{
    (void)state;
    struct seen sn = {.mu = PTHREAD_MUTEX_INITIALIZER};
    conc_aio_server_group *g;
    assert_conc_ok(conc_aio_server_group_start("127.0.0.1", 0, LOOPS,
                                               note_and_echo, &sn, NULL, &g));
    assert_int_equal(conc_aio_server_group_loops(g), LOOPS);
    int port = conc_aio_server_group_port(g);
    assert_true(port > 0);
    assert_conc_ok(conc_aio_run(group_clients_main, &port, sizeof port, NULL));
    assert_conc_ok(conc_aio_server_group_stop(g, BOUND));
    pthread_mutex_lock(&sn.mu);
    assert_int_equal(sn.conns, NCONN);
    assert_int_equal(sn.n, LOOPS); /* the kernel spread them */
    pthread_mutex_unlock(&sn.mu);
    assert_conc_ok(conc_aio_server_group_stop(g, BOUND));
    assert_conc_ok(conc_aio_run(refused_main, &port, sizeof port, NULL));
    conc_aio_server_group_free(g);
}

/* A handler that never returns by itself: stop cancels it after the
 * timeout, and says so. */
static int
waits_forever(void *arg, conc_aio_stream *s)
{
    conc_event_set(arg);
    conc_buf b = CONC_BUF_INIT;
    int r = conc_aio_stream_read(s, 1, CONC_FOREVER, &b);
    conc_buf_free(&b);
    return r;
}

static int
stop_group(void *arg)
{
    return conc_aio_server_group_stop(arg, SHORT) == CONC_ETIMEDOUT ? 0 : -1;
}

struct hold {
    int port;
    conc_event *held;
    conc_aio_server_group *g;
};

/* Holds a connection open while another thread stops the group. */
MAIN(hold_main)
{
    (void)len, (void)result;
    const struct hold *h = arg;
    conc_aio_stream *s;
    assert_conc_ok(
        conc_aio_open_connection("127.0.0.1", h->port, NULL, BOUND, &s));
    assert_conc_ok(conc_event_wait(h->held, BOUND));
    conc_thread *t;
    assert_conc_ok(conc_thread_start(stop_group, h->g, NULL, &t));
    /* The cancelled handler's stream is closed: the end of stream. */
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_stream_read(s, 1, BOUND, &b));
    assert_int_equal(b.len, 0);
    int status = -1;
    assert_conc_ok(conc_thread_join(t, BOUND, &status));
    assert_int_equal(status, 0);
    conc_thread_free(t);
    conc_aio_stream_free(s);
    return 0;
}

static void
test_server_group_stop_cancels(void **state)
{
    (void)state;
    conc_event *held;
    assert_conc_ok(conc_event_new(NULL, &held));
    struct hold h = {.held = held};
    assert_conc_ok(conc_aio_server_group_start(NULL, 0, LOOPS, waits_forever,
                                               held, NULL, &h.g));
    h.port = conc_aio_server_group_port(h.g);
    assert_conc_ok(conc_aio_run(hold_main, &h, sizeof h, NULL));
    conc_aio_server_group_free(h.g);
    conc_event_free(held);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_sock_echo),
        conc_unit_test(test_sock_errors),
        conc_unit_test(test_resolve_and_ipv6),
        conc_unit_test(test_datagram),
        conc_unit_test(test_python_datagram_peer),
        conc_unit_test(test_server_group),
        conc_unit_test(test_server_group_stop_cancels),
    };
    warm_up_threads();
    return conc_run_tests(tests);
}
