/* Layer 2 process queues: Queue, SimpleQueue and JoinableQueue between
 * processes made with a raw fork().
 *
 * Children never use cmocka: they check with plain code and report through
 * their exit status (0 for success) or through records in shared memory,
 * and end with _exit. The parent reaps every child. States a test must
 * wait for (the ring filled up, a consumer emptied it) are read through the
 * module's internal positions and polled with conc_test_wait_until; nothing
 * sleeps to synchronize. Every blocking call has a bounded timeout, so a bug
 * fails a test instead of hanging it. Tests that start threads join them
 * before they end, so every fork happens while the test process runs a
 * single thread (of its own: TSan adds one). */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"
#include "mpqueue/mpqueue_internal.h"

/* A bound for waits that should end at once. */
#define BOUND 20.0

/* A small ring, so that tests wrap around it and fill it quickly. */
#define SMALL 1024

/* ---- Helpers ------------------------------------------------------------ */

static conc_arena *
new_arena(size_t size)
{
    conc_arena *a;
    assert_conc_ok(conc_arena_new(size, &a));
    return a;
}

static conc_mpqueue *
new_queue(conc_arena *a, size_t capacity, size_t maxsize)
{
    conc_mpqueue *q;
    assert_conc_ok(conc_mpqueue_new(&(conc_mpqueue_opts){.maxsize = maxsize,
                                                         .capacity = capacity,
                                                         .arena = a},
                                    &q));
    return q;
}

/* The content of message `id`: its id in the first 8 bytes (when there is
 * room), then bytes that depend on id and position. */
static void
fill(uint8_t *p, size_t len, uint64_t id)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(id * 31 + i * 7);
    if (len >= 8)
        memcpy(p, &id, 8);
}

static int
check(const uint8_t *p, size_t len, uint64_t id)
{
    size_t i = 0;
    if (len >= 8) {
        uint64_t got;
        memcpy(&got, p, 8);
        if (got != id)
            return 0;
        i = 8;
    }
    for (; i < len; i++)
        if (p[i] != (uint8_t)(id * 31 + i * 7))
            return 0;
    return 1;
}

/* Puts message `id` of `len` bytes. Returns put's result. */
static int
put_msg(conc_mpqueue *q, uint64_t id, size_t len, double timeout)
{
    uint8_t small[256] = {0};
    uint8_t *p = len <= sizeof small ? small : malloc(len);
    if (!p)
        return CONC_ENOMEM;
    fill(p, len, id);
    int r = conc_mpqueue_put(q, p, len, timeout);
    if (p != small)
        free(p);
    return r;
}

/* Gets one message and checks that it is `id` with `len` bytes. */
static int
get_msg(conc_mpqueue *q, conc_buf *b, uint64_t id, size_t len, double timeout)
{
    int r = conc_mpqueue_get(q, timeout, b);
    if (r)
        return r;
    return b->len == len && check(b->data, len, id) ? 0 : CONC_EPROTO;
}

struct pos_wait {
    conc_mpqueue *q;
    uint32_t bytes; /* wait until tail reaches this byte position */
};

static int
tail_reached(void *arg)
{
    struct pos_wait *w = arg;
    return conc__mpq_bytes(atomic_load(&w->q->s->tail)) == w->bytes;
}

static int
ring_drained(void *arg)
{
    struct pos_wait *w = arg;
    struct conc__mpq_shared *s = w->q->s;
    return conc__mpq_bytes(atomic_load(&s->head)) ==
           conc__mpq_bytes(atomic_load(&s->tail));
}

/* ---- Single process ----------------------------------------------------- */

static void
test_fifo_one_process(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    conc_buf b = CONC_BUF_INIT;
    assert_int_equal(conc_mpqueue_capacity(q), SMALL);
    assert_int_equal(conc_mpqueue_empty(q), 1);
    assert_int_equal(conc_mpqueue_full(q), 0);
    /* Many rounds, so that frames wrap around the ring's end. */
    for (uint64_t round = 0; round < 50; round++) {
        for (uint64_t i = 0; i < 5; i++)
            assert_conc_ok(put_msg(q, round * 10 + i, 10 + i * 13, 0));
        assert_int_equal(conc_mpqueue_qsize(q), 5);
        assert_int_equal(conc_mpqueue_empty(q), 0);
        for (uint64_t i = 0; i < 5; i++)
            assert_conc_ok(get_msg(q, &b, round * 10 + i, 10 + i * 13, 0));
    }
    assert_int_equal(conc_mpqueue_qsize(q), 0);
    assert_conc(conc_mpqueue_get_nowait(q, &b), CONC_EEMPTY);
    /* get replaces the buffer's content. */
    assert_conc_ok(conc_mpqueue_put_nowait(q, "abc", 3));
    assert_conc_ok(conc_mpqueue_get_nowait(q, &b));
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "abc", 3);
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static void
test_small_sizes(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    conc_buf b = CONC_BUF_INIT;
    size_t lens[] = {0, 1, 7, 8, 9, 64, SMALL - 8};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        assert_conc_ok(put_msg(q, i, lens[i], 0));
        assert_conc_ok(get_msg(q, &b, i, lens[i], 0));
    }
    assert_conc_ok(conc_mpqueue_put(q, NULL, 0, 0));
    assert_conc_ok(conc_mpqueue_get(q, 0, &b));
    assert_int_equal(b.len, 0);
    /* The largest whole message fills the ring exactly. */
    assert_conc_ok(put_msg(q, 7, SMALL - 8, 0));
    assert_int_equal(conc_mpqueue_full(q), 1);
    assert_conc(put_msg(q, 8, 0, 0), CONC_EFULL);
    assert_conc_ok(get_msg(q, &b, 7, SMALL - 8, 0));
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static void
test_invalid_new(void **state)
{
    (void)state;
    conc_arena *a = new_arena(8 << 20);
    conc_mpqueue *q = NULL;
    assert_conc(conc_mpqueue_new(NULL, NULL), CONC_EINVAL);
    assert_conc(
        conc_mpqueue_new(
            &(conc_mpqueue_opts){.capacity = ((size_t)1 << 30) + 1, .arena = a},
            &q),
        CONC_EINVAL);
    assert_conc(conc_mpsimplequeue_new(
                    &(conc_mpqueue_opts){.maxsize = 3, .arena = a}, &q),
                CONC_EINVAL);
    assert_null(q);
    /* A capacity under the minimum is rounded up to it, others to a power
     * of two; 0 is the default. */
    q = new_queue(a, 1, 0);
    assert_int_equal(conc_mpqueue_capacity(q), CONC_MPQUEUE_MIN_CAPACITY);
    conc_mpqueue_free(q);
    q = new_queue(a, 5000, 0);
    assert_int_equal(conc_mpqueue_capacity(q), 8192);
    conc_mpqueue_free(q);
    q = new_queue(a, 0, 0);
    assert_int_equal(conc_mpqueue_capacity(q), CONC_MPQUEUE_CAPACITY);
    conc_mpqueue_free(q);
    conc_mpqueue_free(NULL);
    conc_arena_free(a);
}

static void
test_invalid_calls(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    conc_buf b = CONC_BUF_INIT;
    size_t len;
    char c;
    assert_conc(conc_mpqueue_put(NULL, "x", 1, 0), CONC_EINVAL);
    assert_conc(conc_mpqueue_put(q, NULL, 1, 0), CONC_EINVAL);
    assert_conc(conc_mpqueue_put(q, "x", 1, NAN), CONC_EINVAL);
    assert_conc(conc_mpqueue_get(NULL, 0, &b), CONC_EINVAL);
    assert_conc(conc_mpqueue_get(q, 0, NULL), CONC_EINVAL);
    assert_conc(conc_mpqueue_get(q, NAN, &b), CONC_EINVAL);
    assert_conc(conc_mpqueue_get_into(q, NULL, 1, 0, &len), CONC_EINVAL);
    assert_conc(conc_mpqueue_get_into(q, &c, 1, 0, NULL), CONC_EINVAL);
    assert_conc(conc_mpqueue_get_into(NULL, &c, 1, 0, &len), CONC_EINVAL);
    assert_conc(conc_mpqueue_close(NULL), CONC_EINVAL);
    assert_conc(conc_mpqueue_shutdown(NULL), CONC_EINVAL);
    /* A plain queue has no task counting. */
    assert_conc(conc_joinable_task_done(q), CONC_EINVAL);
    assert_conc(conc_joinable_join(q, 0), CONC_EINVAL);
    assert_conc(conc_joinable_task_done(NULL), CONC_EINVAL);
    assert_conc(conc_joinable_join(NULL, 0), CONC_EINVAL);
    assert_int_equal(conc_mpqueue_qsize(q), 0);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static void
test_simplequeue(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q;
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_mpsimplequeue_new(
        &(conc_mpqueue_opts){.capacity = SMALL, .arena = a}, &q));
    for (uint64_t i = 0; i < 20; i++)
        assert_conc_ok(put_msg(q, i, 16, 0));
    assert_int_equal(conc_mpqueue_full(q), 0);
    for (uint64_t i = 0; i < 20; i++)
        assert_conc_ok(get_msg(q, &b, i, 16, 0));
    assert_int_equal(conc_mpqueue_empty(q), 1);
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static void
test_maxsize(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 2);
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(put_msg(q, 1, 4, 0));
    assert_int_equal(conc_mpqueue_full(q), 0);
    assert_conc_ok(put_msg(q, 2, 4, 0));
    assert_int_equal(conc_mpqueue_full(q), 1);
    assert_conc(put_msg(q, 3, 4, 0), CONC_EFULL);
    assert_conc(conc_mpqueue_put_nowait(q, "x", 1), CONC_EFULL);
    double t0 = conc_monotonic();
    assert_conc(put_msg(q, 3, 4, 0.05), CONC_EFULL);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_conc_ok(get_msg(q, &b, 1, 4, 0));
    assert_int_equal(conc_mpqueue_full(q), 0);
    assert_conc_ok(put_msg(q, 3, 4, 0));
    assert_conc_ok(get_msg(q, &b, 2, 4, 0));
    assert_conc_ok(get_msg(q, &b, 3, 4, 0));
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static void
test_ring_bytes_full(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    conc_buf b = CONC_BUF_INIT;
    /* 100-byte messages take 8 + 104 bytes: nine fit in 1024. */
    uint64_t n = 0;
    while (put_msg(q, n, 100, 0) == 0)
        n++;
    assert_int_equal(n, SMALL / CONC_MPQUEUE_FRAME_SIZE(100));
    assert_int_equal(conc_mpqueue_qsize(q), n);
    assert_conc(put_msg(q, n, 100, 0.02), CONC_EFULL);
    /* Room for a smaller message remains. */
    assert_int_equal(conc_mpqueue_full(q), 0);
    assert_conc_ok(put_msg(q, n, 8, 0));
    for (uint64_t i = 0; i < n; i++)
        assert_conc_ok(get_msg(q, &b, i, 100, 0));
    assert_conc_ok(get_msg(q, &b, n, 8, 0));
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static void
test_get_timeout(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    conc_buf b = CONC_BUF_INIT;
    char c;
    size_t len;
    double t0 = conc_monotonic();
    assert_conc(conc_mpqueue_get(q, 0.05, &b), CONC_EEMPTY);
    assert_true(conc_monotonic() - t0 >= 0.05);
    t0 = conc_monotonic();
    assert_conc(conc_mpqueue_get_into(q, &c, 1, 0.05, &len), CONC_EEMPTY);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_conc(conc_mpqueue_get_nowait(q, &b), CONC_EEMPTY);
    assert_int_equal(b.len, 0);
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static void
test_get_into(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    uint8_t buf[200];
    memset(buf, 0xee, sizeof buf);
    size_t len = 0;
    assert_conc_ok(put_msg(q, 42, 100, 0));
    assert_conc(conc_mpqueue_get_into(q, buf, 99, 0, &len), CONC_EMSGSIZE);
    assert_int_equal(len, 100);
    assert_int_equal(buf[0], 0xee); /* untouched */
    assert_int_equal(conc_mpqueue_qsize(q), 1);
    assert_conc_ok(conc_mpqueue_get_into(q, buf, 100, 0, &len));
    assert_int_equal(len, 100);
    assert_true(check(buf, 100, 42));
    assert_conc_ok(conc_mpqueue_put(q, NULL, 0, 0));
    assert_conc_ok(conc_mpqueue_get_into(q, NULL, 0, 0, &len));
    assert_int_equal(len, 0);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static void
test_close(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(put_msg(q, 1, 8, 0));
    assert_conc_ok(conc_mpqueue_close(q));
    assert_conc_ok(conc_mpqueue_close(q));
    assert_conc(put_msg(q, 2, 8, 0), CONC_ECLOSED);
    assert_conc(conc_mpqueue_get(q, 0, &b), CONC_ECLOSED);
    assert_int_equal(conc_mpqueue_qsize(q), 1);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static int
closed_child(void *arg)
{
    conc_mpqueue *q = arg;
    conc_buf b = CONC_BUF_INIT;
    /* The parent's close does not reach this process. */
    if (get_msg(q, &b, 1, 8, 0) != 0 || put_msg(q, 2, 8, 0) != 0)
        return 1;
    return 0;
}

static void
test_close_per_process(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    assert_conc_ok(put_msg(q, 1, 8, 0));
    assert_conc_ok(conc_mpqueue_close(q));
    reap(fork_child(closed_child, q));
    assert_int_equal(conc_mpqueue_qsize(q), 1);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static int
blocked_get_child(void *arg)
{
    conc_mpqueue *q = arg;
    conc_buf b = CONC_BUF_INIT;
    return conc_mpqueue_get(q, BOUND, &b) == CONC_ECLOSED ? 0 : 1;
}

static int
blocked_put_child(void *arg)
{
    conc_mpqueue *q = arg;
    return put_msg(q, 9, 8, BOUND) == CONC_ECLOSED ? 0 : 1;
}

static int
sleeping(void *arg)
{
    _Atomic uint32_t *flag = arg;
    return atomic_load(flag) != 0;
}

static void
test_shutdown(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 1);
    conc_buf b = CONC_BUF_INIT;
    /* A get that sleeps on an empty queue wakes with CONC_ECLOSED. */
    pid_t pid = fork_child(blocked_get_child, q);
    assert_true(conc_test_wait_until(sleeping, &q->s->data_waiting, BOUND));
    assert_conc_ok(conc_mpqueue_shutdown(q));
    reap(pid);
    conc_mpqueue_free(q);

    /* A put that sleeps on a full queue too, and the message queued before
     * the shutdown is still delivered. */
    q = new_queue(a, SMALL, 1);
    assert_conc_ok(put_msg(q, 1, 8, 0));
    pid = fork_child(blocked_put_child, q);
    assert_true(conc_test_wait_until(sleeping, &q->s->room_waiting, BOUND));
    assert_conc_ok(conc_mpqueue_shutdown(q));
    assert_conc_ok(conc_mpqueue_shutdown(q));
    reap(pid);
    assert_conc(put_msg(q, 2, 8, 0), CONC_ECLOSED);
    assert_conc_ok(get_msg(q, &b, 1, 8, 0));
    assert_conc(conc_mpqueue_get(q, BOUND, &b), CONC_ECLOSED);
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static void
test_enomem(void **state)
{
    (void)state;
    conc_arena *a = new_arena(64 << 10);
    conc_mpqueue *q = NULL;
    size_t avail = conc_arena_available(a);
    /* The arena has no block for a 1 MiB ring. */
    assert_conc(conc_mpqueue_new(
                    &(conc_mpqueue_opts){.capacity = 1 << 20, .arena = a}, &q),
                CONC_ENOMEM);
    assert_null(q);
    assert_int_equal(conc_arena_available(a), avail);
    /* No memory for the handle. */
    conc_test_fail_alloc_after(1);
    assert_conc(conc_joinable_new(
                    &(conc_mpqueue_opts){.capacity = SMALL, .arena = a}, &q),
                CONC_ENOMEM);
    assert_int_equal(conc_arena_available(a), avail);
    /* A get whose buffer cannot grow leaves the message queued. */
    q = new_queue(a, SMALL, 0);
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(put_msg(q, 5, 100, 0));
    conc_test_fail_alloc_after(1);
    assert_conc(conc_mpqueue_get(q, 0, &b), CONC_ENOMEM);
    assert_int_equal(b.len, 0);
    assert_int_equal(conc_mpqueue_qsize(q), 1);
    assert_conc_ok(get_msg(q, &b, 5, 100, 0));
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    assert_int_equal(conc_arena_available(a), avail);
    conc_arena_free(a);
}

/* ---- Between processes -------------------------------------------------- */

struct stream {
    conc_mpqueue *q;
    uint64_t first, count; /* ids first .. first + count - 1 */
    size_t (*len)(uint64_t id);
};

static size_t
len_mixed(uint64_t id)
{
    return (size_t)(id * 7919 % 301);
}

static int
produce(void *arg)
{
    struct stream *st = arg;
    for (uint64_t i = 0; i < st->count; i++) {
        uint64_t id = st->first + i;
        if (put_msg(st->q, id, st->len(id), BOUND) != 0)
            return 1;
    }
    return 0;
}

static void
test_fifo_two_processes(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    struct stream st = {q, 0, 100000, len_mixed};
    pid_t pid = fork_child(produce, &st);
    conc_buf b = CONC_BUF_INIT;
    for (uint64_t id = 0; id < st.count; id++)
        assert_conc_ok(get_msg(q, &b, id, len_mixed(id), BOUND));
    reap(pid);
    assert_int_equal(conc_mpqueue_qsize(q), 0);
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

struct big {
    conc_mpqueue *q;
    const size_t *lens;
    size_t n;
};

static int
consume_big(void *arg)
{
    struct big *g = arg;
    conc_buf b = CONC_BUF_INIT;
    int bad = 0;
    for (size_t i = 0; i < g->n && !bad; i++)
        bad = get_msg(g->q, &b, i, g->lens[i], BOUND) != 0;
    conc_buf_free(&b);
    return bad;
}

static void
send_big(conc_mpqueue *q, const size_t *lens, size_t n)
{
    struct big g = {q, lens, n};
    pid_t pid = fork_child(consume_big, &g);
    for (size_t i = 0; i < n; i++)
        assert_conc_ok(put_msg(q, i, lens[i], BOUND));
    reap(pid);
    assert_int_equal(conc_mpqueue_qsize(q), 0);
}

static void
test_large_messages(void **state)
{
    (void)state;
    conc_arena *a = new_arena(8 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    /* Exactly the largest whole frame, one byte more (in pieces), the
     * ring's size, three times it, and small ones between. */
    const size_t lens[] = {SMALL - 8, SMALL - 7,    5, SMALL, 3 * SMALL,
                           0,         3 * SMALL + 5};
    send_big(q, lens, sizeof lens / sizeof *lens);
    conc_mpqueue_free(q);
    /* 16 MiB through the default 4 MiB ring, and whole messages large
     * enough to be streamed. */
    q = new_queue(a, 0, 0);
    const size_t huge[] = {16 << 20, 1, 16 << 20, 1 << 20, 3 << 20, 65536};
    send_big(q, huge, sizeof huge / sizeof *huge);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static void
test_large_get_into(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    size_t len = 0;
    uint8_t *buf = malloc(3 * SMALL);
    assert_non_null(buf);
    /* A put in pieces, from a child: the first piece is in the ring once
     * tail moves. A buffer that is too small leaves the message queued. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(put_msg(q, 1, 3 * SMALL, BOUND) != 0);
    struct pos_wait w = {q, SMALL};
    assert_true(conc_test_wait_until(tail_reached, &w, BOUND));
    assert_conc(conc_mpqueue_get_into(q, buf, 3 * SMALL - 1, 0, &len),
                CONC_EMSGSIZE);
    assert_int_equal(len, 3 * SMALL);
    assert_conc_ok(conc_mpqueue_get_into(q, buf, 3 * SMALL, BOUND, &len));
    assert_int_equal(len, 3 * SMALL);
    assert_true(check(buf, len, 1));
    reap(pid);
    free(buf);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

/* A put in pieces that runs out of time leaves nothing of its message in
 * the ring: a 1-byte put then finds room at once, and the messages queued
 * before it come out as they were. */
static void
test_large_put_timeout(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    conc_buf b = CONC_BUF_INIT;
    double t0 = conc_monotonic();
    assert_conc(put_msg(q, 1, 3 * SMALL, 0.05), CONC_EFULL);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_int_equal(conc_mpqueue_qsize(q), 0);
    assert_int_equal(conc_mpqueue_full(q), 0);
    assert_conc_ok(put_msg(q, 2, 1, 0));
    assert_conc_ok(get_msg(q, &b, 2, 1, 0));
    assert_conc(conc_mpqueue_get(q, 0, &b), CONC_EEMPTY);

    /* Behind a queued message, and once more after the ring wrapped. */
    for (uint64_t id = 3; id < 9; id += 2) {
        assert_conc_ok(put_msg(q, id, 100, 0));
        assert_conc(put_msg(q, 0, 2 * SMALL, 0.01), CONC_EFULL);
        assert_int_equal(conc_mpqueue_qsize(q), 1);
        assert_conc_ok(put_msg(q, id + 1, SMALL - 8 - 112, 0));
        assert_conc_ok(get_msg(q, &b, id, 100, 0));
        assert_conc_ok(get_msg(q, &b, id + 1, SMALL - 8 - 112, 0));
        assert_conc(conc_mpqueue_get(q, 0, &b), CONC_EEMPTY);
    }
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

/* ---- Handing a queue to a process ---------------------------------------- */

/* The child of multiprocessing's Process(target=f, args=(q,)): opens its
 * own handle from the ref and answers each message with its double. */
static int
handed_child(const void *arg, size_t len)
{
    const conc_mpqueue_ref *ref = arg;
    conc_mpqueue *q;
    if (len != sizeof *ref || conc_mpqueue_open(ref, &q) != 0)
        return 10;
    conc_buf b = CONC_BUF_INIT;
    int r = conc_mpqueue_get(q, BOUND, &b);
    uint64_t v = 0;
    if (!r && b.len == sizeof v) {
        memcpy(&v, b.data, sizeof v);
        v *= 2;
        r = conc_mpqueue_put(q, &v, sizeof v, BOUND);
    }
    conc_buf_free(&b);
    conc_mpqueue_free(q); /* the handle only */
    return r ? 11 : 0;
}

/* The same child function under both start methods: the fork server's
 * children inherit no memory, and open the queue from its ref. */
static void
test_handoff_to_process(void **state)
{
    (void)state;
    static const conc_start_method methods[] = {CONC_START_FORK,
                                                CONC_START_FORKSERVER};
    for (size_t m = 0; m < 2; m++) {
        conc_arena *a = new_arena(1 << 20);
        conc_mpqueue *q = new_queue(a, SMALL, 0);
        conc_mpqueue_ref ref;
        assert_conc_ok(conc_mpqueue_share(q, &ref));
        conc_process *p;
        assert_conc_ok(
            conc_process_new(handed_child, &ref, sizeof ref,
                             &(conc_process_opts){.method = methods[m]}, &p));
        assert_conc_ok(conc_process_start(p));
        uint64_t v = 21 + m;
        assert_conc_ok(conc_mpqueue_put(q, &v, sizeof v, BOUND));
        assert_conc_ok(conc_process_join(p, BOUND));
        int code = -1;
        assert_int_equal(conc_process_exitcode(p, &code), 1);
        assert_int_equal(code, 0);
        conc_process_free(p);
        conc_buf b = CONC_BUF_INIT;
        assert_conc_ok(conc_mpqueue_get(q, BOUND, &b));
        assert_int_equal(b.len, sizeof v);
        memcpy(&v, b.data, sizeof v);
        assert_int_equal(v, 2 * (21 + m));
        conc_buf_free(&b);
        conc_mpqueue_free(q);
        conc_arena_free(a);
    }
    assert_conc_ok(conc_forkserver_stop(CONC_FOREVER));
}

/* A pool's initializer gets the ref as its initarg, as Python's
 * Pool(initializer=init, initargs=(q,)), and keeps the worker's handle. */
static conc_mpqueue *worker_queue;

static int
init_worker(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    if (len != sizeof(conc_mpqueue_ref))
        return CONC_EINVAL;
    return conc_mpqueue_open(arg, &worker_queue);
}

static int
put_double(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    uint64_t v;
    if (len != sizeof v)
        return CONC_EINVAL;
    memcpy(&v, arg, sizeof v);
    v *= 2;
    return conc_mpqueue_put(worker_queue, &v, sizeof v, BOUND);
}

static void
test_handoff_to_pool_initializer(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    conc_mpqueue_ref ref;
    assert_conc_ok(conc_mpqueue_share(q, &ref));
    conc_pool *pool;
    assert_conc_ok(conc_pool_new(&(conc_pool_opts){.processes = 2,
                                                   .initializer = init_worker,
                                                   .initarg = &ref,
                                                   .initarg_len = sizeof ref},
                                 &pool));
    uint64_t sum = 0;
    for (uint64_t i = 1; i <= 4; i++) {
        conc_buf r = CONC_BUF_INIT;
        assert_conc_ok(
            conc_pool_apply(pool, put_double, &i, sizeof i, CONC_FOREVER, &r));
        conc_buf_free(&r);
    }
    for (int i = 0; i < 4; i++) {
        conc_buf b = CONC_BUF_INIT;
        uint64_t v;
        assert_conc_ok(conc_mpqueue_get(q, BOUND, &b));
        memcpy(&v, b.data, sizeof v);
        sum += v;
        conc_buf_free(&b);
    }
    assert_int_equal(sum, 2 * (1 + 2 + 3 + 4));
    assert_conc_ok(conc_pool_close(pool));
    assert_conc_ok(conc_pool_join(pool, BOUND));
    conc_pool_free(pool);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

/* ---- Bytes written over the queue by another process ------------------- */

/* The ways a child scribbles over a queue's shared part. */
enum scribble {
    SCRIBBLE_RING,      /* every ring byte */
    SCRIBBLE_LEN,       /* a frame header's length, past the committed bytes */
    SCRIBBLE_KIND,      /* a frame header's kind */
    SCRIBBLE_TAIL,      /* tail, more than a ring ahead of head */
    SCRIBBLE_TAIL_ODD,  /* tail, to a position no frame can end at */
    SCRIBBLE_CAP,       /* the ring's capacity */
    SCRIBBLE_FIRST_LEN, /* a FIRST frame's total, below its first piece */
    SCRIBBLE_COUNT
};

struct scribbler {
    conc_mpqueue *q;
    enum scribble how;
};

static int
scribble_child(void *arg)
{
    struct scribbler *c = arg;
    struct conc__mpq_shared *s = c->q->s;
    uint32_t at = conc__mpq_bytes(atomic_load(&s->head)) & (s->cap - 1);
    uint32_t *hdr = (uint32_t *)(s->ring + at);
    uint64_t tail = atomic_load(&s->tail);
    switch (c->how) {
    case SCRIBBLE_RING:
        memset(s->ring, 0xab, s->cap);
        break;
    case SCRIBBLE_LEN:
        hdr[0] = 300; /* only 2 * (8 + 104) bytes are committed */
        break;
    case SCRIBBLE_KIND:
        hdr[1] = (hdr[1] & 0xffff0000u) | 9;
        break;
    case SCRIBBLE_TAIL:
        atomic_store(&s->tail, tail + s->cap + 64);
        break;
    case SCRIBBLE_TAIL_ODD:
        atomic_store(&s->tail, tail - 4);
        break;
    case SCRIBBLE_CAP:
        s->cap = 1u << 30;
        break;
    case SCRIBBLE_FIRST_LEN:
        memset(hdr + 2, 0, 8); /* the total length */
        break;
    default:
        return 1;
    }
    return 0;
}

/* A child that writes wild bytes over a queue (its ring, a frame header,
 * the positions, the capacity) does not crash or hang the processes that
 * use it: their next get fails with CONC_EBROKEN and says why, and so does
 * every later put and get. The queue is still freed cleanly. */
static void
test_corrupt_ring(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    for (int how = 0; how < SCRIBBLE_COUNT; how++) {
        conc_mpqueue *q = new_queue(a, SMALL, 0);
        conc_buf b = CONC_BUF_INIT;
        if (how == SCRIBBLE_FIRST_LEN) {
            /* The FIRST piece of a message in pieces, given up but left in
             * the ring (taken back only while no consumer holds on). */
            assert_conc_ok(conc__mpq_lock_acquire(&q->s->clock, CONC__POLL));
            assert_conc(put_msg(q, 1, 2 * SMALL, 0), CONC_EFULL);
            conc__mpq_lock_release(&q->s->clock);
        } else {
            assert_conc_ok(put_msg(q, 1, 100, 0));
            assert_conc_ok(put_msg(q, 2, 100, 0));
        }
        struct scribbler c = {q, (enum scribble)how};
        reap(fork_child(scribble_child, &c));
        conc_clear_failure();
        assert_conc(conc_mpqueue_get(q, BOUND, &b), CONC_EBROKEN);
        print_message("scribble %d: %s\n", how, conc_failure_message());
        assert_non_null(strstr(conc_failure_message(), "process queue"));
        assert_int_equal(b.len, 0);
        assert_conc(conc_mpqueue_get(q, 0, &b), CONC_EBROKEN);
        assert_conc(put_msg(q, 3, 10, 0), CONC_EBROKEN);
        conc_buf_free(&b);
        conc_mpqueue_free(q);
    }
    conc_arena_free(a);
}

struct mpmc {
    _Atomic uint32_t received[4 * 3000];
    _Atomic uint32_t bad;
};

struct mpmc_consumer {
    conc_mpqueue *q;
    struct mpmc *rec;
};

static size_t
len_mpmc(uint64_t id)
{
    return id % 97 == 0 ? 40 * SMALL + id % 13 : (size_t)(8 + id * 131 % 500);
}

static int
consume_mpmc(void *arg)
{
    struct mpmc_consumer *c = arg;
    conc_buf b = CONC_BUF_INIT;
    uint64_t last[4] = {0, 0, 0, 0};
    int seen[4] = {0, 0, 0, 0};
    for (;;) {
        if (conc_mpqueue_get(c->q, BOUND, &b) != 0)
            return 1;
        if (b.len == 0)
            break; /* the stop message */
        uint64_t id;
        memcpy(&id, b.data, 8);
        unsigned p = (unsigned)(id / 3000);
        if (p >= 4 || b.len != len_mpmc(id) || !check(b.data, b.len, id) ||
            (seen[p] && id <= last[p])) {
            atomic_fetch_add(&c->rec->bad, 1);
            continue;
        }
        seen[p] = 1;
        last[p] = id; /* one producer's messages arrive in order */
        atomic_fetch_add(&c->rec->received[id], 1);
    }
    conc_buf_free(&b);
    return 0;
}

static void
test_mpmc(void **state)
{
    (void)state;
    conc_arena *a = new_arena(4 << 20);
    conc_mpqueue *q = new_queue(a, 16 * SMALL, 0);
    struct mpmc *rec;
    assert_conc_ok(conc_arena_alloc(a, sizeof *rec, (void **)&rec));
    struct mpmc_consumer c = {q, rec};
    pid_t cons[4], prod[4];
    for (int i = 0; i < 4; i++)
        cons[i] = fork_child(consume_mpmc, &c);
    for (int i = 0; i < 4; i++) {
        struct stream st = {q, (uint64_t)i * 3000, 3000, len_mpmc};
        prod[i] = fork_child(produce, &st);
    }
    for (int i = 0; i < 4; i++)
        reap(prod[i]);
    for (int i = 0; i < 4; i++)
        assert_conc_ok(conc_mpqueue_put(q, NULL, 0, BOUND));
    for (int i = 0; i < 4; i++)
        reap(cons[i]);
    assert_int_equal(atomic_load(&rec->bad), 0);
    for (int id = 0; id < 4 * 3000; id++)
        assert_int_equal(atomic_load(&rec->received[id]), 1);
    assert_int_equal(conc_mpqueue_qsize(q), 0);
    conc_arena_dealloc(a, rec);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

/* ---- JoinableQueue ------------------------------------------------------ */

static void
test_joinable_basic(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q;
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_joinable_new(
        &(conc_mpqueue_opts){.capacity = SMALL, .arena = a}, &q));
    assert_conc_ok(conc_joinable_join(q, 0));
    assert_conc(conc_joinable_task_done(q), CONC_EVALUE);
    assert_conc(conc_joinable_join(q, NAN), CONC_EINVAL);
    assert_conc_ok(put_msg(q, 1, 8, 0));
    assert_conc_ok(put_msg(q, 2, 8, 0));
    double t0 = conc_monotonic();
    assert_conc(conc_joinable_join(q, 0.05), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_conc_ok(get_msg(q, &b, 1, 8, 0));
    assert_conc_ok(conc_joinable_task_done(q));
    assert_conc(conc_joinable_join(q, 0), CONC_ETIMEDOUT);
    assert_conc_ok(get_msg(q, &b, 2, 8, 0));
    assert_conc_ok(conc_joinable_task_done(q));
    assert_conc_ok(conc_joinable_join(q, 0));
    assert_conc(conc_joinable_task_done(q), CONC_EVALUE);
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

/* The seed's JoinableQueue program: consumers that never end on their own
 * (daemons: the parent kills them at the end) take each item and call
 * task_done; producers put ten items each and join the queue, so each
 * returns only once every item of every producer is processed. */
static int
joinable_consumer(void *arg)
{
    conc_mpqueue *q = arg;
    conc_buf b = CONC_BUF_INIT;
    for (;;) {
        if (conc_mpqueue_get(q, CONC_FOREVER, &b) != 0 ||
            conc_joinable_task_done(q) != 0)
            return 1;
    }
}

static int
joinable_producer(void *arg)
{
    struct stream *st = arg;
    if (produce(st) != 0)
        return 1;
    return conc_joinable_join(st->q, BOUND) == 0 ? 0 : 2;
}

static size_t
len_ten(uint64_t id)
{
    (void)id;
    return 10;
}

static void
test_joinable_processes(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q;
    assert_conc_ok(conc_joinable_new(
        &(conc_mpqueue_opts){.capacity = SMALL, .arena = a}, &q));
    pid_t cons[2], prod[3];
    for (int i = 0; i < 3; i++) {
        struct stream st = {q, (uint64_t)i * 10, 10, len_ten};
        prod[i] = fork_child(joinable_producer, &st);
    }
    for (int i = 0; i < 2; i++)
        cons[i] = fork_child(joinable_consumer, q);
    for (int i = 0; i < 3; i++)
        reap(prod[i]);
    assert_conc_ok(conc_joinable_join(q, 0));
    assert_int_equal(conc_mpqueue_qsize(q), 0);
    assert_conc(conc_joinable_task_done(q), CONC_EVALUE);
    for (int i = 0; i < 2; i++)
        kill_and_reap(cons[i]);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static int
get_one_child(void *arg)
{
    conc_mpqueue *q = arg;
    conc_buf b = CONC_BUF_INIT;
    int r = get_msg(q, &b, 3, 8, BOUND);
    conc_buf_free(&b);
    return r != 0;
}

static int
put_one_child(void *arg)
{
    conc_mpqueue *q = arg;
    return put_msg(q, 2, 8, BOUND) != 0;
}

/* A process killed after it claimed a sleeper's flag but before it woke the
 * sleeper (simulated by clearing the flag) delays the sleeper by one sleep
 * slice, not until its timeout. */
static void
test_lost_wake(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 1);
    conc_buf b = CONC_BUF_INIT;
    pid_t pid = fork_child(get_one_child, q);
    assert_true(conc_test_wait_until(sleeping, &q->s->data_waiting, BOUND));
    atomic_store(&q->s->data_waiting, 0);
    assert_conc_ok(put_msg(q, 3, 8, 0));
    reap(pid);
    assert_conc_ok(put_msg(q, 1, 8, 0));
    pid = fork_child(put_one_child, q);
    assert_true(conc_test_wait_until(sleeping, &q->s->room_waiting, BOUND));
    atomic_store(&q->s->room_waiting, 0);
    assert_conc_ok(get_msg(q, &b, 1, 8, 0));
    reap(pid);
    assert_conc_ok(get_msg(q, &b, 2, 8, 0));
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

/* ---- Dead owners -------------------------------------------------------- */

static void
test_owner_identity(void **state)
{
    (void)state;
    uint64_t me = conc__mpq_self();
    assert_int_equal(me & CONC__MPQ_TID_MASK, (uint64_t)getpid());
    assert_int_equal(conc__mpq_owner_dead(me), 0);
    /* The same id with another start time: a reused id, so dead. A start
     * time of 0 means unknown: then only the id counts. */
    uint32_t other = (uint32_t)(me >> 32) + 1;
    if (other == 0)
        other = 1;
    uint64_t tid = me & CONC__MPQ_TID_MASK;
    assert_int_equal(conc__mpq_owner_dead((uint64_t)other << 32 | tid), 1);
    assert_int_equal(conc__mpq_owner_dead(tid), 0);
    /* A child that has ended, reaped or not. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    int status;
    siginfo_t info;
    assert_int_equal(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0);
    assert_int_equal(conc__mpq_owner_dead((uint64_t)pid), 1); /* zombie */
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(conc__mpq_owner_dead((uint64_t)pid), 1);
}

/* The rule on dead owners (sidelock.c, robust.c): an id alone decides
 * nothing. A word naming a live thread (this one) with another start time
 * names a dead owner whose id was reused: the lock is taken over. The same
 * id with the thread's own start time names a live owner: it is waited
 * for, however long, and never taken over. */
static void
test_side_lock_reused_id(void **state)
{
    (void)state;
    conc__mpq_lock l;
    uint64_t me = conc__mpq_self();
    uint32_t other = (uint32_t)(me >> 32) + 1;
    if (other == 0)
        other = 1;
    atomic_init(&l.word, (uint64_t)other << 32 | (me & CONC__MPQ_TID_MASK));
    assert_int_equal(conc__mpq_lock_acquire(&l, CONC__FOREVER),
                     CONC__MPQ_RECOVERED);
    conc__mpq_lock_release(&l);
    assert_int_equal(atomic_load(&l.word), 0);
    atomic_store(&l.word, me);
    int64_t t0 = conc__now_ns();
    assert_conc(conc__mpq_lock_acquire(&l, t0 + 3 * CONC__MPQ_SLICE_MIN),
                CONC_ETIMEDOUT);
    assert_true(conc__now_ns() - t0 >= 3 * CONC__MPQ_SLICE_MIN);
    assert_int_equal(atomic_load(&l.word) & ~CONC__MPQ_WAITERS, me);
}

struct thread_owner {
    uint64_t id;
    int ready[2]; /* the thread reports its identity */
    int go[2];    /* then waits to be told to end */
};

static void *
owner_thread(void *arg)
{
    struct thread_owner *t = arg;
    char c;
    t->id = conc__mpq_self();
    if (write(t->ready[1], "r", 1) != 1 || read(t->go[0], &c, 1) != 1)
        t->id = 0;
    return NULL;
}

/* A thread other than the main one is judged by its own id. */
static void
test_owner_identity_thread(void **state)
{
    (void)state;
    struct thread_owner t;
    assert_int_equal(pipe2(t.ready, O_CLOEXEC), 0);
    assert_int_equal(pipe2(t.go, O_CLOEXEC), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, owner_thread, &t), 0);
    char c;
    assert_int_equal(read(t.ready[0], &c, 1), 1);
    assert_true((t.id & CONC__MPQ_TID_MASK) != (uint64_t)getpid());
    assert_int_equal(conc__mpq_owner_dead(t.id), 0);
    assert_int_equal(write(t.go[1], "x", 1), 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_not_equal(t.id, 0);
    assert_int_equal(conc__mpq_owner_dead(t.id), 1);
    for (int i = 0; i < 2; i++) {
        close(t.ready[i]);
        close(t.go[i]);
    }
}

/* Threads of one process share a queue like processes do (and TSan sees
 * their synchronization). */
struct thread_side {
    conc_mpqueue *q;
    uint64_t first;
    _Atomic uint32_t *received;
    _Atomic int failures;
};

static void *
thread_producer(void *arg)
{
    struct thread_side *t = arg;
    for (uint64_t i = 0; i < 2000; i++)
        if (put_msg(t->q, t->first + i, len_mixed(i) + 8, BOUND) != 0)
            atomic_fetch_add(&t->failures, 1);
    return NULL;
}

static void *
thread_consumer(void *arg)
{
    struct thread_side *t = arg;
    conc_buf b = CONC_BUF_INIT;
    for (;;) {
        if (conc_mpqueue_get(t->q, BOUND, &b) != 0) {
            atomic_fetch_add(&t->failures, 1);
            break;
        }
        if (b.len == 0)
            break;
        uint64_t id;
        memcpy(&id, b.data, 8);
        if (id < 4000 && check(b.data, b.len, id))
            atomic_fetch_add(&t->received[id], 1);
        else
            atomic_fetch_add(&t->failures, 1);
    }
    conc_buf_free(&b);
    return NULL;
}

static void
test_threads(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    static _Atomic uint32_t received[4000];
    memset(received, 0, sizeof received);
    struct thread_side sides[4];
    pthread_t th[4];
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    for (int i = 0; i < 4; i++) {
        sides[i] =
            (struct thread_side){q, (uint64_t)(i % 2) * 2000, received, 0};
        assert_int_equal(
            pthread_create(&th[i], NULL,
                           i < 2 ? thread_producer : thread_consumer,
                           &sides[i]),
            0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 2; i < 4; i++)
        assert_conc_ok(conc_mpqueue_put(q, NULL, 0, BOUND));
    for (int i = 2; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(atomic_load(&sides[i].failures), 0);
    for (int id = 0; id < 4000; id++)
        assert_int_equal(atomic_load(&received[id]), 1);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static int
hold_lock_and_die(void *arg)
{
    conc__mpq_lock *l = arg;
    if (conc__mpq_lock_acquire(l, CONC__FOREVER) != 0)
        return 1;
    return 0; /* exits holding it */
}

static void
test_dead_lock_owner(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    conc_buf b = CONC_BUF_INIT;
    reap(fork_child(hold_lock_and_die, &q->s->plock));
    reap(fork_child(hold_lock_and_die, &q->s->clock));
    assert_true(atomic_load(&q->s->plock.word) != 0);
    assert_conc_ok(put_msg(q, 1, 8, BOUND));
    assert_conc_ok(get_msg(q, &b, 1, 8, BOUND));
    assert_int_equal(atomic_load(&q->s->plock.word), 0);
    assert_int_equal(atomic_load(&q->s->clock.word), 0);
    assert_conc_ok(put_msg(q, 2, 8, 0));
    assert_conc_ok(get_msg(q, &b, 2, 8, 0));
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

struct holder {
    conc_mpqueue *q;
    int ready[2]; /* the child says it holds both locks */
    int go[2];    /* the parent says it may release them */
};

static int
hold_locks(void *arg)
{
    struct holder *h = arg;
    char c;
    if (conc__mpq_lock_acquire(&h->q->s->plock, CONC__FOREVER) != 0 ||
        conc__mpq_lock_acquire(&h->q->s->clock, CONC__FOREVER) != 0 ||
        write(h->ready[1], "r", 1) != 1 || read(h->go[0], &c, 1) != 1)
        return 1;
    conc__mpq_lock_release(&h->q->s->clock);
    conc__mpq_lock_release(&h->q->s->plock);
    return 0;
}

/* A live process that holds a side's lock is waited for, never taken
 * over, and a wait for it runs out as put's or get's timeout. */
static void
test_lock_held_by_live_process(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    conc_buf b = CONC_BUF_INIT;
    struct holder h = {q, {-1, -1}, {-1, -1}};
    assert_int_equal(pipe2(h.ready, O_CLOEXEC), 0);
    assert_int_equal(pipe2(h.go, O_CLOEXEC), 0);
    pid_t pid = fork_child(hold_locks, &h);
    char c;
    assert_int_equal(read(h.ready[0], &c, 1), 1);
    double t0 = conc_monotonic();
    assert_conc(put_msg(q, 1, 8, 0.1), CONC_EFULL);
    assert_conc(conc_mpqueue_get(q, 0.1, &b), CONC_EEMPTY);
    assert_true(conc_monotonic() - t0 >= 0.2);
    assert_conc(put_msg(q, 1, 8, 0), CONC_EFULL);
    assert_conc(conc_mpqueue_get_nowait(q, &b), CONC_EEMPTY);
    assert_int_equal(write(h.go[1], "g", 1), 1);
    reap(pid);
    assert_conc_ok(put_msg(q, 1, 8, 0));
    assert_conc_ok(get_msg(q, &b, 1, 8, 0));
    for (int i = 0; i < 2; i++) {
        close(h.ready[i]);
        close(h.go[i]);
    }
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

/* A producer killed in the middle of a message in pieces: the pieces are
 * discarded, and the queue works for the others. */
static void
test_producer_dies_mid_message(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    conc_buf b = CONC_BUF_INIT;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(put_msg(q, 1, 3 * SMALL, BOUND) != 0);
    struct pos_wait w = {q, SMALL};
    assert_true(conc_test_wait_until(tail_reached, &w, BOUND));
    kill_and_reap(pid);
    double t0 = conc_monotonic();
    assert_conc(conc_mpqueue_get(q, 0.05, &b), CONC_EEMPTY);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_int_equal(b.len, 0);
    assert_int_equal(conc_mpqueue_qsize(q), 0);
    assert_conc_ok(put_msg(q, 2, 100, BOUND));
    assert_conc_ok(get_msg(q, &b, 2, 100, 0));
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

static int
produce_two(void *arg)
{
    conc_mpqueue *q = arg;
    if (put_msg(q, 1, 3 * SMALL, BOUND) != 0)
        return 1;
    return put_msg(q, 2, 50, BOUND) != 0;
}

static int
consume_one(void *arg)
{
    conc_mpqueue *q = arg;
    conc_buf b = CONC_BUF_INIT;
    conc_mpqueue_get(q, BOUND, &b);
    return 1; /* should have been killed first */
}

/* A consumer killed while it assembles a message in pieces: that message
 * is lost (the one loss a crash may cause), the rest of its pieces are
 * skipped, and the next message arrives intact. */
static void
test_consumer_dies_mid_message(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    conc_mpqueue *q = new_queue(a, SMALL, 0);
    conc_buf b = CONC_BUF_INIT;
    pid_t prod = fork_child(produce_two, q);
    struct pos_wait w = {q, SMALL};
    assert_true(conc_test_wait_until(tail_reached, &w, BOUND));
    kill(prod, SIGSTOP); /* the ring is full: it waits for room */
    pid_t cons = fork_child(consume_one, q);
    /* Once the consumer has taken every piece in the ring, it waits for
     * the next one, which cannot come while the producer is stopped. */
    assert_true(conc_test_wait_until(ring_drained, &w, BOUND));
    kill_and_reap(cons);
    kill(prod, SIGCONT);
    assert_conc_ok(get_msg(q, &b, 2, 50, BOUND));
    reap(prod);
    assert_int_equal(conc_mpqueue_qsize(q), 0);
    conc_buf_free(&b);
    conc_mpqueue_free(q);
    conc_arena_free(a);
}

/* ---- Killed at random points -------------------------------------------
 * Each round forks producers and consumers on a small ring (so that they
 * wrap, fill it and send some messages in pieces), SIGKILLs up to two of
 * them after random busy-loop delays, lets a fresh consumer and the
 * survivors drain the queue, and checks the record kept in shared memory:
 *   - no message is received twice;
 *   - every message whose put returned (acked) is received, except the one
 *     a killed consumer had taken: its get_into writes straight into that
 *     consumer's slot, so the slot names it;
 *   - a message received but not acked is the one a killed producer was
 *     putting;
 *   - every message received is intact.
 * Messages come in three sizes: small, large enough to be streamed whole,
 * and larger than the ring (in pieces).
 * Consumers record a message only after get returns and producers ack only
 * after put returns, so the record sees what a program would. */
#define CR_ROUNDS     200
#define CR_MIN_ROUNDS 40
#define CR_SECONDS    15.0 /* stop after this long, once CR_MIN_ROUNDS ran */
#define CR_PROD       2
#define CR_CONS       2
#define CR_MSGS       200
#define CR_N          (CR_PROD * CR_MSGS)
#define CR_CAP        4096
#define CR_SLOT       (3 * CR_CAP)

struct crash {
    _Atomic uint8_t acked[CR_N];
    _Atomic uint32_t received[CR_N];
    _Atomic int64_t attempt[CR_PROD]; /* the id being put, -1 for none */
    _Atomic uint32_t bad;
    uint8_t slot[CR_CONS + 1][CR_SLOT]; /* each consumer's get_into buffer */
};

struct crash_arg {
    conc_mpqueue *q;
    struct crash *c;
    int index;
};

static size_t
len_crash(uint64_t id)
{
    if (id % 23 == 0)
        return 2 * CR_CAP + id % 50; /* in pieces */
    if (id % 5 == 0)
        return CR_CAP / 4 + id % 2000; /* streamed whole */
    return (size_t)(8 + id * 37 % 700);
}

static int
crash_producer(void *arg)
{
    struct crash_arg *x = arg;
    for (int i = 0; i < CR_MSGS; i++) {
        uint64_t id = (uint64_t)x->index * CR_MSGS + (uint64_t)i;
        atomic_store(&x->c->attempt[x->index], (int64_t)id);
        int r = put_msg(x->q, id, len_crash(id), BOUND);
        if (r != 0) {
            fprintf(stderr, "producer %d: put %llu: %s\n", x->index,
                    (unsigned long long)id, conc_err_name(r));
            return 1;
        }
        atomic_store(&x->c->acked[id], 1);
    }
    atomic_store(&x->c->attempt[x->index], -1);
    return 0;
}

static int
crash_consumer(void *arg)
{
    struct crash_arg *x = arg;
    uint8_t *slot = x->c->slot[x->index];
    for (;;) {
        size_t len;
        int r = conc_mpqueue_get_into(x->q, slot, CR_SLOT, BOUND, &len);
        if (r != 0) {
            fprintf(stderr, "consumer %d: get: %s\n", x->index,
                    conc_err_name(r));
            return 1;
        }
        if (len == 0)
            return 0; /* the stop message */
        uint64_t id;
        memcpy(&id, slot, 8);
        if (id >= CR_N || len != len_crash(id) || !check(slot, len, id)) {
            atomic_fetch_add(&x->c->bad, 1);
            continue;
        }
        atomic_fetch_add(&x->c->received[id], 1);
    }
}

struct crash_stats {
    int killed, lost, unacked;
};

static void
busy_loop(unsigned long n)
{
    for (volatile unsigned long i = 0; i < n; i++)
        ;
}

/* The checks listed above, for one round. */
static void
crash_verify(struct crash *c, const int *killed, struct crash_stats *st)
{
    assert_int_equal(atomic_load(&c->bad), 0);
    for (uint64_t id = 0; id < CR_N; id++) {
        uint32_t r = atomic_load(&c->received[id]);
        assert_true(r <= 1);
        if (atomic_load(&c->acked[id]) && r == 0) {
            int excused = 0;
            for (int k = 0; k < CR_CONS; k++) {
                uint64_t held;
                memcpy(&held, c->slot[k], 8);
                excused |= killed[CR_PROD + k] && held == id;
            }
            assert_true(excused);
            st->lost++;
        }
        if (!atomic_load(&c->acked[id]) && r == 1) {
            uint64_t p = id / CR_MSGS;
            assert_true(killed[p]);
            assert_int_equal(atomic_load(&c->attempt[p]), (int64_t)id);
            st->unacked++;
        }
    }
}

/* The processes of one round: producers, then consumers, then the drain
 * consumer forked after the kills. */
struct crash_round {
    conc_mpqueue *q;
    struct crash_arg args[CR_PROD + CR_CONS + 1];
    pid_t pid[CR_PROD + CR_CONS];
    int killed[CR_PROD + CR_CONS];
};

static void
crash_start(struct crash_round *r, conc_mpqueue *q, struct crash *c)
{
    memset(c, 0, sizeof *c);
    memset(r, 0, sizeof *r);
    r->q = q;
    for (int i = 0; i < CR_PROD + CR_CONS + 1; i++)
        r->args[i] = (struct crash_arg){q, c, i < CR_PROD ? i : i - CR_PROD};
    for (int i = 0; i < CR_PROD; i++)
        atomic_store(&c->attempt[i], -1);
    for (int i = 0; i < CR_PROD + CR_CONS; i++)
        r->pid[i] = fork_child(i < CR_PROD ? crash_producer : crash_consumer,
                               &r->args[i]);
}

/* Lets the survivors and a fresh consumer finish the work, then stops the
 * consumers with one empty message each. */
static void
crash_finish(struct crash_round *r)
{
    pid_t drain = fork_child(crash_consumer, &r->args[CR_PROD + CR_CONS]);
    int consumers = 1;
    for (int i = 0; i < CR_PROD + CR_CONS; i++) {
        if (r->killed[i])
            continue;
        if (i < CR_PROD)
            reap(r->pid[i]);
        else
            consumers++;
    }
    for (int i = 0; i < consumers; i++)
        assert_conc_ok(conc_mpqueue_put(r->q, NULL, 0, BOUND));
    for (int i = CR_PROD; i < CR_PROD + CR_CONS; i++)
        if (!r->killed[i])
            reap(r->pid[i]);
    reap(drain);
}

static void
crash_round(conc_arena *a, struct crash *c, unsigned seed,
            struct crash_stats *st)
{
    struct crash_round r;
    crash_start(&r, new_queue(a, CR_CAP, 0), c);
    int victims = (int)(rand_r(&seed) % 3);
    for (int v = 0; v < victims; v++) {
        busy_loop(rand_r(&seed) % 1000000);
        int i = (int)(rand_r(&seed) % (CR_PROD + CR_CONS));
        if (!r.killed[i]) {
            kill_and_reap(r.pid[i]);
            r.killed[i] = 1;
            st->killed++;
        }
    }
    crash_finish(&r);
    crash_verify(c, r.killed, st);
    /* The queue still works. */
    conc_buf b = CONC_BUF_INIT;
    assert_int_equal(conc_mpqueue_qsize(r.q), 0);
    assert_conc_ok(put_msg(r.q, 7, 3 * CR_CAP / 4, 0));
    assert_conc_ok(get_msg(r.q, &b, 7, 3 * CR_CAP / 4, 0));
    assert_conc(conc_mpqueue_get(r.q, 0, &b), CONC_EEMPTY);
    conc_buf_free(&b);
    conc_mpqueue_free(r.q);
}

static void
test_killed_at_random(void **state)
{
    (void)state;
    conc_arena *a = new_arena(1 << 20);
    struct crash *c;
    assert_conc_ok(conc_arena_alloc(a, sizeof *c, (void **)&c));
    struct crash_stats st = {0, 0, 0};
    double t0 = conc_monotonic();
    unsigned round = 0;
    while (round < CR_ROUNDS &&
           (round < CR_MIN_ROUNDS || conc_monotonic() - t0 < CR_SECONDS))
        crash_round(a, c, 0x5eed0000u + round++, &st);
    print_message("%u rounds: killed %d processes; %d messages taken by "
                  "killed consumers, %d delivered but not acked\n",
                  round, st.killed, st.lost, st.unacked);
    conc_arena_dealloc(a, c);
    conc_arena_free(a);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_fifo_one_process),
        conc_unit_test(test_small_sizes),
        conc_unit_test(test_invalid_new),
        conc_unit_test(test_invalid_calls),
        conc_unit_test(test_simplequeue),
        conc_unit_test(test_maxsize),
        conc_unit_test(test_ring_bytes_full),
        conc_unit_test(test_get_timeout),
        conc_unit_test(test_get_into),
        conc_unit_test(test_close),
        conc_unit_test(test_close_per_process),
        conc_unit_test(test_shutdown),
        conc_unit_test(test_lost_wake),
        conc_unit_test(test_enomem),
        conc_unit_test(test_fifo_two_processes),
        conc_unit_test(test_large_messages),
        conc_unit_test(test_large_get_into),
        conc_unit_test(test_large_put_timeout),
        conc_unit_test(test_corrupt_ring),
        conc_unit_test(test_handoff_to_process),
        conc_unit_test(test_handoff_to_pool_initializer),
        conc_unit_test(test_mpmc),
        conc_unit_test(test_joinable_basic),
        conc_unit_test(test_joinable_processes),
        conc_unit_test(test_owner_identity),
        conc_unit_test(test_owner_identity_thread),
        conc_unit_test(test_side_lock_reused_id),
        conc_unit_test(test_threads),
        conc_unit_test(test_dead_lock_owner),
        conc_unit_test(test_lock_held_by_live_process),
        conc_unit_test(test_producer_dies_mid_message),
        conc_unit_test(test_consumer_dies_mid_message),
        conc_unit_test(test_killed_at_random),
    };
    return conc_run_tests(tests);
}
