/* Tests for pipes and connections (conc/ipc.h).
 *
 * Most tests fork a child that holds one end. A child never returns into
 * cmocka: it runs a function that returns 0 or the line of the first check
 * that failed, and _exits with that; the parent reaps it and expects 0. */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"
#include "ipc/ipc_internal.h"

/* ---- helpers ------------------------------------------------------------- */

/* In a child: report the failing line and return a nonzero status. */
#define CHECK(e)                                                               \
    do {                                                                       \
        if (!(e)) {                                                            \
            fprintf(stderr, "child check failed at %s:%d: %s\n", __FILE__,     \
                    __LINE__, #e);                                             \
            return 1;                                                          \
        }                                                                      \
    } while (0)

/* The ring's sleep slice (src/ipc/ring.c SLICE_NS), in seconds. */
#define RING_SLICE_S 0.02

static void
fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 131u + seed + (i >> 12));
}

static int
check_fill(const uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)(i * 131u + seed + (i >> 12)))
            return 0;
    return 1;
}

static uint8_t *
pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    fill(p, n, seed);
    return p;
}

/* Writes all of `n` raw bytes to a descriptor (to fake a peer). */
static int
raw_write(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static void
raw_header(uint8_t *hdr, unsigned kind, uint64_t len)
{
    conc__frame_put(hdr, kind, len);
}

struct two {
    conc_conn *mine;  /* the end the child uses */
    conc_conn *other; /* the end the child frees */
    int fd;           /* a raw descriptor, when the test needs one */
    int sync;         /* a pipe end used to pace the child */
};

/* ---- duplex both ways (the seed's Pipe program) -------------------------- */

static int
seed_child(void *arg)
{
    struct two *t = arg;
    conc_conn_free(t->other);
    CHECK(conc_conn_send_bytes(t->mine, "hello from child", 16, CONC_FOREVER) ==
          0);
    CHECK(conc_conn_send_bytes(t->mine, "hello from child2", 17,
                               CONC_FOREVER) == 0);
    conc_buf b = CONC_BUF_INIT;
    CHECK(conc_conn_recv_bytes(t->mine, 10.0, &b) == 0);
    CHECK(b.len == 6 && memcmp(b.data, "parent", 6) == 0);
    conc_buf_free(&b);
    conc_conn_free(t->mine);
    return 0;
}

static void
test_duplex_both_ways(void **state)
{
    (void)state;
    conc_conn *parent, *child;
    assert_conc_ok(conc_pipe(NULL, &parent, &child));
    assert_int_equal(conc_conn_readable(parent), 1);
    assert_int_equal(conc_conn_writable(parent), 1);
    struct two t = {.mine = child, .other = parent};
    pid_t pid = fork_child(seed_child, &t);
    conc_conn_free(child);
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_conn_recv_bytes(parent, 10.0, &b));
    assert_memory_equal(b.data, "hello from child", 16);
    assert_int_equal(b.len, 16);
    assert_conc_ok(conc_conn_recv_bytes(parent, 10.0, &b));
    assert_int_equal(b.len, 17);
    assert_memory_equal(b.data, "hello from child2", 17);
    assert_conc_ok(conc_conn_send_bytes(parent, "parent", 6, CONC_FOREVER));
    /* The child exits after reading: its end closes, and EOF follows. */
    assert_conc(conc_conn_recv_bytes(parent, 10.0, &b), CONC_ECLOSED);
    reap(pid);
    conc_buf_free(&b);
    conc_conn_free(parent);
}

/* ---- simplex ------------------------------------------------------------- */

static void
test_simplex_directions(void **state)
{
    (void)state;
    conc_conn *r, *w;
    assert_conc_ok(conc_pipe(&(conc_pipe_opts){.simplex = 1}, &r, &w));
    assert_int_equal(conc_conn_readable(r), 1);
    assert_int_equal(conc_conn_writable(r), 0);
    assert_int_equal(conc_conn_readable(w), 0);
    assert_int_equal(conc_conn_writable(w), 1);
    conc_buf b = CONC_BUF_INIT;
    size_t len;
    char small[4];
    assert_conc(conc_conn_send_bytes(r, "x", 1, CONC_FOREVER), CONC_EBADF);
    assert_conc(conc_conn_recv_bytes(w, 0, &b), CONC_EBADF);
    assert_conc(conc_conn_recv_bytes_into(w, small, 4, 0, &len), CONC_EBADF);
    assert_conc(conc_conn_poll(w, 0), CONC_EBADF);
    assert_conc_ok(conc_conn_send_bytes(w, "abc", 3, CONC_FOREVER));
    assert_int_equal(conc_conn_poll(r, 1.0), 1);
    assert_conc_ok(conc_conn_recv_bytes_into(r, small, 4, 1.0, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(small, "abc", 3);
    assert_int_equal(conc_conn_poll(r, 0), 0);
    conc_conn_free(w);
    assert_conc(conc_conn_recv_bytes(r, 1.0, &b), CONC_ECLOSED);
    conc_buf_free(&b);
    conc_conn_free(r);
}

/* Forks a child that runs fn with b as its end of the pair (a, which fn
 * closes, as the other); the parent closes b and keeps a. Returns the
 * child's pid. */
static pid_t
fork_peer(int (*fn)(void *), conc_conn *a, conc_conn *b)
{
    struct two t = {.mine = b, .other = a};
    pid_t pid = fork_child(fn, &t);
    conc_conn_free(b);
    return pid;
}

/* ---- message boundaries for many sizes ----------------------------------- */

/* A child's loop: sends back each message until the peer closes; with
 * `rings`, checks that the connection moved to rings both ways. */
static int
echo_until_closed(struct two *t, int rings)
{
    conc_conn_free(t->other);
    conc_buf b = CONC_BUF_INIT;
    int r;
    while ((r = conc_conn_recv_bytes(t->mine, 30.0, &b)) == 0)
        CHECK(conc_conn_send_bytes(t->mine, b.data, b.len, CONC_FOREVER) == 0);
    CHECK(r == CONC_ECLOSED);
    CHECK(!rings || (t->mine->rx_ring && t->mine->tx_ring));
    conc_buf_free(&b);
    conc_conn_free(t->mine);
    return 0;
}

static int
echo_child(void *arg)
{
    return echo_until_closed(arg, 0);
}

static const size_t sizes[] = {0,
                               1,
                               2,
                               7,
                               8,
                               9,
                               100,
                               4095,
                               4096,
                               CONC__CONN_INBUF - 2 * CONC__FRAME_HDR,
                               CONC__CONN_INBUF - CONC__FRAME_HDR,
                               CONC__CONN_INBUF - CONC__FRAME_HDR + 1,
                               CONC__CONN_INBUF,
                               CONC__CONN_INBUF + 1,
                               300000,
                               1u << 20,
                               16u << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void
test_boundaries_echo(void **state)
{
    (void)state;
    {
        conc_conn *a, *b;
        assert_conc_ok(conc_pipe(NULL, &a, &b));
        pid_t pid = fork_peer(echo_child, a, b);
        uint8_t *big = pattern(16u << 20, 0);
        uint8_t *into = malloc(16u << 20);
        assert_non_null(into);
        conc_buf got = CONC_BUF_INIT;
        for (size_t i = 0; i < NSIZES; i++) {
            size_t n = sizes[i];
            assert_conc_ok(conc_conn_send_bytes(a, big, n, CONC_FOREVER));
            assert_conc_ok(conc_conn_recv_bytes(a, 30.0, &got));
            assert_int_equal(got.len, n);
            assert_true(n == 0 || memcmp(got.data, big, n) == 0);
            /* And the same size into a caller buffer. */
            size_t len = 12345;
            assert_conc_ok(conc_conn_send_bytes(a, big, n, CONC_FOREVER));
            assert_conc_ok(
                conc_conn_recv_bytes_into(a, into, 16u << 20, 30.0, &len));
            assert_int_equal(len, n);
            assert_true(n == 0 || memcmp(into, big, n) == 0);
        }
        conc_conn_free(a);
        reap(pid);
        conc_buf_free(&got);
        free(big);
        free(into);
    }
}

/* Many messages written back to back arrive with their boundaries, many
 * of them per read. */
static int
burst_child(void *arg)
{
    struct two *t = arg;
    conc_conn_free(t->other);
    uint8_t p[200];
    fill(p, sizeof p, 7);
    for (size_t i = 0; i < 1000; i++)
        CHECK(conc_conn_send_bytes(t->mine, p, i % 97, CONC_FOREVER) == 0);
    conc_conn_free(t->mine);
    return 0;
}

static void
test_boundaries_burst(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    struct two t = {.mine = a, .other = b};
    pid_t pid = fork_child(burst_child, &t);
    conc_conn_free(a);
    uint8_t *p = pattern(200, 7);
    conc_buf got = CONC_BUF_INIT;
    uint8_t into[128];
    for (size_t i = 0; i < 1000; i++) {
        size_t n;
        const uint8_t *data = into;
        if (i % 2) {
            assert_conc_ok(conc_conn_recv_bytes(b, 10.0, &got));
            n = got.len;
            data = got.data;
        } else {
            assert_conc_ok(
                conc_conn_recv_bytes_into(b, into, sizeof into, 10.0, &n));
        }
        assert_int_equal(n, i % 97);
        assert_true(n == 0 || memcmp(data, p, n) == 0);
    }
    assert_conc(conc_conn_recv_bytes(b, 10.0, &got), CONC_ECLOSED);
    reap(pid);
    conc_buf_free(&got);
    free(p);
    conc_conn_free(b);
}

/* ---- recv_bytes_into with too small a buffer ----------------------------- */

static int
send_big_child(void *arg)
{
    struct two *t = arg;
    conc_conn_free(t->other);
    uint8_t *p = malloc(300000);
    CHECK(p);
    fill(p, 300000, 3);
    CHECK(conc_conn_send_bytes(t->mine, p, 300000, CONC_FOREVER) == 0);
    CHECK(conc_conn_send_bytes(t->mine, p, 300000, CONC_FOREVER) == 0);
    free(p);
    conc_conn_free(t->mine);
    return 0;
}

static void
test_recv_into_too_small(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    /* A small message. */
    assert_conc_ok(
        conc_conn_send_bytes(a, "0123456789abcdef", 16, CONC_FOREVER));
    char buf[8];
    size_t len = 0;
    assert_conc(conc_conn_recv_bytes_into(b, buf, sizeof buf, 1.0, &len),
                CONC_EMSGSIZE);
    assert_int_equal(len, 16);
    assert_conc(conc_conn_recv_bytes_into(b, NULL, 0, 1.0, &len),
                CONC_EMSGSIZE);
    assert_int_equal(conc_conn_poll(b, 0), 1);
    conc_buf got = CONC_BUF_INIT;
    assert_conc_ok(conc_conn_recv_bytes(b, 1.0, &got));
    assert_int_equal(got.len, 16);
    assert_memory_equal(got.data, "0123456789abcdef", 16);
    conc_conn_free(a);
    conc_conn_free(b);

    /* A message larger than the input buffer, from a child. */
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    pid_t pid = fork_peer(send_big_child, a, b);
    uint8_t *into = malloc(300000);
    assert_non_null(into);
    assert_conc(conc_conn_recv_bytes_into(a, into, 1000, 10.0, &len),
                CONC_EMSGSIZE);
    assert_int_equal(len, 300000);
    assert_conc_ok(conc_conn_recv_bytes_into(a, into, 300000, 10.0, &len));
    assert_int_equal(len, 300000);
    assert_true(check_fill(into, 300000, 3));
    assert_conc(conc_conn_recv_bytes_into(a, into, 299999, 10.0, &len),
                CONC_EMSGSIZE);
    assert_conc_ok(conc_conn_recv_bytes(a, 10.0, &got));
    assert_int_equal(got.len, 300000);
    assert_true(check_fill(got.data, 300000, 3));
    assert_conc(conc_conn_recv_bytes(a, 10.0, &got), CONC_ECLOSED);
    reap(pid);
    free(into);
    conc_buf_free(&got);
    conc_conn_free(a);
}

/* ---- max_message --------------------------------------------------------- */

static void
test_max_message(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(&(conc_pipe_opts){.max_message = 100}, &a, &b));
    uint8_t *p = pattern(200, 1);
    conc_buf got = CONC_BUF_INIT;
    assert_conc_ok(conc_conn_send_bytes(a, p, 100, CONC_FOREVER));
    assert_conc_ok(conc_conn_recv_bytes(b, 1.0, &got));
    assert_int_equal(got.len, 100);
    assert_conc_ok(conc_conn_send_bytes(a, p, 101, CONC_FOREVER));
    assert_conc_ok(conc_conn_send_bytes(a, p, 1, CONC_FOREVER));
    assert_int_equal(conc_conn_poll(b, 1.0), 1);
    assert_conc(conc_conn_recv_bytes(b, 1.0, &got), CONC_EMSGSIZE);
    assert_int_equal(got.len, 100); /* a failed receive leaves it as it was */
    assert_memory_equal(got.data, p, 100);
    /* As in Python, the receiving side is now unusable; sending works. */
    assert_int_equal(conc_conn_readable(b), 0);
    assert_int_equal(conc_conn_writable(b), 1);
    assert_conc(conc_conn_recv_bytes(b, 1.0, &got), CONC_ECLOSED);
    assert_int_equal(conc_conn_poll(b, 0), 1);
    assert_conc_ok(conc_conn_send_bytes(b, p, 50, CONC_FOREVER));
    assert_conc_ok(conc_conn_recv_bytes(a, 1.0, &got));
    assert_int_equal(got.len, 50);
    /* recv_bytes_into checks the limit too. */
    size_t len;
    uint8_t into[200];
    assert_conc_ok(conc_conn_send_bytes(b, p, 150, CONC_FOREVER));
    assert_conc(conc_conn_recv_bytes_into(a, into, sizeof into, 1.0, &len),
                CONC_EMSGSIZE);
    assert_conc(conc_conn_recv_bytes_into(a, into, sizeof into, 1.0, &len),
                CONC_ECLOSED);
    conc_buf_free(&got);
    free(p);
    conc_conn_free(a);
    conc_conn_free(b);
}

/* ---- EOF ----------------------------------------------------------------- */

static int
last_words_child(void *arg)
{
    struct two *t = arg;
    conc_conn_free(t->other);
    CHECK(conc_conn_send_bytes(t->mine, "bye", 3, CONC_FOREVER) == 0);
    conc_conn_free(t->mine);
    return 0;
}

static void
test_eof(void **state)
{
    (void)state;
    conc_conn *a, *b;
    conc_buf got = CONC_BUF_INIT;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    conc_conn_free(b);
    assert_int_equal(conc_conn_poll(a, 0), 1);
    assert_conc(conc_conn_recv_bytes(a, 1.0, &got), CONC_ECLOSED);
    assert_conc(conc_conn_recv_bytes(a, 0, &got), CONC_ECLOSED);
    conc_conn_free(a);

    /* An end closed with unread input resets the connection: that too is
     * the end of the stream for the other side. */
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    assert_conc_ok(conc_conn_send_bytes(a, "unread", 6, CONC_FOREVER));
    assert_conc_ok(conc_conn_send_bytes(b, "read", 4, CONC_FOREVER));
    conc_conn_free(b);
    assert_conc_ok(conc_conn_recv_bytes(a, 1.0, &got));
    assert_int_equal(got.len, 4);
    assert_conc(conc_conn_recv_bytes(a, 1.0, &got), CONC_ECLOSED);
    assert_conc(conc_conn_send_bytes(a, "x", 1, CONC_FOREVER), CONC_EPIPE);
    conc_conn_free(a);

    /* After a fork, EOF comes only when every copy is closed. */
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    struct two t = {.mine = b, .other = a};
    pid_t pid = fork_child(last_words_child, &t);
    reap(pid);
    assert_conc_ok(conc_conn_recv_bytes(a, 1.0, &got));
    assert_int_equal(got.len, 3);
    assert_int_equal(conc_conn_poll(a, 0.02), 0); /* our copy of b is open */
    conc_conn_free(b);
    assert_int_equal(conc_conn_poll(a, 1.0), 1);
    assert_conc(conc_conn_recv_bytes(a, 1.0, &got), CONC_ECLOSED);
    conc_buf_free(&got);
    conc_conn_free(a);
}

/* A stream that ends inside a message, or is not conc's framing. */
static void
test_eof_mid_message_and_garbage(void **state)
{
    (void)state;
    for (int garbage = 0; garbage < 2; garbage++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                         0);
        conc_conn *a;
        assert_conc_ok(conc_conn_from_fd(sv[0], NULL, &a));
        uint8_t hdr[8];
        raw_header(hdr, garbage ? 0x77 : CONC__KIND_BYTES, 100);
        assert_int_equal(raw_write(sv[1], hdr, 8), 0);
        assert_int_equal(raw_write(sv[1], "0123456789", 10), 0);
        close(sv[1]);
        conc_buf got = CONC_BUF_INIT;
        assert_conc(conc_conn_recv_bytes(a, 1.0, &got), CONC_EPROTO);
        assert_int_equal(conc_conn_readable(a), 0);
        assert_conc(conc_conn_recv_bytes(a, 1.0, &got), CONC_ECLOSED);
        conc_buf_free(&got);
        conc_conn_free(a);
    }
    /* A descriptor frame on a pipe, where none can come. */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    conc_conn *r;
    assert_conc_ok(conc_conn_from_fd(p[0], NULL, &r));
    uint8_t hdr[8];
    raw_header(hdr, CONC__KIND_FD, 0);
    assert_int_equal(raw_write(p[1], hdr, 8), 0);
    conc_buf got = CONC_BUF_INIT;
    assert_conc(conc_conn_recv_bytes(r, 1.0, &got), CONC_EPROTO);
    assert_conc(conc_conn_recv_bytes(r, 1.0, &got), CONC_ECLOSED);
    close(p[1]);
    conc_conn_free(r);
}

/* ---- poll ---------------------------------------------------------------- */

static void
test_poll(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    assert_int_equal(conc_conn_poll(a, 0), 0);
    double t0 = conc_monotonic();
    assert_int_equal(conc_conn_poll(a, 0.05), 0);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_conc(conc_conn_poll(a, NAN), CONC_EINVAL);
    /* Data ready, then buffered. */
    assert_conc_ok(conc_conn_send_bytes(b, "one", 3, CONC_FOREVER));
    assert_conc_ok(conc_conn_send_bytes(b, "two", 3, CONC_FOREVER));
    assert_int_equal(conc_conn_poll(a, 0), 1);
    assert_int_equal(conc_conn_poll(a, CONC_FOREVER), 1);
    conc_buf got = CONC_BUF_INIT;
    assert_conc_ok(conc_conn_recv_bytes(a, 0, &got));
    assert_memory_equal(got.data, "one", 3);
    assert_int_equal(conc_conn_poll(a, 0), 1); /* "two" sits in the buffer */
    assert_conc_ok(conc_conn_recv_bytes(a, 0, &got));
    assert_memory_equal(got.data, "two", 3);
    assert_int_equal(conc_conn_poll(a, 0), 0);
    /* Half a message is not a message. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conc_conn *c;
    assert_conc_ok(conc_conn_from_fd(sv[0], NULL, &c));
    uint8_t hdr[8];
    raw_header(hdr, CONC__KIND_BYTES, 4);
    assert_int_equal(raw_write(sv[1], hdr, 8), 0);
    assert_int_equal(raw_write(sv[1], "ab", 2), 0);
    assert_int_equal(conc_conn_poll(c, 0.01), 0);
    assert_int_equal(raw_write(sv[1], "cd", 2), 0);
    assert_int_equal(conc_conn_poll(c, 1.0), 1);
    assert_conc_ok(conc_conn_recv_bytes(c, 0, &got));
    assert_int_equal(got.len, 4);
    assert_memory_equal(got.data, "abcd", 4);
    close(sv[1]);
    conc_conn_free(c);

    /* A frame too big for the input buffer: ready once it starts, then
     * only when more of it arrives. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_conc_ok(conc_conn_from_fd(sv[0], NULL, &c));
    raw_header(hdr, CONC__KIND_BYTES, 2 * CONC__CONN_INBUF);
    assert_int_equal(raw_write(sv[1], hdr, 8), 0);
    assert_int_equal(raw_write(sv[1], "0123456789", 10), 0);
    assert_int_equal(conc_conn_poll(c, 0), 1);
    assert_conc(conc_conn_recv_bytes(c, 0.01, &got), CONC_ETIMEDOUT);
    assert_int_equal(conc_conn_poll(c, 0), 0);
    int fd;
    assert_conc(conc_conn_recv_fd(c, 0, &fd), CONC_EPROTO);
    assert_int_equal(raw_write(sv[1], "more", 4), 0);
    assert_int_equal(conc_conn_poll(c, 1.0), 1);
    close(sv[1]);
    assert_conc(conc_conn_recv_bytes(c, 1.0, &got), CONC_EPROTO);
    assert_conc(conc_conn_recv_bytes(c, 1.0, &got), CONC_ECLOSED);
    conc_conn_free(c);
    conc_buf_free(&got);
    conc_conn_free(a);
    conc_conn_free(b);
}

/* ---- timeouts in the middle of a message --------------------------------- */

/* Writes a raw message in pieces: it waits for a byte on t->sync before
 * each piece after the first. */
struct pieces {
    int fd, sync;
    const uint8_t *data; /* header and payload */
    size_t cut[4];       /* piece boundaries; the last is the total */
};

static int
pieces_child(void *arg)
{
    struct pieces *p = arg;
    size_t at = 0;
    for (int i = 0; i < 4; i++) {
        if (i > 0) {
            char ch;
            CHECK(read(p->sync, &ch, 1) == 1);
        }
        CHECK(raw_write(p->fd, p->data + at, p->cut[i] - at) == 0);
        at = p->cut[i];
    }
    return 0;
}

/* Sends the message `len` bytes long in four pieces and receives it with
 * timeouts between them, with recv_bytes and recv_bytes_into in turn. */
static void
timeout_case(size_t len, const size_t cut[3], int first_into)
{
    int sv[2], sy[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(pipe2(sy, O_CLOEXEC), 0);
    uint8_t *msg = malloc(len + 8);
    assert_non_null(msg);
    raw_header(msg, CONC__KIND_BYTES, len);
    fill(msg + 8, len, 9);
    struct pieces p = {.fd = sv[1], .sync = sy[0], .data = msg};
    memcpy(p.cut, cut, 3 * sizeof *cut);
    p.cut[3] = len + 8;
    pid_t pid = fork_child(pieces_child, &p);
    close(sv[1]);
    close(sy[0]);
    conc_conn *a;
    assert_conc_ok(conc_conn_from_fd(sv[0], NULL, &a));
    conc_buf got = CONC_BUF_INIT;
    uint8_t *into = malloc(len + 1);
    assert_non_null(into);
    size_t n;
    for (int i = 0; i < 3; i++) {
        /* Until a piece arrives the call times out; then it still does,
         * after keeping the piece. */
        int r;
        if ((i + first_into) % 2)
            r = conc_conn_recv_bytes_into(a, into, len + 1, 0.02, &n);
        else
            r = conc_conn_recv_bytes(a, 0.02, &got);
        assert_conc(r, CONC_ETIMEDOUT);
        assert_int_equal(write(sy[1], "x", 1), 1);
    }
    if (first_into) {
        assert_conc_ok(conc_conn_recv_bytes(a, 10.0, &got));
        assert_int_equal(got.len, len);
        assert_true(check_fill(got.data, len, 9));
    } else {
        assert_conc_ok(conc_conn_recv_bytes_into(a, into, len, 10.0, &n));
        assert_int_equal(n, len);
        assert_true(check_fill(into, len, 9));
    }
    assert_conc(conc_conn_recv_bytes(a, 1.0, &got), CONC_ECLOSED);
    reap(pid);
    close(sy[1]);
    conc_conn_free(a);
    conc_buf_free(&got);
    free(into);
    free(msg);
}

static void
test_recv_timeout_mid_message(void **state)
{
    (void)state;
    /* Small: cut inside the header, then inside the payload. */
    timeout_case(100, (size_t[]){3, 8, 50}, 0);
    timeout_case(100, (size_t[]){3, 8, 50}, 1);
    /* Big (larger than the input buffer). */
    size_t big = 3 * CONC__CONN_INBUF + 17;
    timeout_case(big, (size_t[]){5, 1000, 2 * CONC__CONN_INBUF}, 0);
    timeout_case(big, (size_t[]){5, 1000, 2 * CONC__CONN_INBUF}, 1);
    timeout_case(big, (size_t[]){8, 8 + CONC__CONN_INBUF, big}, 1);
}

/* Keeping part of a big message across a timeout in recv_bytes_into needs
 * memory; without it the receiving side is shut rather than corrupted. */
static void
test_recv_into_timeout_enomem(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conc_conn *a;
    assert_conc_ok(conc_conn_from_fd(sv[0], NULL, &a));
    size_t len = 2 * CONC__CONN_INBUF;
    uint8_t *msg = malloc(len + 8);
    assert_non_null(msg);
    raw_header(msg, CONC__KIND_BYTES, len);
    fill(msg + 8, len, 2);
    assert_int_equal(raw_write(sv[1], msg, 1000), 0);
    uint8_t *into = malloc(len);
    assert_non_null(into);
    size_t n;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_conn_recv_bytes_into(a, into, len, 0.01, &n), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    assert_conc(conc_conn_recv_bytes_into(a, into, len, 0.01, &n),
                CONC_ECLOSED);
    close(sv[1]);
    conc_conn_free(a);
    free(into);
    free(msg);
}

/* ---- sending to a closed peer -------------------------------------------- */

static int
sigpipe_pending(void)
{
    sigset_t s;
    sigpending(&s);
    return sigismember(&s, SIGPIPE);
}

static void
test_send_after_peer_closed(void **state)
{
    (void)state;
    /* The default disposition of SIGPIPE kills: the test would die. */
    struct sigaction sa;
    sigaction(SIGPIPE, NULL, &sa);
    assert_true(sa.sa_handler == SIG_DFL);
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    conc_conn_free(b);
    assert_conc(conc_conn_send_bytes(a, "x", 1, CONC_FOREVER), CONC_EPIPE);
    assert_conc(conc_conn_send_fd(a, 0, CONC_FOREVER), CONC_EPIPE);
    conc_conn_free(a);

    assert_conc_ok(conc_pipe(&(conc_pipe_opts){.simplex = 1}, &a, &b));
    conc_conn_free(a);
    assert_conc(conc_conn_send_bytes(b, "x", 1, CONC_FOREVER), CONC_EPIPE);
    assert_int_equal(sigpipe_pending(), 0);
    /* With SIGPIPE blocked by the caller, its own pending SIGPIPE stays and
     * ours is taken. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    assert_conc(conc_conn_send_bytes(b, "x", 1, CONC_FOREVER), CONC_EPIPE);
    assert_int_equal(sigpipe_pending(), 0);
    raise(SIGPIPE);
    assert_int_equal(sigpipe_pending(), 1);
    assert_conc(conc_conn_send_bytes(b, "x", 1, CONC_FOREVER), CONC_EPIPE);
    assert_int_equal(sigpipe_pending(), 1);
    struct timespec zero = {0, 0};
    assert_int_equal(sigtimedwait(&set, NULL, &zero), SIGPIPE);
    assert_int_equal(sigpipe_pending(), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    conc_conn_free(b);
}

/* ---- close --------------------------------------------------------------- */

static void
test_close_and_use_after_close(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    assert_int_equal(conc_conn_closed(a), 0);
    int afd = -1;
    assert_conc_ok(conc_conn_fileno(a, &afd));
    assert_true(afd >= 0);
    assert_conc_ok(conc_conn_send_bytes(b, "left", 4, CONC_FOREVER));
    assert_int_equal(conc_conn_poll(a, 1.0), 1); /* now buffered in a */
    assert_conc_ok(conc_conn_close(a));
    assert_conc_ok(conc_conn_close(a));
    assert_int_equal(conc_conn_closed(a), 1);
    assert_int_equal(conc_conn_readable(a), 0);
    assert_int_equal(conc_conn_writable(a), 0);
    assert_conc(conc_conn_fileno(a, &afd), CONC_ECLOSED);
    conc_buf got = CONC_BUF_INIT;
    size_t n;
    int fd;
    assert_conc(conc_conn_send_bytes(a, "x", 1, CONC_FOREVER), CONC_ECLOSED);
    assert_conc(conc_conn_recv_bytes(a, 0, &got), CONC_ECLOSED);
    assert_conc(conc_conn_recv_bytes_into(a, NULL, 0, 0, &n), CONC_ECLOSED);
    assert_conc(conc_conn_poll(a, 0), CONC_ECLOSED);
    assert_conc(conc_conn_send_fd(a, 0, CONC_FOREVER), CONC_ECLOSED);
    assert_conc(conc_conn_recv_fd(a, 0, &fd), CONC_ECLOSED);
    assert_conc(conc_conn_send_bytes(b, "x", 1, CONC_FOREVER), CONC_EPIPE);
    conc_conn_free(a);
    conc_conn_free(b);
    conc_conn_free(NULL);
    assert_conc(conc_conn_close(NULL), CONC_EINVAL);
}

static void
test_bad_arguments(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc(conc_pipe(NULL, NULL, &b), CONC_EINVAL);
    assert_conc(conc_pipe(NULL, &a, NULL), CONC_EINVAL);
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    conc_buf got = CONC_BUF_INIT;
    size_t n;
    int fd;
    assert_conc(conc_conn_send_bytes(a, NULL, 1, CONC_FOREVER), CONC_EINVAL);
    assert_conc_ok(conc_conn_send_bytes(a, NULL, 0, CONC_FOREVER));
    assert_conc(conc_conn_recv_bytes(b, 0, NULL), CONC_EINVAL);
    assert_conc(conc_conn_recv_bytes(b, NAN, &got), CONC_EINVAL);
    assert_conc(conc_conn_recv_bytes_into(b, NULL, 5, 0, &n), CONC_EINVAL);
    assert_conc(conc_conn_recv_bytes_into(b, NULL, 0, 0, NULL), CONC_EINVAL);
    assert_conc(conc_conn_recv_fd(b, 0, NULL), CONC_EINVAL);
    assert_conc(conc_conn_send_fd(a, -1, CONC_FOREVER), CONC_EBADF);
    assert_conc_ok(conc_conn_recv_bytes(b, 0, &got));
    assert_int_equal(got.len, 0);
    assert_conc(conc_conn_recv_bytes(b, 0, &got), CONC_ETIMEDOUT);
    assert_conc(conc_conn_recv_fd(b, 0, &fd), CONC_ETIMEDOUT);
    assert_conc(conc_conn_recv_bytes_into(b, NULL, 0, 0, &n), CONC_ETIMEDOUT);
    /* A descriptor that is not open. */
    int dead = dup(0);
    assert_true(dead >= 0);
    close(dead);
    assert_conc(conc_conn_send_fd(a, dead, CONC_FOREVER), CONC_EBADF);
    conc_buf_free(&got);
    conc_conn_free(a);
    conc_conn_free(b);
}

/* ---- descriptor passing -------------------------------------------------- */

static int
write_through_child(void *arg)
{
    struct two *t = arg;
    conc_conn_free(t->other);
    close(t->fd);
    close(t->sync);
    int fd = -1;
    CHECK(conc_conn_recv_fd(t->mine, 10.0, &fd) == 0);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    CHECK(write(fd, "through", 7) == 7);
    close(fd);
    conc_conn_free(t->mine);
    return 0;
}

static void
test_fd_pass_pipe_to_child(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    /* The child closes the copies of the pipe it inherited, so that what
     * it writes can only go through the descriptor it receives. */
    struct two t = {.mine = b, .other = a, .fd = p[1], .sync = p[0]};
    int saved = p[1];
    pid_t pid = fork_child(write_through_child, &t);
    conc_conn_free(b);
    assert_conc_ok(conc_conn_send_fd(a, saved, CONC_FOREVER));
    close(saved);
    char buf[16];
    size_t at = 0;
    ssize_t r;
    while ((r = read(p[0], buf + at, sizeof buf - at)) > 0)
        at += (size_t)r;
    assert_int_equal(at, 7);
    assert_memory_equal(buf, "through", 7);
    reap(pid);
    close(p[0]);
    conc_conn_free(a);
}

static void
test_fd_pass_file_and_order(void **state)
{
    (void)state;
    int mf = memfd_create("conc-ipc-test", MFD_CLOEXEC);
    assert_true(mf >= 0);
    assert_int_equal(write(mf, "file content", 12), 12);
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    assert_conc_ok(conc_conn_send_bytes(a, "x", 1, CONC_FOREVER));
    assert_conc_ok(conc_conn_send_fd(a, mf, CONC_FOREVER));
    assert_conc_ok(conc_conn_send_bytes(a, "y", 1, CONC_FOREVER));
    close(mf);
    conc_buf got = CONC_BUF_INIT;
    int fd = -1;
    assert_conc(conc_conn_recv_fd(b, 1.0, &fd), CONC_EPROTO);
    assert_conc_ok(conc_conn_recv_bytes(b, 1.0, &got));
    assert_memory_equal(got.data, "x", 1);
    assert_conc(conc_conn_recv_bytes(b, 1.0, &got), CONC_EPROTO);
    size_t n;
    char buf[16];
    assert_conc(conc_conn_recv_bytes_into(b, buf, sizeof buf, 1.0, &n),
                CONC_EPROTO);
    assert_int_equal(conc_conn_poll(b, 0), 1);
    assert_conc_ok(conc_conn_recv_fd(b, 1.0, &fd));
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(pread(fd, buf, sizeof buf, 0), 12);
    assert_memory_equal(buf, "file content", 12);
    close(fd);
    assert_conc_ok(conc_conn_recv_bytes(b, 1.0, &got));
    assert_memory_equal(got.data, "y", 1);
    /* A descriptor behind a big message keeps its place. */
    uint8_t *p = pattern(3 * CONC__CONN_INBUF, 4);
    int sent[3];
    for (int i = 0; i < 3; i++) {
        sent[i] = dup(1);
        assert_true(sent[i] >= 0);
    }
    conc_conn_free(b);
    conc_conn_free(a);
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    assert_conc_ok(conc_conn_send_fd(a, sent[0], CONC_FOREVER));
    assert_conc_ok(conc_conn_send_bytes(a, p, CONC__CONN_INBUF, CONC_FOREVER));
    assert_conc_ok(conc_conn_send_fd(a, sent[1], CONC_FOREVER));
    assert_conc_ok(conc_conn_send_fd(a, sent[2], CONC_FOREVER));
    for (int i = 0; i < 3; i++)
        close(sent[i]);
    assert_conc_ok(conc_conn_recv_fd(b, 1.0, &fd));
    close(fd);
    assert_conc_ok(conc_conn_recv_bytes(b, 1.0, &got));
    assert_int_equal(got.len, CONC__CONN_INBUF);
    assert_true(check_fill(got.data, got.len, 4));
    assert_conc_ok(conc_conn_recv_fd(b, 1.0, &fd));
    close(fd);
    /* The last descriptor is read into the connection by poll but never
     * taken: closing the connection closes it (the leak guard checks). */
    assert_int_equal(conc_conn_poll(b, 1.0), 1);
    assert_int_equal(b->nfds, 1);
    free(p);
    conc_buf_free(&got);
    conc_conn_free(a);
    conc_conn_free(b);
}

static void
test_fd_on_simplex(void **state)
{
    (void)state;
    conc_conn *r, *w;
    assert_conc_ok(conc_pipe(&(conc_pipe_opts){.simplex = 1}, &r, &w));
    int fd;
    assert_conc(conc_conn_send_fd(w, 0, CONC_FOREVER), CONC_EINVAL);
    assert_conc(conc_conn_send_fd(r, 0, CONC_FOREVER), CONC_EINVAL);
    assert_conc(conc_conn_recv_fd(r, 0, &fd), CONC_EINVAL);
    assert_conc(conc_conn_recv_fd(w, 0, &fd), CONC_EBADF);
    conc_conn_free(r);
    conc_conn_free(w);
}

/* Sends a raw descriptor frame carrying `n` descriptors (or none). */
static void
raw_send_fds(int sock, unsigned kind, uint64_t len, const int *fds, int n)
{
    uint8_t hdr[8];
    raw_header(hdr, kind, len);
    union {
        char buf[CMSG_SPACE(32 * sizeof(int))];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {hdr, sizeof hdr};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n > 0) {
        memset(&cbuf, 0, sizeof cbuf);
        mh.msg_control = cbuf.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, (size_t)n * sizeof(int));
    }
    assert_int_equal(sendmsg(sock, &mh, 0), 8);
}

/* Descriptor frames that break the protocol shut the receiving side, and
 * descriptors that came with them are closed, not leaked. */
static void
test_fd_bad_frames(void **state)
{
    (void)state;
    int many[20];
    for (int i = 0; i < 20; i++)
        many[i] = 0;
    struct {
        int nfds;
        uint64_t len;
    } cases[] = {{0, 0}, {1, 5}, {20, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                         0);
        conc_conn *a;
        assert_conc_ok(conc_conn_from_fd(sv[0], NULL, &a));
        raw_send_fds(sv[1], CONC__KIND_FD, cases[k].len, many, cases[k].nfds);
        int fd = -1;
        assert_conc(conc_conn_recv_fd(a, 1.0, &fd), CONC_EPROTO);
        assert_int_equal(fd, -1);
        assert_conc(conc_conn_recv_fd(a, 1.0, &fd), CONC_ECLOSED);
        close(sv[1]);
        conc_conn_free(a);
    }
}

/* Descriptors someone made non-blocking still block in conc's calls, up
 * to the timeout. */
static void
test_nonblocking_descriptors(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv),
        0);
    conc_conn *a, *b;
    assert_conc_ok(conc_conn_from_fd(sv[0], NULL, &a));
    assert_conc_ok(conc_conn_from_fd(sv[1], NULL, &b));
    pid_t pid = fork_peer(echo_child, a, b);
    size_t n = 4u << 20; /* far more than the socket holds */
    uint8_t *p = pattern(n, 6);
    conc_buf got = CONC_BUF_INIT;
    assert_conc_ok(conc_conn_send_bytes(a, p, n, CONC_FOREVER));
    assert_conc_ok(conc_conn_recv_bytes(a, CONC_FOREVER, &got));
    assert_int_equal(got.len, n);
    assert_memory_equal(got.data, p, n);
    assert_conc_ok(conc_conn_send_bytes(a, "x", 1, CONC_FOREVER));
    assert_conc_ok(conc_conn_recv_bytes(a, CONC_FOREVER, &got));
    assert_int_equal(got.len, 1);
    conc_conn_free(a);
    reap(pid);
    conc_buf_free(&got);
    free(p);
}

/* ---- conc_conn_from_fd --------------------------------------------------- */

static void
test_from_fd(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    conc_conn *a, *b;
    assert_conc_ok(conc_conn_from_fd(sv[0], NULL, &a));
    assert_conc_ok(
        conc_conn_from_fd(sv[1], &(conc_conn_opts){.max_message = 10}, &b));
    int afd = -1;
    assert_conc_ok(conc_conn_fileno(a, &afd));
    assert_int_equal(afd, sv[0]);
    assert_conc_ok(conc_conn_send_bytes(a, "ping", 4, CONC_FOREVER));
    conc_buf got = CONC_BUF_INIT;
    assert_conc_ok(conc_conn_recv_bytes(b, 1.0, &got));
    assert_memory_equal(got.data, "ping", 4);
    assert_conc_ok(conc_conn_send_bytes(b, "pong", 4, CONC_FOREVER));
    assert_conc_ok(conc_conn_recv_bytes(a, 1.0, &got));
    assert_memory_equal(got.data, "pong", 4);
    assert_conc_ok(conc_conn_send_fd(a, 2, CONC_FOREVER));
    int fd;
    assert_conc_ok(conc_conn_recv_fd(b, 1.0, &fd));
    close(fd);
    assert_conc_ok(conc_conn_send_bytes(a, "01234567890", 11, CONC_FOREVER));
    assert_conc(conc_conn_recv_bytes(b, 1.0, &got), CONC_EMSGSIZE);
    conc_conn_free(a);
    conc_conn_free(b);

    /* A pipe's ends: one readable, one writable; no descriptors. */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_conc_ok(conc_conn_from_fd(p[0], NULL, &a));
    assert_conc_ok(conc_conn_from_fd(p[1], NULL, &b));
    assert_int_equal(conc_conn_readable(a), 1);
    assert_int_equal(conc_conn_writable(a), 0);
    assert_int_equal(conc_conn_readable(b), 0);
    assert_int_equal(conc_conn_writable(b), 1);
    assert_conc(conc_conn_send_fd(b, 0, CONC_FOREVER), CONC_EINVAL);
    assert_conc_ok(conc_conn_send_bytes(b, "via pipe", 8, CONC_FOREVER));
    assert_conc_ok(conc_conn_recv_bytes(a, 1.0, &got));
    assert_memory_equal(got.data, "via pipe", 8);
    conc_conn_free(a);
    conc_conn_free(b);

    /* Refused descriptors stay the caller's. */
    assert_conc(conc_conn_from_fd(-1, NULL, &a), CONC_EBADF);
    int dead = dup(0);
    close(dead);
    assert_conc(conc_conn_from_fd(dead, NULL, &a), CONC_EBADF);
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_conc(conc_conn_from_fd(sv[0], NULL, &a), CONC_EINVAL);
    assert_conc(conc_conn_from_fd(sv[0], NULL, NULL), CONC_EINVAL);
    assert_int_equal(close(sv[0]), 0);
    assert_int_equal(close(sv[1]), 0);
    int path = open("/", O_PATH | O_CLOEXEC);
    assert_true(path >= 0);
    assert_conc(conc_conn_from_fd(path, NULL, &a), CONC_EINVAL);
    close(path);
    conc_buf_free(&got);
}

/* ---- allocation failures ------------------------------------------------- */

static void
test_alloc_failures(void **state)
{
    (void)state;
    int base = conc_test_count_fds();
    for (int simplex = 0; simplex < 2; simplex++) {
        int k;
        for (k = 1; k < 20; k++) {
            conc_conn *a, *b;
            conc_test_fail_alloc_after(k);
            int r = conc_pipe(&(conc_pipe_opts){.simplex = simplex}, &a, &b);
            conc_test_fail_alloc_after(0);
            if (r == 0) {
                conc_conn_free(a);
                conc_conn_free(b);
                break;
            }
            assert_conc(r, CONC_ENOMEM);
            assert_int_equal(conc_test_count_fds(), base);
        }
        assert_true(k > 2); /* some allocation did fail */
    }
    /* from_fd: the caller keeps the descriptor. */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    conc_conn *a, *b;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_conn_from_fd(p[0], NULL, &a), CONC_ENOMEM);
    assert_int_equal(fcntl(p[0], F_GETFD) >= 0, 1);
    close(p[0]);
    close(p[1]);

    /* recv_bytes that cannot grow the caller's buffer keeps the message,
     * small or big. */
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    conc_buf got = CONC_BUF_INIT;
    assert_conc_ok(conc_conn_send_bytes(a, "kept", 4, CONC_FOREVER));
    conc_test_fail_alloc_after(1);
    assert_conc(conc_conn_recv_bytes(b, 1.0, &got), CONC_ENOMEM);
    assert_conc_ok(conc_conn_recv_bytes(b, 1.0, &got));
    assert_memory_equal(got.data, "kept", 4);
    conc_buf_free(&got);
    uint8_t *p2 = pattern(CONC__CONN_INBUF + 100, 5);
    assert_conc_ok(
        conc_conn_send_bytes(a, p2, CONC__CONN_INBUF + 100, CONC_FOREVER));
    conc_test_fail_alloc_after(1);
    assert_conc(conc_conn_recv_bytes(b, 1.0, &got), CONC_ENOMEM);
    assert_conc_ok(conc_conn_recv_bytes(b, 1.0, &got));
    assert_int_equal(got.len, CONC__CONN_INBUF + 100);
    assert_true(check_fill(got.data, got.len, 5));
    free(p2);
    conc_buf_free(&got);
    conc_conn_free(a);
    conc_conn_free(b);
}

/* ---- many round trips, and threads --------------------------------------- */

#define ROUNDS 20000

static int
pingpong_child(void *arg)
{
    struct two *t = arg;
    conc_conn_free(t->other);
    uint64_t v;
    size_t n;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK(conc_conn_recv_bytes_into(t->mine, &v, sizeof v, 30.0, &n) == 0);
        CHECK(n == sizeof v && v == (uint64_t)i);
        v++;
        CHECK(conc_conn_send_bytes(t->mine, &v, sizeof v, CONC_FOREVER) == 0);
    }
    conc_conn_free(t->mine);
    return 0;
}

static void
test_pingpong_processes(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    pid_t pid = fork_peer(pingpong_child, a, b);
    for (uint64_t i = 0; i < ROUNDS; i++) {
        uint64_t v = i;
        size_t n;
        assert_conc_ok(conc_conn_send_bytes(a, &v, sizeof v, CONC_FOREVER));
        assert_conc_ok(conc_conn_recv_bytes_into(a, &v, sizeof v, 30.0, &n));
        assert_int_equal(v, i + 1);
    }
    assert_int_equal(conc_conn_poll(a, 10.0), 1);
    conc_buf got = CONC_BUF_INIT;
    assert_conc(conc_conn_recv_bytes(a, 10.0, &got), CONC_ECLOSED);
    reap(pid);
    conc_buf_free(&got);
    conc_conn_free(a);
}

#define THREAD_MSGS 5000

static int
echo_thread(void *arg)
{
    conc_conn *c = arg;
    conc_buf b = CONC_BUF_INIT;
    int r;
    for (int i = 0; i < THREAD_MSGS; i++) {
        if ((r = conc_conn_recv_bytes(c, 30.0, &b)) != 0)
            break;
        if ((r = conc_conn_send_bytes(c, b.data, b.len, CONC_FOREVER)) != 0)
            break;
    }
    conc_buf_free(&b);
    return r;
}

static int
send_thread(void *arg)
{
    conc_conn *c = arg;
    uint8_t msg[300];
    for (int i = 0; i < THREAD_MSGS; i++) {
        size_t n = (size_t)i % sizeof msg;
        fill(msg, n, (unsigned)i);
        int r = conc_conn_send_bytes(c, msg, n, CONC_FOREVER);
        if (r)
            return r;
    }
    return 0;
}

/* One thread sends on `a` while this one receives on it; a third echoes
 * on `b`. */
static void
test_send_and_recv_threads(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    conc_thread *echo, *sender;
    assert_conc_ok(conc_thread_start(echo_thread, b, NULL, &echo));
    assert_conc_ok(conc_thread_start(send_thread, a, NULL, &sender));
    conc_buf got = CONC_BUF_INIT;
    for (int i = 0; i < THREAD_MSGS; i++) {
        assert_conc_ok(conc_conn_recv_bytes(a, 30.0, &got));
        assert_int_equal(got.len, (size_t)i % 300);
        assert_true(check_fill(got.data, got.len, (unsigned)i));
    }
    int st;
    assert_conc_ok(conc_thread_join(sender, 30.0, &st));
    assert_int_equal(st, 0);
    assert_conc_ok(conc_thread_join(echo, 30.0, &st));
    assert_int_equal(st, 0);
    conc_thread_free(echo);
    conc_thread_free(sender);
    conc_buf_free(&got);
    conc_conn_free(a);
    conc_conn_free(b);
}

/* ---- shared rings between the ends of a conc_pipe -------------------------
 */

/* Brings both directions of a duplex pair whose ends are both here onto
 * their rings: each end first says it reads its ring (a receive that finds
 * nothing), then one message each way switches the senders. */
static void
ring_warm(conc_conn *a, conc_conn *b)
{
    conc_buf got = CONC_BUF_INIT;
    assert_conc(conc_conn_recv_bytes(a, 0, &got), CONC_ETIMEDOUT);
    assert_conc(conc_conn_recv_bytes(b, 0, &got), CONC_ETIMEDOUT);
    assert_conc_ok(conc_conn_send_bytes(a, "w", 1, CONC_FOREVER));
    assert_conc_ok(conc_conn_send_bytes(b, "w", 1, CONC_FOREVER));
    assert_conc_ok(conc_conn_recv_bytes(a, 1.0, &got));
    assert_conc_ok(conc_conn_recv_bytes(b, 1.0, &got));
    assert_true(a->tx_ring && a->rx_ring && b->tx_ring && b->rx_ring);
    conc_buf_free(&got);
}

static const size_t ring_sizes[] = {0,
                                    1,
                                    7,
                                    8,
                                    9,
                                    1000,
                                    CONC__RING_MSG_MAX - 1,
                                    CONC__RING_MSG_MAX,
                                    CONC__RING_MSG_MAX + 1,
                                    100000};
#define NRING (sizeof ring_sizes / sizeof ring_sizes[0])

/* Messages in and beyond the ring's reach, with descriptors between them,
 * arrive whole and in order; only the large ones and the descriptors went
 * through the socket. */
static void
test_ring_sizes_and_descriptors(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    ring_warm(a, b);
    uint64_t tail0 = atomic_load(&a->tx->tail);
    size_t in_ring = 0;
    for (size_t i = 0; i < NRING; i++) {
        uint8_t *p = pattern(ring_sizes[i], (unsigned)i);
        assert_conc_ok(conc_conn_send_bytes(a, p, ring_sizes[i], CONC_FOREVER));
        free(p);
        if (ring_sizes[i] <= CONC__RING_MSG_MAX)
            in_ring += CONC__FRAME_HDR + ((ring_sizes[i] + 7) & ~(size_t)7);
        else
            in_ring += CONC__FRAME_HDR; /* its DIVERT */
        if (i % 3 == 0) {
            assert_conc_ok(conc_conn_send_fd(a, 1, CONC_FOREVER));
            in_ring += CONC__FRAME_HDR;
        }
    }
    assert_int_equal(atomic_load(&a->tx->tail) - tail0, in_ring);
    conc_buf got = CONC_BUF_INIT;
    for (size_t i = 0; i < NRING; i++) {
        int fd = -1;
        assert_conc(conc_conn_recv_fd(b, 1.0, &fd), CONC_EPROTO);
        assert_int_equal(conc_conn_poll(b, 1.0), 1);
        assert_conc_ok(conc_conn_recv_bytes(b, 1.0, &got));
        assert_int_equal(got.len, ring_sizes[i]);
        assert_true(check_fill(got.data, got.len, (unsigned)i));
        if (i % 3 == 0) {
            assert_conc(conc_conn_recv_bytes(b, 1.0, &got), CONC_EPROTO);
            assert_conc_ok(conc_conn_recv_fd(b, 1.0, &fd));
            assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
            close(fd);
        }
    }
    assert_int_equal(b->diverts, 0);
    assert_conc(conc_conn_recv_bytes(b, 0, &got), CONC_ETIMEDOUT);
    conc_buf_free(&got);
    conc_conn_free(a);
    conc_conn_free(b);
}

static int
ring_echo_child(void *arg)
{
    return echo_until_closed(arg, 1);
}

#define BURSTS 200
#define BURST  10

/* Bursts of messages of many sizes to a child that echoes them: the rings
 * wrap around many times, and senders wait for room. */
static void
test_ring_wraps_across_processes(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    conc_buf got = CONC_BUF_INIT;
    assert_conc(conc_conn_recv_bytes(a, 0, &got), CONC_ETIMEDOUT);
    pid_t pid = fork_peer(ring_echo_child, a, b);
    uint8_t *p = pattern(6000 + BURST, 9);
    for (unsigned k = 0; k < BURSTS; k++) {
        for (unsigned i = 0; i < BURST; i++) {
            size_t n = (k * 7919u + i * 104729u) % 6000;
            assert_conc_ok(conc_conn_send_bytes(a, p + i, n, CONC_FOREVER));
        }
        for (unsigned i = 0; i < BURST; i++) {
            size_t n = (k * 7919u + i * 104729u) % 6000;
            assert_conc_ok(conc_conn_recv_bytes(a, 30.0, &got));
            assert_int_equal(got.len, n);
            assert_memory_equal(got.data, p + i, n);
        }
    }
    assert_true(a->rx_ring && a->tx_ring);
    assert_true(atomic_load(&a->tx->tail) > 4 * CONC__RING_CAP);
    conc_conn_free(a);
    reap(pid);
    free(p);
    conc_buf_free(&got);
}

/* A child that reads its ring (after one message each way), then sends
 * `last` messages and dies by SIGKILL without closing anything. */
static int
ring_die_child(void *arg)
{
    struct two *t = arg;
    conc_conn_free(t->other);
    conc_buf b = CONC_BUF_INIT;
    CHECK(conc_conn_recv_bytes(t->mine, 30.0, &b) == 0);
    CHECK(conc_conn_send_bytes(t->mine, "ok", 2, CONC_FOREVER) == 0);
    CHECK(conc_conn_recv_bytes(t->mine, 30.0, &b) == 0);
    for (int i = 0; i < t->fd; i++)
        CHECK(conc_conn_send_bytes(t->mine, "last", 4, CONC_FOREVER) == 0);
    CHECK(t->mine->rx_ring);
    raise(SIGKILL);
    return 1;
}

/* Starts ring_die_child on a fresh pair; returns the parent's end, on its
 * ring in both directions. */
static conc_conn *
ring_start_doomed(int last, pid_t *pid)
{
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    conc_buf got = CONC_BUF_INIT;
    assert_conc(conc_conn_recv_bytes(a, 0, &got), CONC_ETIMEDOUT);
    struct two t = {.mine = b, .other = a, .fd = last};
    *pid = fork_child(ring_die_child, &t);
    conc_conn_free(b);
    assert_conc_ok(conc_conn_send_bytes(a, "1", 1, CONC_FOREVER));
    assert_conc_ok(conc_conn_recv_bytes(a, 30.0, &got));
    assert_conc_ok(conc_conn_send_bytes(a, "2", 1, CONC_FOREVER));
    assert_true(a->rx_ring && a->tx_ring);
    conc_buf_free(&got);
    return a;
}

/* A peer killed with SIGKILL, which never closes and never wakes anybody:
 * a reader waiting on the ring sees the end of the stream (after what the
 * peer sent), and a writer waiting for room gets CONC_EPIPE; neither
 * hangs. */
static void
test_ring_peer_killed(void **state)
{
    (void)state;
    pid_t pid;
    conc_conn *a = ring_start_doomed(3, &pid);
    conc_buf got = CONC_BUF_INIT;
    for (int i = 0; i < 3; i++) {
        assert_conc_ok(conc_conn_recv_bytes(a, 30.0, &got));
        assert_memory_equal(got.data, "last", 4);
    }
    double t0 = conc_monotonic();
    assert_conc(conc_conn_recv_bytes(a, 30.0, &got), CONC_ECLOSED);
    assert_true(conc_monotonic() - t0 < 10.0);
    int st = reap_status(pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    conc_conn_free(a);

    a = ring_start_doomed(0, &pid);
    uint8_t *p = pattern(CONC__RING_MSG_MAX, 3);
    int r = 0, sent = 0;
    while (sent < 1000 && (r = conc_conn_send_bytes(a, p, CONC__RING_MSG_MAX,
                                                    CONC_FOREVER)) == 0)
        sent++;
    assert_conc(r, CONC_EPIPE);
    st = reap_status(pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    free(p);
    conc_buf_free(&got);
    conc_conn_free(a);
}

/* What a peer may write into the shared ring: positions and frames. */
enum scribble {
    ODD_TAIL,
    TAIL_PAST_RING,
    TAIL_BEHIND,
    HUGE_LENGTH,
    BAD_KIND,
    FD_KIND,
    SHORT_FRAME,
    NSCRIBBLES
};

static void
scribble(struct conc__ring_side *r, enum scribble how)
{
    uint64_t head = atomic_load(&r->head);
    uint8_t hdr[CONC__FRAME_HDR];
    uint64_t tail = head + 64;
    switch (how) {
    case ODD_TAIL:
        tail = head + 12;
        break;
    case TAIL_PAST_RING:
        tail = head + CONC__RING_CAP + 8;
        break;
    case TAIL_BEHIND:
        tail = head - 8;
        break;
    case HUGE_LENGTH:
        conc__frame_put(hdr, CONC__KIND_BYTES, (uint64_t)1 << 40);
        break;
    case BAD_KIND:
        conc__frame_put(hdr, 0x99, 8);
        break;
    case FD_KIND:
        conc__frame_put(hdr, CONC__KIND_FD, 0);
        break;
    case SHORT_FRAME:
        conc__frame_put(hdr, CONC__KIND_BYTES, 100); /* past the tail */
        break;
    default:
        break;
    }
    memcpy(r->data + head % CONC__RING_CAP, hdr, sizeof hdr);
    memset(r->data + (head + 8) % CONC__RING_CAP, 0xee, 56);
    atomic_store(&r->tail, tail);
    atomic_fetch_add(&r->rx_seq, 1);
}

static int
scribble_child(void *arg)
{
    struct two *t = arg;
    conc_conn_free(t->other);
    conc_buf b = CONC_BUF_INIT;
    CHECK(conc_conn_recv_bytes(t->mine, 30.0, &b) == 0);
    CHECK(conc_conn_send_bytes(t->mine, "ok", 2, CONC_FOREVER) == 0);
    CHECK(conc_conn_recv_bytes(t->mine, 30.0, &b) == 0); /* "ok" was read */
    CHECK(t->mine->tx_ring);
    scribble(t->mine->tx, (enum scribble)t->sync);
    /* Stays until the parent has seen it. */
    CHECK(conc_conn_recv_bytes(t->mine, 30.0, &b) == CONC_ECLOSED);
    conc_buf_free(&b);
    conc_conn_free(t->mine);
    return 0;
}

/* A peer that writes nonsense into the ring: the receive fails with
 * CONC_EBROKEN (then CONC_ECLOSED), without a panic, a read out of bounds
 * or a hang; a sender whose reader's position is nonsense fails the same
 * way. */
static void
test_ring_scribbled(void **state)
{
    (void)state;
    for (int how = 0; how < NSCRIBBLES; how++) {
        conc_conn *a, *b;
        assert_conc_ok(conc_pipe(NULL, &a, &b));
        conc_buf got = CONC_BUF_INIT;
        assert_conc(conc_conn_recv_bytes(a, 0, &got), CONC_ETIMEDOUT);
        struct two t = {.mine = b, .other = a, .sync = how};
        pid_t pid = fork_child(scribble_child, &t);
        conc_conn_free(b);
        assert_conc_ok(conc_conn_send_bytes(a, "1", 1, CONC_FOREVER));
        assert_conc_ok(conc_conn_recv_bytes(a, 30.0, &got));
        assert_conc_ok(conc_conn_send_bytes(a, "2", 1, CONC_FOREVER));
        double t0 = conc_monotonic();
        assert_conc(conc_conn_recv_bytes(a, 30.0, &got), CONC_EBROKEN);
        assert_true(conc_monotonic() - t0 < 10.0);
        assert_conc(conc_conn_recv_bytes(a, 0, &got), CONC_ECLOSED);
        assert_int_equal(conc_conn_poll(a, 0), 1);
        conc_conn_free(a);
        reap(pid);
        conc_buf_free(&got);
    }
    /* The reader's position, as the writer reads it. */
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    ring_warm(a, b);
    uint8_t *p = pattern(CONC__RING_MSG_MAX, 1);
    for (int i = 0; i < 3; i++)
        assert_conc_ok(
            conc_conn_send_bytes(a, p, CONC__RING_MSG_MAX, CONC_FOREVER));
    /* The ring is too full for a fourth: the writer reads the position. */
    atomic_store(&b->rx->head, atomic_load(&b->rx->tail) + 8);
    assert_conc(conc_conn_send_bytes(a, p, CONC__RING_MSG_MAX, CONC_FOREVER),
                CONC_EBROKEN);
    free(p);
    conc_conn_free(a);
    conc_conn_free(b);
}

/* poll and timeouts on a ring: nothing there waits the whole timeout, a
 * message or a descriptor there is seen at once, and so is a close. */
static void
test_ring_poll_and_timeouts(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    ring_warm(a, b);
    conc_buf got = CONC_BUF_INIT;
    assert_int_equal(conc_conn_poll(b, 0), 0);
    double t0 = conc_monotonic();
    assert_int_equal(conc_conn_poll(b, 0.05), 0);
    assert_true(conc_monotonic() - t0 >= 0.05);
    t0 = conc_monotonic();
    assert_conc(conc_conn_recv_bytes(b, 0.05, &got), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    size_t n;
    assert_conc(conc_conn_recv_bytes_into(b, NULL, 0, 0, &n), CONC_ETIMEDOUT);
    assert_conc_ok(conc_conn_send_bytes(a, "x", 1, CONC_FOREVER));
    assert_int_equal(conc_conn_poll(b, 0), 1);
    assert_int_equal(conc_conn_poll(b, 0), 1);
    char c;
    assert_conc(conc_conn_recv_bytes_into(b, NULL, 0, 0, &n), CONC_EMSGSIZE);
    assert_int_equal(n, 1);
    assert_conc_ok(conc_conn_recv_bytes_into(b, &c, 1, 0, &n));
    assert_true(n == 1 && c == 'x');
    assert_conc_ok(conc_conn_send_fd(a, 1, CONC_FOREVER));
    assert_int_equal(conc_conn_poll(b, 1.0), 1);
    int fd;
    assert_conc_ok(conc_conn_recv_fd(b, 0, &fd));
    close(fd);
    assert_int_equal(conc_conn_poll(b, 0), 0);
    conc_conn_free(a);
    t0 = conc_monotonic();
    assert_int_equal(conc_conn_poll(b, 10.0), 1);
    assert_conc(conc_conn_recv_bytes(b, 10.0, &got), CONC_ECLOSED);
    assert_true(conc_monotonic() - t0 < 5.0);
    assert_conc(conc_conn_send_bytes(b, "x", 1, CONC_FOREVER), CONC_EPIPE);
    conc_buf_free(&got);
    conc_conn_free(b);
}

/* A receive of timeout 0 sees the end of the stream once the other end is
 * closed (a spinning reader looks at the descriptor after a close), and a
 * send to an end that was closed after it read its ring fails with
 * CONC_EPIPE. */
static void
test_ring_close_seen(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    ring_warm(a, b);
    conc_buf got = CONC_BUF_INIT;
    assert_conc_ok(conc_conn_send_bytes(a, "x", 1, CONC_FOREVER));
    conc_conn_free(a);
    assert_conc_ok(conc_conn_recv_bytes(b, 0, &got));
    assert_conc(conc_conn_recv_bytes(b, 0, &got), CONC_ECLOSED);
    conc_conn_free(b);

    assert_conc_ok(conc_pipe(NULL, &a, &b));
    ring_warm(a, b);
    conc_conn_free(b);
    assert_conc(conc_conn_send_bytes(a, "x", 1, CONC_FOREVER), CONC_EPIPE);
    conc_conn_free(a);

    /* Simplex: the ring goes one way. */
    assert_conc_ok(conc_pipe(&(conc_pipe_opts){.simplex = 1}, &a, &b));
    assert_conc(conc_conn_recv_bytes(a, 0, &got), CONC_ETIMEDOUT);
    for (int i = 0; i < 3; i++)
        assert_conc_ok(conc_conn_send_bytes(b, "abc", 3, CONC_FOREVER));
    assert_true(b->tx_ring);
    for (int i = 0; i < 3; i++) {
        assert_conc_ok(conc_conn_recv_bytes(a, 1.0, &got));
        assert_memory_equal(got.data, "abc", 3);
    }
    assert_true(a->rx_ring);
    conc_conn_free(a);
    assert_conc(conc_conn_send_bytes(b, "x", 1, CONC_FOREVER), CONC_EPIPE);
    conc_conn_free(b);
    conc_buf_free(&got);
}

/* conc_conn_fileno gives the ring up: from then on every message shows on
 * the descriptor, so a caller may wait on it. */
static void
test_ring_fileno_shows_messages(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    ring_warm(a, b);
    int fd;
    assert_conc_ok(conc_conn_fileno(b, &fd));
    assert_int_equal(conc_conn_poll(b, 0), 0);
    for (int i = 0; i < 3; i++) {
        assert_conc_ok(conc_conn_send_bytes(a, "m", 1, CONC_FOREVER));
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 10000), 1);
        conc_buf got = CONC_BUF_INIT;
        assert_conc_ok(conc_conn_recv_bytes(b, 0, &got));
        assert_memory_equal(got.data, "m", 1);
        conc_buf_free(&got);
    }
    conc_conn_free(a);
    conc_conn_free(b);
}

/* An end whose ring was given up (conc_conn_fileno) and whose descriptor
 * went to another process, which reads it through conc_conn_from_fd,
 * while this process keeps its handle and never reads again: the writer
 * must not wait for room in a ring that nobody will read. */
#define HANDED_ON_MESSAGES 20000

struct handed_on {
    int fd;
};

static int
handed_on_child(void *arg)
{
    struct handed_on *h = arg;
    conc_conn *end;
    CHECK(conc_conn_from_fd(h->fd, NULL, &end) == 0);
    conc_buf got = CONC_BUF_INIT;
    for (int i = 0; i < HANDED_ON_MESSAGES; i++) {
        CHECK(conc_conn_recv_bytes(end, 10.0, &got) == 0);
        CHECK(got.len == sizeof i && memcmp(got.data, &i, sizeof i) == 0);
    }
    conc_buf_free(&got);
    conc_conn_free(end);
    return 0;
}

static void
test_ring_fileno_handed_on(void **state)
{
    (void)state;
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    ring_warm(a, b);
    struct handed_on h;
    assert_conc_ok(conc_conn_fileno(b, &h.fd));
    pid_t pid = fork_child(handed_on_child, &h);
    for (int i = 0; i < HANDED_ON_MESSAGES; i++)
        assert_conc_ok(conc_conn_send_bytes(a, &i, sizeof i, 10.0));
    reap(pid);
    conc_conn_free(a);
    conc_conn_free(b);
}

/* The fork server's child gets a pipe end only as a descriptor, which it
 * wraps with conc_conn_from_fd: a connection without a ring. The end that
 * stays here, already on its rings, goes back to the socket for it. */
struct fs_arg {
    char path[64];
    int rounds;
};

static int
fs_echo_child(const void *arg, size_t len)
{
    const struct fs_arg *fa = arg;
    if (len != sizeof *fa)
        return 2;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, fa->path, sizeof fa->path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof sa) == 0);
    conc_conn *ctl, *end;
    CHECK(conc_conn_from_fd(s, NULL, &ctl) == 0);
    int fd;
    CHECK(conc_conn_recv_fd(ctl, 30.0, &fd) == 0);
    CHECK(conc_conn_from_fd(fd, NULL, &end) == 0);
    CHECK(end->rx == NULL && end->tx == NULL);
    conc_buf b = CONC_BUF_INIT;
    int r;
    while ((r = conc_conn_recv_bytes(end, 30.0, &b)) == 0)
        CHECK(conc_conn_send_bytes(end, b.data, b.len, CONC_FOREVER) == 0);
    CHECK(r == CONC_ECLOSED);
    conc_buf_free(&b);
    conc_conn_free(end);
    conc_conn_free(ctl);
    return 0;
}

static void
test_ring_end_to_fork_server(void **state)
{
    (void)state;
    struct fs_arg fa = {.rounds = 200};
    snprintf(fa.path + 1, sizeof fa.path - 1, "conc-test-ipc-%d", getpid());
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, fa.path, sizeof fa.path);
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ls >= 0);
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(ls, 1), 0);
    conc_conn *a, *b;
    assert_conc_ok(conc_pipe(NULL, &a, &b));
    ring_warm(a, b);
    conc_process *p;
    assert_conc_ok(conc_process_new(
        fs_echo_child, &fa, sizeof fa,
        &(conc_process_opts){.method = CONC_START_FORKSERVER}, &p));
    assert_conc_ok(conc_process_start(p));
    int cs = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    assert_true(cs >= 0);
    conc_conn *ctl;
    assert_conc_ok(conc_conn_from_fd(cs, NULL, &ctl));
    assert_conc_ok(conc_conn_send_fd(ctl, b->fd, CONC_FOREVER));
    conc_conn_free(b);
    conc_buf got = CONC_BUF_INIT;
    int slow = 0;
    for (int i = 0; i < fa.rounds; i++) {
        size_t n = (size_t)i * 131 % 20000;
        uint8_t *m = pattern(n, (unsigned)i);
        double t0 = conc_monotonic();
        assert_conc_ok(conc_conn_send_bytes(a, m, n, CONC_FOREVER));
        assert_conc_ok(conc_conn_recv_bytes(a, 30.0, &got));
        slow += conc_monotonic() - t0 >= RING_SLICE_S;
        assert_int_equal(got.len, n);
        assert_true(check_fill(got.data, n, (unsigned)i));
        free(m);
    }
    /* Round trips do not wait for a sleep slice to run out: a wake-up that
     * went missing would make every one of them last a slice, while a
     * loaded machine makes only some of them that slow. */
    assert_true(slow < fa.rounds / 2);
    conc_conn_free(a);
    assert_conc_ok(conc_process_join(p, 30.0));
    int code;
    assert_int_equal(conc_process_exitcode(p, &code), 1);
    assert_int_equal(code, 0);
    conc_process_free(p);
    conc_conn_free(ctl);
    close(ls);
    conc_buf_free(&got);
    conc_forkserver_stop(30.0); /* the server is no leak of this test */
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_duplex_both_ways),
        conc_unit_test(test_simplex_directions),
        conc_unit_test(test_boundaries_echo),
        conc_unit_test(test_boundaries_burst),
        conc_unit_test(test_recv_into_too_small),
        conc_unit_test(test_max_message),
        conc_unit_test(test_eof),
        conc_unit_test(test_eof_mid_message_and_garbage),
        conc_unit_test(test_poll),
        conc_unit_test(test_recv_timeout_mid_message),
        conc_unit_test(test_recv_into_timeout_enomem),
        conc_unit_test(test_send_after_peer_closed),
        conc_unit_test(test_close_and_use_after_close),
        conc_unit_test(test_bad_arguments),
        conc_unit_test(test_fd_pass_pipe_to_child),
        conc_unit_test(test_fd_pass_file_and_order),
        conc_unit_test(test_fd_on_simplex),
        conc_unit_test(test_fd_bad_frames),
        conc_unit_test(test_nonblocking_descriptors),
        conc_unit_test(test_from_fd),
        conc_unit_test(test_alloc_failures),
        conc_unit_test(test_pingpong_processes),
        conc_unit_test(test_send_and_recv_threads),
        conc_unit_test(test_ring_sizes_and_descriptors),
        conc_unit_test(test_ring_wraps_across_processes),
        conc_unit_test(test_ring_peer_killed),
        conc_unit_test(test_ring_scribbled),
        conc_unit_test(test_ring_poll_and_timeouts),
        conc_unit_test(test_ring_close_seen),
        conc_unit_test(test_ring_fileno_shows_messages),
        conc_unit_test(test_ring_fileno_handed_on),
        conc_unit_test(test_ring_end_to_fork_server),
    };
    return conc_run_tests(tests);
}
