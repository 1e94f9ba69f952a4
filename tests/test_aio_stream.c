/* Streams and servers on the loop (aio_stream.h): an echo server and its
 * client in one loop, a hundred connections at once, the reader's edge
 * cases with bytes arriving one at a time, end of stream and a peer's
 * reset, backpressure on both sides, cancellation of a blocked read and
 * drain, Unix sockets, and CPython's asyncio as the peer.
 *
 * Every wait a test expects to end has a bounded timeout; the leak guard
 * checks that no descriptor is left open. */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"

#ifndef CONC_PEERS_DIR
#error "CONC_PEERS_DIR must name tests/peers"
#endif
#define PYTHON    "/usr/bin/python3"
#define PEER      CONC_PEERS_DIR "/stream_peer.py"
#define PEER_WAIT 30.0 /* seconds: bound on any wait for the peer */
#define LINES     100
#define BLOB      (256 * 1024)

#define BOUND  5.0  /* seconds: a wait that must end well before this */
#define SHORT  0.05 /* seconds: a timeout meant to run out */
#define NCONN  100  /* concurrent connections */
#define MSG    1024 /* bytes per echo message */
#define CHUNK  (16 * 1024)
#define TURNS  50          /* loop turns that let callbacks settle */
#define RCHUNK (64 * 1024) /* what one callback reads at most */

#define MAIN(name)                                                             \
    static int name(const void *arg, size_t len, conc_buf *result)
#define UNUSED_ARGS (void)arg, (void)len, (void)result

static void
run(conc_task_fn main)
{
    assert_conc_ok(conc_aio_run(main, NULL, 0, NULL));
}

static void
turns(int n)
{
    for (int i = 0; i < n; i++)
        assert_conc_ok(conc_aio_sleep(0));
}

/* Echoes what comes until the end of stream. */
static int
echo(void *arg, conc_aio_stream *s)
{
    (void)arg;
    conc_buf b = CONC_BUF_INIT;
    int r;
    while ((r = conc_aio_stream_read(s, RCHUNK, BOUND, &b)) == 0 && b.len) {
        if ((r = conc_aio_stream_write(s, b.data, b.len)) < 0 ||
            (r = conc_aio_stream_drain(s, BOUND)) < 0)
            break;
    }
    conc_buf_free(&b);
    return r;
}

static conc_aio_server *
echo_server(void)
{
    conc_aio_loop *loop;
    conc_aio_server *srv;
    assert_conc_ok(conc_aio_get_running_loop(&loop));
    assert_conc_ok(
        conc_aio_start_server(loop, "127.0.0.1", 0, echo, NULL, NULL, &srv));
    assert_true(conc_aio_server_port(srv) > 0);
    return srv;
}

static void
stop_server(conc_aio_server *srv)
{
    assert_conc_ok(conc_aio_server_close(srv));
    assert_conc_ok(conc_aio_server_wait_closed(srv, BOUND));
    conc_aio_server_free(srv);
}

static void
assert_buf(const conc_buf *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
}

static void
close_stream(conc_aio_stream *s)
{
    assert_conc_ok(conc_aio_stream_close(s));
    assert_conc_ok(conc_aio_stream_wait_closed(s, BOUND));
    conc_aio_stream_free(s);
}

/* ---- Echo ------------------------------------------------------------- */

MAIN(echo_main)
{
    UNUSED_ARGS;
    conc_aio_server *srv = echo_server();
    conc_aio_stream *s;
    assert_conc_ok(conc_aio_open_connection(
        "127.0.0.1", conc_aio_server_port(srv), NULL, BOUND, &s));
    conc_buf b = CONC_BUF_INIT, name = CONC_BUF_INIT;
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%d", conc_aio_server_port(srv));
    assert_conc_ok(conc_aio_stream_peername(s, &name));
    assert_buf(&name, want);
    assert_conc_ok(conc_aio_stream_sockname(s, &name));
    assert_true(name.len > strlen("127.0.0.1:"));
    assert_conc_ok(conc_aio_stream_write(s, "hello\nworld\n", 12));
    assert_conc_ok(conc_aio_stream_drain(s, BOUND));
    assert_conc_ok(conc_aio_stream_readline(s, BOUND, &b));
    assert_buf(&b, "hello\n");
    assert_conc_ok(conc_aio_stream_readline(s, BOUND, &b));
    assert_buf(&b, "world\n");
    assert_conc_ok(conc_aio_stream_write_eof(s));
    assert_conc(conc_aio_stream_write(s, "x", 1), CONC_ECLOSED);
    assert_conc_ok(conc_aio_stream_read(s, CONC_AIO_READ_ALL, BOUND, &b));
    assert_int_equal(b.len, 0);
    assert_int_equal(conc_aio_stream_at_eof(s), 1);
    assert_int_equal(conc_aio_stream_is_closing(s), 0);
    close_stream(s);
    stop_server(srv);
    conc_buf_free(&b);
    conc_buf_free(&name);
    return 0;
}

static void
test_echo(void **state)
{
    (void)state;
    run(echo_main);
}

/* ---- A hundred connections --------------------------------------------- */

static int
one_client(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    int port = *(const int *)arg;
    conc_aio_stream *s;
    int r = conc_aio_open_connection("127.0.0.1", port, NULL, BOUND, &s);
    if (r < 0)
        return r;
    uint8_t msg[MSG];
    for (size_t i = 0; i < MSG; i++)
        msg[i] = (uint8_t)(i * 7 + (size_t)port);
    conc_buf b = CONC_BUF_INIT;
    if ((r = conc_aio_stream_write(s, msg, MSG)) == 0 &&
        (r = conc_aio_stream_readexactly(s, MSG, BOUND, &b)) == 0 &&
        memcmp(b.data, msg, MSG) != 0)
        r = CONC_EVALUE;
    conc_buf_free(&b);
    conc_aio_stream_free(s);
    return r;
}

MAIN(many_main)
{
    UNUSED_ARGS;
    conc_aio_server *srv = echo_server();
    int port = conc_aio_server_port(srv);
    conc_future *fs[NCONN];
    for (int i = 0; i < NCONN; i++)
        assert_conc_ok(
            conc_aio_create_task(one_client, &port, sizeof port, NULL, &fs[i]));
    assert_conc_ok(conc_aio_gather(fs, NCONN, 1));
    for (int i = 0; i < NCONN; i++) {
        int code = 1;
        assert_conc_ok(conc_future_exception(fs[i], 0, &code));
        assert_conc_ok(code);
        conc_future_free(fs[i]);
    }
    stop_server(srv);
    return 0;
}

static void
test_many_connections(void **state)
{
    (void)state;
    run(many_main);
}

/* ---- The reader's edge cases, one byte at a time ------------------------ */

struct feed {
    int fd;
    const char *data;
};

/* Writes one byte per loop turn, then closes: every read is split. */
static int
feeder(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct feed *f = arg;
    for (const char *p = f->data; *p; p++) {
        if (write(f->fd, p, 1) != 1)
            return -errno;
        conc_aio_sleep(0);
    }
    close(f->fd);
    return 0;
}

MAIN(split_main)
{
    UNUSED_ARGS;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conc_aio_stream *s;
    conc_aio_stream_opts o = {.limit = 8};
    assert_conc_ok(conc_aio_stream_from_fd(sv[0], &o, &s));
    struct feed f = {sv[1], "ab\ncd--efg0123456789\nyz"};
    conc_future *ft;
    assert_conc_ok(conc_aio_create_task(feeder, &f, sizeof f, NULL, &ft));
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_stream_readline(s, BOUND, &b));
    assert_buf(&b, "ab\n");
    assert_conc_ok(conc_aio_stream_readuntil(s, "--", 2, BOUND, &b));
    assert_buf(&b, "cd--");
    assert_conc_ok(conc_aio_stream_readexactly(s, 3, BOUND, &b));
    assert_buf(&b, "efg");
    /* Past the limit: nothing is consumed, and b is left as it was. */
    assert_conc(conc_aio_stream_readuntil(s, "\n", 1, BOUND, &b), CONC_ELIMIT);
    assert_buf(&b, "efg");
    assert_conc_ok(conc_aio_stream_readexactly(s, 11, BOUND, &b));
    assert_buf(&b, "0123456789\n");
    /* The peer closes mid-message: the partial bytes stay buffered. */
    assert_conc(conc_aio_stream_readexactly(s, 5, BOUND, &b), CONC_EINCOMPLETE);
    assert_int_equal(conc_aio_stream_at_eof(s), 0);
    assert_conc(conc_aio_stream_readuntil(s, "\n", 1, BOUND, &b),
                CONC_EINCOMPLETE);
    assert_conc_ok(conc_aio_stream_read(s, 100, BOUND, &b));
    assert_buf(&b, "yz");
    assert_int_equal(conc_aio_stream_at_eof(s), 1);
    assert_conc_ok(conc_aio_stream_read(s, 100, BOUND, &b));
    assert_int_equal(b.len, 0);
    assert_conc_ok(conc_aio_stream_readline(s, BOUND, &b));
    assert_int_equal(b.len, 0);
    assert_conc_ok(conc_aio_await(ft));
    conc_future_free(ft);
    conc_buf_free(&b);
    conc_aio_stream_free(s);
    return 0;
}

static void
test_split_reads(void **state)
{
    (void)state;
    run(split_main);
}

MAIN(readline_limit_main)
{
    UNUSED_ARGS;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    const char *data = "0123456789\nok\nlast";
    assert_int_equal(write(sv[1], data, strlen(data)), (ssize_t)strlen(data));
    close(sv[1]);
    conc_aio_stream *s;
    conc_aio_stream_opts o = {.limit = 8};
    assert_conc_ok(conc_aio_stream_from_fd(sv[0], &o, &s));
    conc_buf b = CONC_BUF_INIT;
    /* asyncio drops the long line and says so. */
    assert_conc(conc_aio_stream_readline(s, BOUND, &b), CONC_ELIMIT);
    assert_conc_ok(conc_aio_stream_readline(s, BOUND, &b));
    assert_buf(&b, "ok\n");
    assert_conc_ok(conc_aio_stream_readline(s, BOUND, &b));
    assert_buf(&b, "last");
    assert_conc(conc_aio_stream_readuntil(s, "", 0, BOUND, &b), CONC_EINVAL);
    assert_conc_ok(conc_aio_stream_readexactly(s, 0, BOUND, &b));
    assert_int_equal(b.len, 0);
    conc_buf_free(&b);
    conc_aio_stream_free(s);
    return 0;
}

static void
test_readline_limit(void **state)
{
    (void)state;
    run(readline_limit_main);
}

/* ---- Errors -------------------------------------------------------------- */

/* A listening socket of the test's own, with a port. */
static int
raw_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

MAIN(reset_main)
{
    UNUSED_ARGS;
    int port, lfd = raw_listener(&port);
    conc_aio_stream *s;
    assert_conc_ok(
        conc_aio_open_connection("localhost", port, NULL, BOUND, &s));
    int peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(peer >= 0);
    close(lfd);
    /* A zero linger makes close send a reset. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg),
                     0);
    close(peer);
    conc_buf b = CONC_BUF_INIT;
    assert_conc(conc_aio_stream_read(s, 10, BOUND, &b), -ECONNRESET);
    assert_conc(conc_aio_stream_write(s, "x", 1), -ECONNRESET);
    assert_conc(conc_aio_stream_drain(s, BOUND), -ECONNRESET);
    conc_buf_free(&b);
    close_stream(s);

    /* Nothing listens on the port any more. */
    assert_conc(conc_aio_open_connection("127.0.0.1", port, NULL, BOUND, &s),
                -ECONNREFUSED);
    assert_conc(
        conc_aio_open_connection("no-such-host.invalid", port, NULL, BOUND, &s),
        CONC_ENOENT);
    return 0;
}

static void
test_reset_and_refused(void **state)
{
    (void)state;
    run(reset_main);
}

/* ---- Backpressure ---------------------------------------------------------
 */

static int
sink(const void *arg, size_t len, conc_buf *result)
{
    (void)len;
    conc_aio_stream *s = *(conc_aio_stream *const *)arg;
    conc_buf b = CONC_BUF_INIT;
    size_t total = 0;
    int r;
    while ((r = conc_aio_stream_read(s, RCHUNK, BOUND, &b)) == 0 && b.len)
        total += b.len;
    conc_buf_free(&b);
    conc_buf_append(result, &total, sizeof total);
    return r;
}

MAIN(drain_main)
{
    UNUSED_ARGS;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conc_aio_stream *w, *rd;
    conc_aio_stream_opts o = {.high_water = 64 * 1024,
                              .write_limit = 256 * 1024};
    assert_conc_ok(conc_aio_stream_from_fd(sv[0], &o, &w));
    assert_conc_ok(conc_aio_stream_from_fd(sv[1], NULL, &rd));
    static uint8_t chunk[CHUNK];
    size_t written = 0, rbytes, wbytes;
    int r;
    /* Nobody reads: writes are refused once the buffer is full. */
    while ((r = conc_aio_stream_write(w, chunk, CHUNK)) == 0)
        written += CHUNK;
    assert_conc(r, CONC_EFULL);
    assert_conc_ok(conc_aio_stream_buffered(w, &rbytes, &wbytes));
    assert_true(wbytes <= o.write_limit);
    assert_true(wbytes > o.high_water);
    assert_conc(conc_aio_stream_drain(w, SHORT), CONC_ETIMEDOUT);
    assert_conc(conc_aio_stream_drain(w, 0), CONC_ETIMEDOUT);
    /* The reader's buffer stopped at its pause mark, too. */
    assert_conc_ok(conc_aio_stream_buffered(rd, &rbytes, &wbytes));
    assert_true(rbytes <= 2 * 64 * 1024 + RCHUNK);
    /* A reader comes: drain returns at the low-water mark. */
    conc_future *f;
    assert_conc_ok(conc_aio_create_task(sink, &rd, sizeof rd, NULL, &f));
    assert_conc_ok(conc_aio_stream_drain(w, BOUND));
    assert_conc_ok(conc_aio_stream_buffered(w, &rbytes, &wbytes));
    assert_true(wbytes <= 16 * 1024);
    close_stream(w);
    assert_conc_ok(conc_aio_await(f));
    const void *data;
    size_t got, n;
    assert_conc_ok(conc_future_result(f, 0, &data, &n));
    assert_int_equal(n, sizeof got);
    memcpy(&got, data, sizeof got);
    assert_int_equal(got, written);
    conc_future_free(f);
    conc_aio_stream_free(rd);
    return 0;
}

static void
test_drain_backpressure(void **state)
{
    (void)state;
    run(drain_main);
}

/* A peer that writes a lot to a reader that does not read: the reader's
 * buffer stays at its pause mark and the rest waits in the writer. */
MAIN(read_pause_main)
{
    UNUSED_ARGS;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conc_aio_stream *w, *rd;
    conc_aio_stream_opts small = {.limit = 1024};
    assert_conc_ok(conc_aio_stream_from_fd(sv[0], NULL, &w));
    assert_conc_ok(conc_aio_stream_from_fd(sv[1], &small, &rd));
    size_t big = 4 * 1024 * 1024, rbytes, wbytes;
    uint8_t *data = calloc(1, big);
    assert_non_null(data);
    assert_conc_ok(conc_aio_stream_write(w, data, big));
    conc_buf b = CONC_BUF_INIT;
    /* One read registers the reader; then the loop turns. */
    assert_conc_ok(conc_aio_stream_read(rd, 1, BOUND, &b));
    turns(TURNS);
    assert_conc_ok(conc_aio_stream_buffered(rd, &rbytes, &wbytes));
    assert_true(rbytes <= 2 * small.limit + RCHUNK);
    assert_conc_ok(conc_aio_stream_buffered(w, &rbytes, &wbytes));
    assert_true(wbytes > 0);
    size_t total = 1;
    assert_conc_ok(conc_aio_stream_write_eof(w));
    while (conc_aio_stream_read(rd, RCHUNK, BOUND, &b) == 0 && b.len)
        total += b.len;
    assert_int_equal(total, big);
    free(data);
    conc_buf_free(&b);
    conc_aio_stream_free(w);
    conc_aio_stream_free(rd);
    return 0;
}

static void
test_read_pauses(void **state)
{
    (void)state;
    run(read_pause_main);
}

/* asyncio's hysteresis: reading pauses at twice the limit and resumes only
 * once a reader brings the buffer back to the limit (or waits for more). */
#define BAND 100 /* bytes from the limit, either side */

MAIN(read_hysteresis_main)
{
    UNUSED_ARGS;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conc_aio_stream *w, *rd;
    conc_aio_stream_opts small = {.limit = 1024};
    assert_conc_ok(conc_aio_stream_from_fd(sv[0], NULL, &w));
    assert_conc_ok(conc_aio_stream_from_fd(sv[1], &small, &rd));
    size_t big = 1024 * 1024, rbytes, wbytes, paused;
    uint8_t *data = calloc(1, big);
    assert_non_null(data);
    assert_conc_ok(conc_aio_stream_write(w, data, big));
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_stream_read(rd, 1, BOUND, &b));
    turns(TURNS);
    assert_conc_ok(conc_aio_stream_buffered(rd, &paused, &wbytes));
    assert_true(paused >= 2 * small.limit);
    /* Down into the band between the limit and twice it: still paused. */
    assert_conc_ok(
        conc_aio_stream_read(rd, paused - small.limit - BAND, BOUND, &b));
    turns(TURNS);
    assert_conc_ok(conc_aio_stream_buffered(rd, &rbytes, &wbytes));
    assert_int_equal(rbytes, small.limit + BAND);
    /* At the limit or below: reading resumes. */
    assert_conc_ok(conc_aio_stream_read(rd, 2 * BAND, BOUND, &b));
    turns(TURNS);
    assert_conc_ok(conc_aio_stream_buffered(rd, &rbytes, &wbytes));
    assert_true(rbytes >= 2 * small.limit);
    free(data);
    conc_buf_free(&b);
    conc_aio_stream_free(w);
    conc_aio_stream_free(rd);
    return 0;
}

static void
test_read_hysteresis(void **state)
{
    (void)state;
    run(read_hysteresis_main);
}

/* ---- Cancellation -------------------------------------------------------- */

static int
blocked_reader(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_aio_stream *s = *(conc_aio_stream *const *)arg;
    conc_buf b = CONC_BUF_INIT;
    int r = conc_aio_stream_read(s, 10, CONC_FOREVER, &b);
    conc_buf_free(&b);
    return r;
}

static int
blocked_drainer(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_aio_stream *s = *(conc_aio_stream *const *)arg;
    return conc_aio_stream_drain(s, CONC_FOREVER);
}

MAIN(cancel_main)
{
    UNUSED_ARGS;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conc_aio_stream *s, *peer;
    assert_conc_ok(conc_aio_stream_from_fd(sv[0], NULL, &s));
    assert_conc_ok(conc_aio_stream_from_fd(sv[1], NULL, &peer));
    conc_future *f;
    assert_conc_ok(
        conc_aio_create_task(blocked_reader, &s, sizeof s, NULL, &f));
    turns(2);
    /* A second reader while one waits is refused. */
    conc_buf b = CONC_BUF_INIT;
    assert_conc(conc_aio_stream_read(s, 1, 0, &b), CONC_ESTATE);
    assert_int_equal(conc_aio_task_cancel(f, NULL), 1);
    assert_conc(conc_aio_await(f), CONC_ECANCELED);
    conc_future_free(f);
    /* The stream still works after the cancelled read. */
    assert_conc_ok(conc_aio_stream_write(peer, "after", 5));
    assert_conc_ok(conc_aio_stream_read(s, 10, BOUND, &b));
    assert_buf(&b, "after");
    /* A read that must not wait still looks at the socket, though the last
     * one found it empty (a waiting read would leave that to epoll). */
    assert_conc_ok(conc_aio_stream_write(peer, "now", 3));
    assert_conc_ok(conc_aio_stream_drain(peer, BOUND));
    assert_conc_ok(conc_aio_stream_read(s, 10, 0, &b));
    assert_buf(&b, "now");

    /* A drain blocked on a peer that never reads. */
    static uint8_t chunk[CHUNK];
    while (conc_aio_stream_write(s, chunk, CHUNK) == 0)
        ;
    assert_conc_ok(
        conc_aio_create_task(blocked_drainer, &s, sizeof s, NULL, &f));
    turns(2);
    assert_int_equal(conc_aio_task_cancel(f, NULL), 1);
    assert_conc(conc_aio_await(f), CONC_ECANCELED);
    conc_future_free(f);
    /* Timeouts: one that runs out, and NaN. */
    assert_conc(conc_aio_stream_read(s, 1, SHORT, &b), CONC_ETIMEDOUT);
    assert_conc(conc_aio_stream_read(s, 1, 0, &b), CONC_ETIMEDOUT);
    assert_conc(conc_aio_stream_readline(s, NAN, &b), CONC_EINVAL);
    assert_conc(conc_aio_stream_drain(s, NAN), CONC_EINVAL);
    /* The peer's bytes are there without waiting. */
    assert_conc_ok(conc_aio_stream_read(peer, 1, 0, &b));
    assert_int_equal(b.len, 1);
    conc_buf_free(&b);
    conc_aio_stream_free(s);
    conc_aio_stream_free(peer);
    return 0;
}

static void
test_cancel_blocked(void **state)
{
    (void)state;
    run(cancel_main);
}

/* ---- Unix sockets ---------------------------------------------------------
 */

MAIN(unix_main)
{
    UNUSED_ARGS;
    char path[64];
    snprintf(path, sizeof path, "/tmp/conc-stream-%d.sock", (int)getpid());
    conc_aio_loop *loop;
    conc_aio_server *srv;
    assert_conc_ok(conc_aio_get_running_loop(&loop));
    assert_conc_ok(
        conc_aio_start_unix_server(loop, path, echo, NULL, NULL, &srv));
    assert_int_equal(conc_aio_server_port(srv), 0);
    conc_aio_stream *s;
    assert_conc_ok(conc_aio_open_unix_connection(path, NULL, BOUND, &s));
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_stream_peername(s, &b));
    assert_buf(&b, path);
    assert_conc_ok(conc_aio_stream_write(s, "ping\r\n", 6));
    assert_conc_ok(conc_aio_stream_readuntil(s, "\r\n", 2, BOUND, &b));
    assert_buf(&b, "ping\r\n");
    close_stream(s);
    stop_server(srv);
    assert_int_equal(access(path, F_OK), -1);
    conc_buf_free(&b);
    return 0;
}

static void
test_unix(void **state)
{
    (void)state;
    run(unix_main);
}

/* ---- CPython's asyncio as the peer ----------------------------------------
 */

static conc_popen *
peer_start(const char *mode, const char *port)
{
    char *argv[] = {PYTHON, PEER, (char *)mode, (char *)port, NULL};
    return conc_test_peer_start(argv);
}

/* conc's client against asyncio's echo server: lines, a large blob,
 * half-close. */
static int
client_of_python(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_aio_stream *s;
    assert_conc_ok(conc_aio_open_connection("127.0.0.1", *(const int *)arg,
                                            NULL, PEER_WAIT, &s));
    char line[32];
    for (int i = 0; i < LINES; i++) {
        int n = snprintf(line, sizeof line, "line %d\n", i);
        assert_conc_ok(conc_aio_stream_write(s, line, (size_t)n));
    }
    assert_conc_ok(conc_aio_stream_drain(s, PEER_WAIT));
    conc_buf b = CONC_BUF_INIT;
    for (int i = 0; i < LINES; i++) {
        snprintf(line, sizeof line, "line %d\n", i);
        assert_conc_ok(conc_aio_stream_readline(s, PEER_WAIT, &b));
        assert_buf(&b, line);
    }
    uint8_t *blob = malloc(BLOB);
    assert_non_null(blob);
    for (size_t i = 0; i < BLOB; i++)
        blob[i] = (uint8_t)i;
    assert_conc_ok(conc_aio_stream_write(s, blob, BLOB));
    assert_conc_ok(conc_aio_stream_readexactly(s, BLOB, PEER_WAIT, &b));
    assert_memory_equal(b.data, blob, BLOB);
    assert_conc_ok(conc_aio_stream_write_eof(s));
    assert_conc_ok(conc_aio_stream_read(s, CONC_AIO_READ_ALL, PEER_WAIT, &b));
    assert_int_equal(b.len, 0);
    free(blob);
    conc_buf_free(&b);
    close_stream(s);
    return 0;
}

struct served {
    conc_aio_event *done;
    int rc;
};

static int
echo_once(void *arg, conc_aio_stream *s)
{
    struct served *sv = arg;
    sv->rc = echo(NULL, s);
    conc_aio_event_set(sv->done);
    return 0;
}

/* asyncio's client against conc's echo server. */
static int
server_for_python(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_popen **pp = *(conc_popen * *const *)arg;
    struct served sv = {NULL, 1};
    conc_aio_loop *loop;
    conc_aio_server *srv;
    assert_conc_ok(conc_aio_event_new(&sv.done));
    assert_conc_ok(conc_aio_get_running_loop(&loop));
    assert_conc_ok(conc_aio_start_server(loop, "127.0.0.1", 0, echo_once, &sv,
                                         NULL, &srv));
    char port[16];
    snprintf(port, sizeof port, "%d", conc_aio_server_port(srv));
    *pp = peer_start("client", port);
    assert_conc_ok(conc_aio_event_wait(sv.done, PEER_WAIT));
    assert_conc_ok(sv.rc);
    stop_server(srv);
    conc_aio_event_free(sv.done);
    return 0;
}

static void
test_python_peer(void **state)
{
    (void)state;
    if (access(PYTHON, X_OK) != 0)
        skip();
    conc_popen *p = peer_start("server", NULL);
    int port = conc_test_peer_port(p, PEER_WAIT, NULL);
    assert_conc_ok(conc_aio_run(client_of_python, &port, sizeof port, NULL));
    conc_test_peer_finish_has(p, PEER_WAIT, "done");

    conc_popen **pp = &p;
    p = NULL;
    assert_conc_ok(conc_aio_run(server_for_python, &pp, sizeof pp, NULL));
    assert_non_null(p);
    conc_test_peer_finish_has(p, PEER_WAIT, "ok");
}

/* Outside a loop, a stream refuses to wait or to bind. */
static void
test_outside_a_loop(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conc_aio_stream *s;
    assert_conc(conc_aio_stream_from_fd(-1, NULL, &s), CONC_EINVAL);
    assert_conc_ok(conc_aio_stream_from_fd(sv[0], NULL, &s));
    conc_buf b = CONC_BUF_INIT;
    assert_conc(conc_aio_stream_read(s, 1, 0, &b), CONC_ESTATE);
    assert_conc(conc_aio_stream_write(s, "x", 1), CONC_ESTATE);
    assert_conc(conc_aio_stream_drain(s, 0), CONC_ESTATE);
    assert_conc(conc_aio_stream_wait_closed(s, 0), CONC_ESTATE);
    assert_int_equal(conc_aio_stream_at_eof(s), 0);
    assert_conc_ok(conc_aio_stream_close(s));
    assert_conc_ok(conc_aio_stream_close(s));
    assert_int_equal(conc_aio_stream_is_closing(s), 1);
    assert_conc(conc_aio_stream_write(s, "x", 1), CONC_ECLOSED);
    assert_conc(conc_aio_stream_peername(s, &b), CONC_ECLOSED);
    conc_aio_stream_free(s);
    conc_aio_stream_free(NULL);
    conc_aio_server_free(NULL);
    close(sv[1]);
}

/* ---- Many drainers, writelines, serve_forever ---------------------------- */

#define DRAINERS 5

static int
drainer(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_aio_stream *s = *(conc_aio_stream *const *)arg;
    return conc_aio_stream_drain(s, BOUND);
}

/* Fills s's write buffer to its limit and starts DRAINERS tasks on it. */
static void
fill_and_drain(conc_aio_stream *s, conc_future **fs)
{
    static uint8_t chunk[CHUNK];
    while (conc_aio_stream_write(s, chunk, CHUNK) == 0)
        ;
    for (int i = 0; i < DRAINERS; i++)
        assert_conc_ok(
            conc_aio_create_task(drainer, &s, sizeof s, NULL, &fs[i]));
    turns(2);
    for (int i = 0; i < DRAINERS; i++)
        assert_int_equal(conc_future_done(fs[i]), 0);
}

static void
await_all(conc_future **fs, int want)
{
    for (int i = 0; i < DRAINERS; i++) {
        assert_conc(conc_aio_await(fs[i]), want);
        conc_future_free(fs[i]);
    }
}

/* Many tasks drain one writer at once: all return once the peer reads,
 * and all get the error when the peer goes away instead. */
MAIN(drainers_main)
{
    UNUSED_ARGS;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conc_aio_stream *s, *peer;
    assert_conc_ok(conc_aio_stream_from_fd(sv[0], NULL, &s));
    assert_conc_ok(conc_aio_stream_from_fd(sv[1], NULL, &peer));
    conc_future *fs[DRAINERS];
    conc_buf b = CONC_BUF_INIT;
    fill_and_drain(s, fs);
    size_t rd, wr;
    do {
        assert_conc_ok(conc_aio_stream_read(peer, RCHUNK, BOUND, &b));
        assert_conc_ok(conc_aio_stream_buffered(s, &rd, &wr));
    } while (wr > 0);
    await_all(fs, 0);
    /* writelines: the parts arrive in order, as one write. */
    conc_buf parts[3] = {CONC_BUF_INIT, CONC_BUF_INIT, CONC_BUF_INIT};
    assert_conc_ok(conc_buf_append(&parts[0], "one\n", 4));
    assert_conc_ok(conc_buf_append(&parts[2], "three\n", 6));
    assert_conc_ok(conc_aio_stream_writelines(s, parts, 3));
    assert_conc_ok(conc_aio_stream_readline(peer, BOUND, &b));
    assert_buf(&b, "one\n");
    assert_conc_ok(conc_aio_stream_readline(peer, BOUND, &b));
    assert_buf(&b, "three\n");
    /* Refused as a whole past the limit: nothing queued. */
    fill_and_drain(s, fs);
    assert_conc_ok(conc_aio_stream_buffered(s, &rd, &wr));
    assert_conc(conc_aio_stream_writelines(s, parts, 3), CONC_EFULL);
    assert_conc_ok(conc_aio_stream_buffered(s, &rd, &b.len));
    assert_int_equal(b.len, wr);
    b.len = 0;
    /* The peer goes away without reading: every drainer is told. */
    conc_aio_stream_free(peer);
    for (int i = 0; i < DRAINERS; i++) {
        int r = conc_aio_await(fs[i]);
        assert_true(r == -EPIPE || r == -ECONNRESET);
        conc_future_free(fs[i]);
    }
    conc_buf_free(&parts[0]);
    conc_buf_free(&parts[2]);
    conc_buf_free(&b);
    conc_aio_stream_free(s);
    return 0;
}

static void
test_many_drainers(void **state)
{
    (void)state;
    run(drainers_main);
}

static int
server_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_aio_server *srv = *(conc_aio_server *const *)arg;
    return conc_aio_server_serve_forever(srv);
}

/* serve_forever returns when the server is closed, and cancelling it
 * closes the server; its sockets are listed. */
MAIN(serve_forever_main)
{
    UNUSED_ARGS;
    conc_aio_server *srv = echo_server();
    assert_true(conc_aio_server_socket(srv, 0) >= 0);
    assert_conc(conc_aio_server_socket(srv, 5), CONC_ENOENT);
    assert_int_equal(conc_aio_server_is_serving(srv), 1);
    conc_future *f;
    assert_conc_ok(
        conc_aio_create_task(server_task, &srv, sizeof srv, NULL, &f));
    turns(2);
    assert_int_equal(conc_future_done(f), 0);
    assert_conc_ok(conc_aio_server_close(srv));
    assert_conc_ok(conc_aio_await(f));
    conc_future_free(f);
    assert_int_equal(conc_aio_server_is_serving(srv), 0);
    assert_conc(conc_aio_server_socket(srv, 0), CONC_ECLOSED);
    conc_aio_server_free(srv);

    srv = echo_server();
    assert_conc_ok(
        conc_aio_create_task(server_task, &srv, sizeof srv, NULL, &f));
    turns(2);
    assert_int_equal(conc_aio_task_cancel(f, NULL), 1);
    assert_conc(conc_aio_await(f), CONC_ECANCELED);
    conc_future_free(f);
    assert_int_equal(conc_aio_server_is_serving(srv), 0);
    stop_server(srv);
    return 0;
}

static void
test_serve_forever(void **state)
{
    (void)state;
    run(serve_forever_main);
}

/* ---- A full descriptor table ------------------------------------------ */

#define EMFILE_WINDOW 1.0  /* seconds the table stays full */
#define EMFILE_CPU    0.15 /* seconds of CPU a spinning loop passes */

static double
cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* In a child: a connection waits in the backlog while accept fails with
 * EMFILE. The loop must back off (not spin on the listening socket), then
 * accept the connection once descriptors are free again. */
MAIN(emfile_main)
{
    UNUSED_ARGS;
    conc_aio_server *srv = echo_server();
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port =
                                  htons((uint16_t)conc_aio_server_port(srv)),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof sin) < 0)
        return -__LINE__;
    struct rlimit old, low;
    int next = dup(0);
    close(next);
    getrlimit(RLIMIT_NOFILE, &old);
    low = (struct rlimit){.rlim_cur = (rlim_t)next, .rlim_max = old.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &low) < 0)
        return -__LINE__;
    double cpu = cpu_seconds();
    if (conc_aio_sleep(EMFILE_WINDOW) < 0)
        return -__LINE__;
    cpu = cpu_seconds() - cpu;
    setrlimit(RLIMIT_NOFILE, &old);
    if (cpu >= EMFILE_CPU) {
        fprintf(stderr, "the loop spun: %.3f s of CPU in %.1f s\n", cpu,
                EMFILE_WINDOW);
        return -__LINE__;
    }
    /* The connection is accepted after the back-off and echoed. */
    if (send(c, "abc", 3, 0) != 3)
        return -__LINE__;
    conc_aio_stream *s;
    if (conc_aio_stream_from_fd(c, NULL, &s) < 0)
        return -__LINE__;
    conc_buf b = CONC_BUF_INIT;
    int r = conc_aio_stream_readexactly(s, 3, BOUND, &b);
    int ok = r == 0 && b.len == 3 && memcmp(b.data, "abc", 3) == 0;
    conc_buf_free(&b);
    conc_aio_stream_free(s);
    stop_server(srv);
    return ok ? 0 : -__LINE__;
}

static int
emfile_child(void *arg)
{
    (void)arg;
    int r = conc_aio_run(emfile_main, NULL, 0, NULL);
    if (r != 0)
        fprintf(stderr, "emfile_main failed at line %d\n", -r);
    return r != 0;
}

static void
test_accept_emfile(void **state)
{
    (void)state;
    reap(fork_child(emfile_child, NULL));
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_echo),
        conc_unit_test(test_many_connections),
        conc_unit_test(test_split_reads),
        conc_unit_test(test_readline_limit),
        conc_unit_test(test_reset_and_refused),
        conc_unit_test(test_drain_backpressure),
        conc_unit_test(test_read_pauses),
        conc_unit_test(test_read_hysteresis),
        conc_unit_test(test_cancel_blocked),
        conc_unit_test(test_unix),
        conc_unit_test(test_python_peer),
        conc_unit_test(test_outside_a_loop),
        conc_unit_test(test_accept_emfile),
        conc_unit_test(test_many_drainers),
        conc_unit_test(test_serve_forever),
    };
    warm_up_threads();
    return conc_run_tests(tests);
}
