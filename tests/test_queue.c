/* Layer 2: in-process queues. conc_queue (FIFO, LIFO, PRIORITY; maxsize,
 * timeouts, task tracking, shutdown) and conc_simplequeue.
 *
 * Tests that need a thread blocked before they act wait for the queue's
 * waiter counts (conc__queue_waiters) instead of sleeping. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "conc_test.h"
#include "queue/queue_internal.h"

#define P(n) ((void *)(uintptr_t)(n))

static conc_queue *
new_queue(conc_queue_kind kind, size_t maxsize, conc_queue_drop_fn drop)
{
    conc_queue_opts o = {.kind = kind, .maxsize = maxsize, .drop = drop};
    conc_queue *q = NULL;
    assert_conc_ok(conc_queue_new(&o, &q));
    assert_non_null(q);
    return q;
}

/* ---- Drop counting ------------------------------------------------------- */

static atomic_long dropped_count;
static atomic_uintptr_t dropped_sum;

static void
count_drop(void *item)
{
    atomic_fetch_add(&dropped_count, 1);
    atomic_fetch_add(&dropped_sum, (uintptr_t)item);
}

static void
reset_drops(void)
{
    atomic_store(&dropped_count, 0);
    atomic_store(&dropped_sum, 0);
}

/* ---- Threads blocked in a call ------------------------------------------- */

enum op { OP_GET, OP_PUT, OP_JOIN, OP_SQ_GET };

struct call {
    pthread_t thread;
    enum op op;
    conc_queue *q;
    conc_simplequeue *sq;
    void *item;
    double timeout;
    int result;
};

static void *
call_main(void *arg)
{
    struct call *c = arg;
    switch (c->op) {
    case OP_GET:
        c->result = conc_queue_get(c->q, c->timeout, &c->item);
        break;
    case OP_PUT:
        c->result = conc_queue_put(c->q, c->item, c->timeout);
        break;
    case OP_JOIN:
        c->result = conc_queue_join(c->q, c->timeout);
        break;
    case OP_SQ_GET:
        c->result = conc_simplequeue_get(c->sq, c->timeout, &c->item);
        break;
    }
    return NULL;
}

/* Runs one call in a new thread; `timeout` applies to get, put and join. */
static void
call_start_timeout(struct call *c, enum op op, conc_queue *q, void *item,
                   double timeout)
{
    c->op = op;
    c->q = q;
    c->item = item;
    c->timeout = timeout;
    c->result = 1;
    assert_int_equal(pthread_create(&c->thread, NULL, call_main, c), 0);
}

static void
call_start(struct call *c, enum op op, conc_queue *q, void *item)
{
    call_start_timeout(c, op, q, item, CONC_FOREVER);
}

static void
call_finish(struct call *c)
{
    assert_int_equal(pthread_join(c->thread, NULL), 0);
}

struct waiters_want {
    conc_queue *q;
    unsigned getters, putters, joiners;
};

static int
waiters_reached(void *arg)
{
    struct waiters_want *w = arg;
    unsigned g, p, j;
    conc__queue_waiters(w->q, &g, &p, &j);
    return g >= w->getters && p >= w->putters && j >= w->joiners;
}

/* Waits until at least the given numbers of threads sleep in q's calls. */
static void
wait_blocked(conc_queue *q, unsigned getters, unsigned putters,
             unsigned joiners)
{
    struct waiters_want w = {q, getters, putters, joiners};
    assert_true(conc_test_wait_until(waiters_reached, &w, 10.0));
}

/* ---- Creation ------------------------------------------------------------ */

static void
test_new_defaults_and_errors(void **state)
{
    (void)state;
    conc_queue *q = NULL;
    assert_conc_ok(conc_queue_new(NULL, &q));
    assert_int_equal(conc_queue_maxsize(q), 0);
    assert_true(conc_queue_empty(q));
    assert_false(conc_queue_full(q));
    assert_int_equal(conc_queue_qsize(q), 0);
    conc_queue_free(q);
    conc_queue_free(NULL);
    conc_simplequeue_free(NULL);

    conc_queue_opts bad = {.kind = (conc_queue_kind)7};
    assert_conc(conc_queue_new(&bad, &q), CONC_EINVAL);
    bad.kind = (conc_queue_kind)-1;
    assert_conc(conc_queue_new(&bad, &q), CONC_EINVAL);
    assert_conc(conc_queue_new(NULL, NULL), CONC_EINVAL);
    assert_conc(conc_simplequeue_new(NULL, NULL), CONC_EINVAL);
}

static void
test_new_enomem(void **state)
{
    (void)state;
    conc_queue *q = NULL;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_queue_new(NULL, &q), CONC_ENOMEM);
    conc_simplequeue *sq = NULL;
    conc_test_fail_alloc_after(1);
    assert_conc(conc_simplequeue_new(NULL, &sq), CONC_ENOMEM);
    conc_test_fail_alloc_after(2); /* the queue, then its first segment */
    assert_conc(conc_simplequeue_new(NULL, &sq), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    assert_conc_ok(conc_simplequeue_new(NULL, &sq));
    conc_simplequeue_free(sq);
}

/* ---- Order --------------------------------------------------------------- */

static void
test_fifo_order(void **state)
{
    (void)state;
    conc_queue *q = new_queue(CONC_QUEUE_FIFO, 0, NULL);
    void *item;
    assert_conc_ok(conc_queue_put(q, NULL, 0));
    for (uintptr_t i = 1; i <= 100; i++)
        assert_conc_ok(conc_queue_put(q, P(i), CONC_FOREVER));
    assert_int_equal(conc_queue_qsize(q), 101);
    assert_conc_ok(conc_queue_get(q, 0, &item));
    assert_null(item);
    for (uintptr_t i = 1; i <= 50; i++) {
        assert_conc_ok(conc_queue_get_nowait(q, &item));
        assert_ptr_equal(item, P(i));
    }
    /* Items put after a get are still behind every older one. */
    assert_conc_ok(conc_queue_put_nowait(q, P(1000)));
    assert_conc_ok(conc_queue_put_nowait(q, NULL));
    assert_int_equal(conc_queue_qsize(q), 52);
    for (uintptr_t i = 51; i <= 100; i++) {
        assert_conc_ok(conc_queue_get(q, CONC_FOREVER, &item));
        assert_ptr_equal(item, P(i));
    }
    assert_conc_ok(conc_queue_get(q, 0, &item));
    assert_ptr_equal(item, P(1000));
    item = P(1);
    assert_conc_ok(conc_queue_get(q, 0, &item));
    assert_null(item);
    assert_conc(conc_queue_get(q, 0, &item), CONC_EEMPTY);
    assert_true(conc_queue_empty(q));
    conc_queue_free(q);
}

static void
test_lifo_order(void **state)
{
    (void)state;
    conc_queue *q = new_queue(CONC_QUEUE_LIFO, 0, NULL);
    void *item;
    for (uintptr_t i = 1; i <= 40; i++)
        assert_conc_ok(conc_queue_put(q, P(i), 0));
    assert_conc_ok(conc_queue_put(q, NULL, 0));
    assert_conc_ok(conc_queue_get(q, 0, &item));
    assert_null(item);
    for (uintptr_t i = 40; i > 20; i--) {
        assert_conc_ok(conc_queue_get(q, 0, &item));
        assert_ptr_equal(item, P(i));
    }
    assert_conc_ok(conc_queue_put(q, P(99), 0));
    assert_conc_ok(conc_queue_get(q, 0, &item));
    assert_ptr_equal(item, P(99));
    for (uintptr_t i = 20; i >= 1; i--) {
        assert_conc_ok(conc_queue_get(q, 0, &item));
        assert_ptr_equal(item, P(i));
    }
    assert_conc(conc_queue_get_nowait(q, &item), CONC_EEMPTY);
    conc_queue_free(q);
}

static void
test_priority_order(void **state)
{
    (void)state;
    conc_queue *q = new_queue(CONC_QUEUE_PRIORITY, 0, NULL);
    static const int64_t prio[] = {5, -3, 0, 5, INT64_MIN, 7, -3, 0, 5, 0};
    /* Expected: by priority; equal priorities in the order they came. */
    static const uintptr_t want[] = {5, 2, 7, 3, 8, 10, 11, 1, 4, 9, 6};
    for (uintptr_t i = 0; i < 10; i++)
        assert_conc_ok(conc_queue_put_priority(q, P(i + 1), prio[i], 0));
    assert_conc_ok(conc_queue_put(q, P(11), 0)); /* priority 0, last */
    assert_int_equal(conc_queue_qsize(q), 11);
    for (size_t i = 0; i < 11; i++) {
        void *item;
        assert_conc_ok(conc_queue_get(q, 0, &item));
        assert_ptr_equal(item, P(want[i]));
    }
    assert_true(conc_queue_empty(q));
    conc_queue_free(q);
}

static void
test_priority_many_ties_and_null(void **state)
{
    (void)state;
    conc_queue *q = new_queue(CONC_QUEUE_PRIORITY, 0, NULL);
    /* 300 items over 3 priorities: the heap grows and reorders, yet each
     * priority's items leave in the order they came. */
    for (uintptr_t i = 0; i < 300; i++)
        assert_conc_ok(conc_queue_put_priority(
            q, i == 150 ? NULL : P(i), (int64_t)(i % 3) - 1, CONC_FOREVER));
    for (int64_t p = -1; p <= 1; p++) {
        for (uintptr_t i = (uintptr_t)(p + 1); i < 300; i += 3) {
            void *item = P(12345);
            assert_conc_ok(conc_queue_get(q, 0, &item));
            assert_ptr_equal(item, i == 150 ? NULL : P(i));
        }
    }
    assert_true(conc_queue_empty(q));
    conc_queue_free(q);
}

static void
test_put_priority_wrong_kind(void **state)
{
    (void)state;
    conc_queue *f = new_queue(CONC_QUEUE_FIFO, 0, NULL);
    conc_queue *l = new_queue(CONC_QUEUE_LIFO, 0, NULL);
    assert_conc(conc_queue_put_priority(f, P(1), 1, 0), CONC_EINVAL);
    assert_conc(conc_queue_put_priority(l, P(1), 1, 0), CONC_EINVAL);
    assert_int_equal(conc_queue_qsize(f), 0);
    assert_int_equal(conc_queue_qsize(l), 0);
    conc_queue_free(f);
    conc_queue_free(l);
}

/* ---- Bounds and timeouts ------------------------------------------------- */

static void
test_nowait_full_and_empty(void **state)
{
    (void)state;
    for (int k = CONC_QUEUE_FIFO; k <= CONC_QUEUE_PRIORITY; k++) {
        conc_queue *q = new_queue((conc_queue_kind)k, 2, NULL);
        void *item;
        assert_int_equal(conc_queue_maxsize(q), 2);
        assert_conc(conc_queue_get_nowait(q, &item), CONC_EEMPTY);
        assert_conc(conc_queue_get(q, 0, &item), CONC_EEMPTY);
        assert_conc_ok(conc_queue_put_nowait(q, P(1)));
        assert_false(conc_queue_full(q));
        assert_conc_ok(conc_queue_put(q, P(2), 0));
        assert_true(conc_queue_full(q));
        assert_conc(conc_queue_put_nowait(q, P(3)), CONC_EFULL);
        assert_conc(conc_queue_put(q, P(3), 0), CONC_EFULL);
        assert_int_equal(conc_queue_qsize(q), 2);
        assert_conc_ok(conc_queue_get_nowait(q, &item));
        assert_false(conc_queue_full(q));
        assert_conc_ok(conc_queue_put_nowait(q, P(3)));
        assert_conc(conc_queue_put_nowait(q, P(4)), CONC_EFULL);
        conc_queue_free(q);
    }
}

static void
test_timeouts(void **state)
{
    (void)state;
    conc_queue *q = new_queue(CONC_QUEUE_FIFO, 1, NULL);
    void *item;
    double t0 = conc_monotonic();
    assert_conc(conc_queue_get(q, 0.05, &item), CONC_EEMPTY);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_conc_ok(conc_queue_put(q, P(1), 0.05));
    t0 = conc_monotonic();
    assert_conc(conc_queue_put(q, P(2), 0.05), CONC_EFULL);
    assert_true(conc_monotonic() - t0 >= 0.05);
    assert_int_equal(conc_queue_qsize(q), 1);
    conc_queue_free(q);

    conc_simplequeue *sq;
    assert_conc_ok(conc_simplequeue_new(NULL, &sq));
    t0 = conc_monotonic();
    assert_conc(conc_simplequeue_get(sq, 0.05, &item), CONC_EEMPTY);
    assert_true(conc_monotonic() - t0 >= 0.05);
    conc_simplequeue_free(sq);
}

static void
test_nan_and_null(void **state)
{
    (void)state;
    conc_queue *q = new_queue(CONC_QUEUE_PRIORITY, 0, NULL);
    void *item;
    assert_conc(conc_queue_put(q, P(1), NAN), CONC_EINVAL);
    assert_conc(conc_queue_put_priority(q, P(1), 0, NAN), CONC_EINVAL);
    assert_int_equal(conc_queue_qsize(q), 0);
    assert_conc_ok(conc_queue_put(q, P(1), 0));
    assert_conc(conc_queue_get(q, NAN, &item), CONC_EINVAL);
    assert_conc(conc_queue_get(q, 0, NULL), CONC_EINVAL);
    assert_conc(conc_queue_get_nowait(q, NULL), CONC_EINVAL);
    assert_conc(conc_queue_join(q, NAN), CONC_EINVAL);
    assert_int_equal(conc_queue_qsize(q), 1);
    conc_queue_free(q);

    conc_simplequeue *sq;
    assert_conc_ok(conc_simplequeue_new(NULL, &sq));
    assert_conc_ok(conc_simplequeue_put(sq, P(1)));
    assert_conc(conc_simplequeue_get(sq, NAN, &item), CONC_EINVAL);
    assert_conc(conc_simplequeue_get(sq, 0, NULL), CONC_EINVAL);
    assert_conc(conc_simplequeue_get_nowait(sq, NULL), CONC_EINVAL);
    assert_int_equal(conc_simplequeue_qsize(sq), 1);
    conc_simplequeue_free(sq);
}

static void
test_blocked_put_released_by_get(void **state)
{
    (void)state;
    for (int k = CONC_QUEUE_FIFO; k <= CONC_QUEUE_PRIORITY; k++) {
        conc_queue *q = new_queue((conc_queue_kind)k, 1, NULL);
        struct call c;
        void *item;
        assert_conc_ok(conc_queue_put(q, P(1), 0));
        call_start(&c, OP_PUT, q, P(2));
        wait_blocked(q, 0, 1, 0);
        assert_int_equal(conc_queue_qsize(q), 1); /* the put still waits */
        assert_conc_ok(conc_queue_get(q, 0, &item));
        assert_ptr_equal(item, P(1));
        call_finish(&c);
        assert_conc_ok(c.result);
        assert_conc_ok(conc_queue_get(q, 0, &item));
        assert_ptr_equal(item, P(2));
        conc_queue_free(q);
    }
}

/* A bounded queue larger than the run of free slots that a spinning
 * putter waits for (queue.c: up to 64, an eighth of maxsize). */
#define LARGE_MAXSIZE 1024

static conc_queue *
new_full_queue(conc_queue_kind kind)
{
    conc_queue *q = new_queue(kind, LARGE_MAXSIZE, NULL);
    for (uintptr_t i = 1; i <= LARGE_MAXSIZE; i++)
        assert_conc_ok(conc_queue_put_nowait(q, P(i)));
    assert_true(conc_queue_full(q));
    return q;
}

/* A put into a full large queue of kind k (in a thread) is released by
 * one get and fills the queue again; with `blocked`, the get comes once
 * the put waits, else right after it started. */
static void
put_released_by_one_get(conc_queue_kind k, int blocked)
{
    conc_queue *q = new_full_queue(k);
    struct call c;
    void *item;
    call_start_timeout(&c, OP_PUT, q, P(LARGE_MAXSIZE + 1), 30.0);
    if (blocked)
        wait_blocked(q, 0, 1, 0);
    assert_conc_ok(conc_queue_get(q, 0, &item));
    call_finish(&c);
    assert_conc_ok(c.result);
    assert_true(conc_queue_full(q));
    conc_queue_free(q);
}

/* One freed slot releases a sleeping putter of a large queue: it does not
 * wait for a run of them. */
static void
test_large_blocked_put_released_by_one_get(void **state)
{
    (void)state;
    for (int k = CONC_QUEUE_FIFO; k <= CONC_QUEUE_PRIORITY; k++)
        put_released_by_one_get((conc_queue_kind)k, 1);
}

/* Puts that may block take the last free slots of a large queue too, with
 * no getter to free more; a put that must not wait takes any slot. */
static void
test_large_put_takes_last_slots(void **state)
{
    (void)state;
    for (int k = CONC_QUEUE_FIFO; k <= CONC_QUEUE_PRIORITY; k++) {
        conc_queue *q = new_queue((conc_queue_kind)k, LARGE_MAXSIZE, NULL);
        for (uintptr_t i = 1; i <= LARGE_MAXSIZE - 4; i++)
            assert_conc_ok(conc_queue_put_nowait(q, P(i)));
        assert_conc_ok(conc_queue_put(q, P(1), CONC_FOREVER));
        assert_conc_ok(conc_queue_put(q, P(2), 30.0));
        assert_conc_ok(conc_queue_put(q, P(3), -0.5)); /* behaves as 0 */
        assert_conc_ok(conc_queue_put(q, P(4), 0));
        assert_true(conc_queue_full(q));
        assert_conc(conc_queue_put_nowait(q, P(5)), CONC_EFULL);
        assert_conc(conc_queue_put(q, P(5), 0.001), CONC_EFULL);
        assert_int_equal(conc_queue_qsize(q), LARGE_MAXSIZE);
        conc_queue_free(q);
    }
}

#define SPIN_ROUNDS 50

/* Nor does a putter that is still spinning when the one slot frees: the
 * get comes right after the put started, so that in some rounds the put
 * finds the queue full and spins while the slot frees. */
static void
test_large_put_takes_one_slot(void **state)
{
    (void)state;
    for (int k = CONC_QUEUE_FIFO; k <= CONC_QUEUE_PRIORITY; k++)
        for (int round = 0; round < SPIN_ROUNDS; round++)
            put_released_by_one_get((conc_queue_kind)k, 0);
}

static void
test_blocked_get_released_by_put(void **state)
{
    (void)state;
    for (int k = CONC_QUEUE_FIFO; k <= CONC_QUEUE_PRIORITY; k++) {
        conc_queue *q = new_queue((conc_queue_kind)k, 0, NULL);
        struct call c;
        call_start(&c, OP_GET, q, NULL);
        wait_blocked(q, 1, 0, 0);
        assert_conc_ok(conc_queue_put(q, P(7), 0));
        call_finish(&c);
        assert_conc_ok(c.result);
        assert_ptr_equal(c.item, P(7));
        assert_true(conc_queue_empty(q));
        conc_queue_free(q);
    }
}

/* Waits with a timeout that an item or a slot arrives within. */
static void
test_timed_waits_satisfied(void **state)
{
    (void)state;
    conc_queue *q = new_queue(CONC_QUEUE_FIFO, 1, NULL);
    struct call c;
    call_start_timeout(&c, OP_GET, q, NULL, 30.0);
    wait_blocked(q, 1, 0, 0);
    assert_conc_ok(conc_queue_put(q, P(3), 0));
    call_finish(&c);
    assert_conc_ok(c.result);
    assert_ptr_equal(c.item, P(3));

    void *item;
    assert_conc_ok(conc_queue_put(q, P(4), 0));
    call_start_timeout(&c, OP_PUT, q, P(5), 30.0);
    wait_blocked(q, 0, 1, 0);
    assert_conc_ok(conc_queue_get(q, 0, &item));
    call_finish(&c);
    assert_conc_ok(c.result);
    assert_conc_ok(conc_queue_get(q, 0, &item));
    assert_ptr_equal(item, P(5));
    conc_queue_free(q);
}

/* ---- Tasks --------------------------------------------------------------- */

static void
test_task_done_and_join(void **state)
{
    (void)state;
    conc_queue *q = new_queue(CONC_QUEUE_FIFO, 0, NULL);
    void *item;
    assert_conc_ok(conc_queue_join(q, 0)); /* nothing was ever put */
    assert_conc(conc_queue_task_done(q), CONC_EVALUE);
    assert_conc_ok(conc_queue_put(q, P(1), 0));
    assert_conc_ok(conc_queue_put(q, P(2), 0));
    assert_conc(conc_queue_join(q, 0), CONC_ETIMEDOUT);
    double t0 = conc_monotonic();
    assert_conc(conc_queue_join(q, 0.05), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.05);

    assert_conc_ok(conc_queue_get(q, 0, &item));
    assert_conc_ok(conc_queue_task_done(q));
    assert_conc(conc_queue_join(q, 0), CONC_ETIMEDOUT);
    assert_conc_ok(conc_queue_get(q, 0, &item));

    struct call c;
    call_start(&c, OP_JOIN, q, NULL);
    wait_blocked(q, 0, 0, 1);
    assert_conc_ok(conc_queue_task_done(q));
    call_finish(&c);
    assert_conc_ok(c.result);
    assert_conc_ok(conc_queue_join(q, 0));
    assert_conc(conc_queue_task_done(q), CONC_EVALUE);
    assert_conc_ok(conc_queue_join(q, CONC_FOREVER));
    conc_queue_free(q);
}

/* Python counts task_done against puts, not gets. */
static void
test_task_done_before_get(void **state)
{
    (void)state;
    conc_queue *q = new_queue(CONC_QUEUE_LIFO, 0, NULL);
    assert_conc_ok(conc_queue_put(q, P(1), 0));
    assert_conc_ok(conc_queue_task_done(q));
    assert_conc(conc_queue_task_done(q), CONC_EVALUE);
    assert_conc_ok(conc_queue_join(q, 0));
    assert_int_equal(conc_queue_qsize(q), 1);
    conc_queue_free(q);
}

static void
test_many_joiners(void **state)
{
    (void)state;
    conc_queue *q = new_queue(CONC_QUEUE_PRIORITY, 0, NULL);
    struct call c[3];
    void *item;
    assert_conc_ok(conc_queue_put(q, P(1), 0));
    for (int i = 0; i < 3; i++)
        call_start(&c[i], OP_JOIN, q, NULL);
    wait_blocked(q, 0, 0, 3);
    assert_conc_ok(conc_queue_get(q, 0, &item));
    assert_conc_ok(conc_queue_task_done(q));
    for (int i = 0; i < 3; i++) {
        call_finish(&c[i]);
        assert_conc_ok(c[i].result);
    }
    conc_queue_free(q);
}

/* ---- Shutdown ------------------------------------------------------------ */

static void
test_shutdown_normal(void **state)
{
    (void)state;
    for (int k = CONC_QUEUE_FIFO; k <= CONC_QUEUE_PRIORITY; k++) {
        reset_drops();
        conc_queue *q = new_queue((conc_queue_kind)k, 0, count_drop);
        void *item;
        assert_conc_ok(conc_queue_put(q, P(1), 0));
        assert_conc_ok(conc_queue_put(q, P(2), 0));
        assert_conc_ok(conc_queue_shutdown(q, 0));
        assert_conc(conc_queue_put(q, P(3), 0), CONC_ECLOSED);
        assert_conc(conc_queue_put(q, P(3), CONC_FOREVER), CONC_ECLOSED);
        assert_int_equal(conc_queue_qsize(q), 2);
        /* Items already queued are still delivered. */
        assert_conc_ok(conc_queue_get(q, CONC_FOREVER, &item));
        assert_conc_ok(conc_queue_get(q, CONC_FOREVER, &item));
        assert_conc(conc_queue_get(q, CONC_FOREVER, &item), CONC_ECLOSED);
        assert_conc(conc_queue_get_nowait(q, &item), CONC_ECLOSED);
        assert_conc(conc_queue_join(q, 0), CONC_ETIMEDOUT);
        assert_conc_ok(conc_queue_task_done(q));
        assert_conc_ok(conc_queue_task_done(q));
        assert_conc_ok(conc_queue_join(q, 0));
        assert_int_equal(atomic_load(&dropped_count), 0);
        conc_queue_free(q);
    }
}

static void
test_shutdown_wakes_blocked_getters(void **state)
{
    (void)state;
    for (int immediate = 0; immediate <= 1; immediate++) {
        conc_queue *q = new_queue(CONC_QUEUE_FIFO, 0, NULL);
        struct call c[2];
        for (int i = 0; i < 2; i++)
            call_start(&c[i], OP_GET, q, NULL);
        wait_blocked(q, 2, 0, 0);
        assert_conc_ok(conc_queue_shutdown(q, immediate));
        for (int i = 0; i < 2; i++) {
            call_finish(&c[i]);
            assert_conc(c[i].result, CONC_ECLOSED);
        }
        conc_queue_free(q);
    }
}

static void
test_shutdown_wakes_blocked_putters(void **state)
{
    (void)state;
    for (int immediate = 0; immediate <= 1; immediate++) {
        conc_queue *q = new_queue(CONC_QUEUE_LIFO, 1, NULL);
        struct call c[2];
        assert_conc_ok(conc_queue_put(q, P(1), 0));
        for (int i = 0; i < 2; i++)
            call_start(&c[i], OP_PUT, q, P(2));
        wait_blocked(q, 0, 2, 0);
        assert_conc_ok(conc_queue_shutdown(q, immediate));
        for (int i = 0; i < 2; i++) {
            call_finish(&c[i]);
            assert_conc(c[i].result, CONC_ECLOSED);
        }
        assert_int_equal(conc_queue_qsize(q), immediate ? 0 : 1);
        conc_queue_free(q);
    }
}

static void
test_shutdown_immediate(void **state)
{
    (void)state;
    for (int k = CONC_QUEUE_FIFO; k <= CONC_QUEUE_PRIORITY; k++) {
        reset_drops();
        conc_queue *q = new_queue((conc_queue_kind)k, 0, count_drop);
        void *item;
        for (uintptr_t i = 1; i <= 5; i++)
            assert_conc_ok(conc_queue_put(q, P(i), 0));
        assert_conc_ok(conc_queue_get(q, 0, &item)); /* not marked done */
        uintptr_t taken = (uintptr_t)item;
        assert_conc_ok(conc_queue_get(q, 0, &item));
        taken += (uintptr_t)item;
        assert_conc_ok(conc_queue_task_done(q));
        struct call c;
        call_start(&c, OP_JOIN, q, NULL);
        wait_blocked(q, 0, 0, 1);
        assert_conc_ok(conc_queue_shutdown(q, 1));
        assert_int_equal(atomic_load(&dropped_count), 3);
        assert_int_equal(atomic_load(&dropped_sum), 15 - taken);
        assert_int_equal(conc_queue_qsize(q), 0);
        assert_conc(conc_queue_get(q, CONC_FOREVER, &item), CONC_ECLOSED);
        assert_conc(conc_queue_put(q, P(9), 0), CONC_ECLOSED);
        /* One item got but not done still holds join back. */
        assert_conc(conc_queue_join(q, 0), CONC_ETIMEDOUT);
        assert_conc_ok(conc_queue_task_done(q));
        call_finish(&c);
        assert_conc_ok(c.result);
        assert_conc(conc_queue_task_done(q), CONC_EVALUE);
        conc_queue_free(q);
        assert_int_equal(atomic_load(&dropped_count), 3);
    }
}

/* The dropped items release a joiner that waits on nothing else. */
static void
test_shutdown_immediate_releases_join(void **state)
{
    (void)state;
    reset_drops();
    conc_queue *q = new_queue(CONC_QUEUE_FIFO, 4, count_drop);
    for (uintptr_t i = 1; i <= 4; i++)
        assert_conc_ok(conc_queue_put(q, P(i), 0));
    struct call c;
    call_start(&c, OP_JOIN, q, NULL);
    wait_blocked(q, 0, 0, 1);
    assert_conc_ok(conc_queue_shutdown(q, 1));
    call_finish(&c);
    assert_conc_ok(c.result);
    assert_int_equal(atomic_load(&dropped_count), 4);
    assert_int_equal(atomic_load(&dropped_sum), 10);
    assert_conc(conc_queue_task_done(q), CONC_EVALUE);
    conc_queue_free(q);
}

/* task_done called ahead of gets: the drops cannot take the unfinished
 * count below zero. */
static void
test_shutdown_immediate_after_early_task_done(void **state)
{
    (void)state;
    conc_queue *q = new_queue(CONC_QUEUE_FIFO, 0, NULL);
    assert_conc_ok(conc_queue_put(q, P(1), 0));
    assert_conc_ok(conc_queue_put(q, P(2), 0));
    assert_conc_ok(conc_queue_task_done(q));
    assert_conc_ok(conc_queue_shutdown(q, 1));
    assert_conc_ok(conc_queue_join(q, 0));
    assert_conc(conc_queue_task_done(q), CONC_EVALUE);
    conc_queue_free(q);
}

static void
test_shutdown_twice(void **state)
{
    (void)state;
    reset_drops();
    conc_queue *q = new_queue(CONC_QUEUE_PRIORITY, 0, count_drop);
    void *item;
    assert_conc_ok(conc_queue_put(q, P(1), 0));
    assert_conc_ok(conc_queue_put(q, P(2), 0));
    assert_conc_ok(conc_queue_shutdown(q, 0));
    assert_conc_ok(conc_queue_shutdown(q, 0));
    assert_int_equal(conc_queue_qsize(q), 2);
    assert_conc_ok(conc_queue_get(q, 0, &item));
    /* Upgrading to immediate removes what is left. */
    assert_conc_ok(conc_queue_shutdown(q, 1));
    assert_int_equal(atomic_load(&dropped_count), 1);
    assert_int_equal(atomic_load(&dropped_sum), 2);
    assert_conc(conc_queue_get(q, 0, &item), CONC_ECLOSED);
    assert_conc_ok(conc_queue_shutdown(q, 1));
    assert_conc_ok(conc_queue_shutdown(q, 0));
    assert_int_equal(atomic_load(&dropped_count), 1);
    assert_conc(conc_queue_put(q, P(3), 0), CONC_ECLOSED);
    conc_queue_free(q);
    assert_int_equal(atomic_load(&dropped_count), 1);
}

/* ---- Free, storage and allocation failures ------------------------------- */

static void
test_free_drops_items(void **state)
{
    (void)state;
    for (int k = CONC_QUEUE_FIFO; k <= CONC_QUEUE_PRIORITY; k++) {
        reset_drops();
        conc_queue *q = new_queue((conc_queue_kind)k, 0, count_drop);
        void *item;
        for (uintptr_t i = 1; i <= 50; i++)
            assert_conc_ok(conc_queue_put(q, P(i), 0));
        assert_conc_ok(conc_queue_get(q, 0, &item));
        /* For FIFO the rest of the first 50 now sits in the consumers'
         * batch; these go to the producers' side. */
        for (uintptr_t i = 51; i <= 60; i++)
            assert_conc_ok(conc_queue_put(q, P(i), 0));
        conc_queue_free(q);
        assert_int_equal(atomic_load(&dropped_count), 59);
        assert_int_equal(atomic_load(&dropped_sum), 1830 - (uintptr_t)item);
    }
    conc_queue *q = new_queue(CONC_QUEUE_FIFO, 0, NULL);
    assert_conc_ok(conc_queue_put(q, P(1), 0)); /* no drop: left alone */
    conc_queue_free(q);
}

/* The FIFO consumers' batch and the producers' inbox keep one order, and
 * qsize counts both. */
static void
test_fifo_batch_interleaving(void **state)
{
    (void)state;
    conc_queue *q = new_queue(CONC_QUEUE_FIFO, 5, NULL);
    uintptr_t next_put = 1, next_get = 1;
    for (int round = 0; round < 200; round++) {
        int puts = round % 4, gets = (round * 7) % 5;
        for (int i = 0; i < puts; i++) {
            int r = conc_queue_put_nowait(q, P(next_put));
            if (r == CONC_EFULL) {
                assert_int_equal(conc_queue_qsize(q), 5);
                break;
            }
            assert_conc_ok(r);
            next_put++;
        }
        assert_int_equal(conc_queue_qsize(q), next_put - next_get);
        for (int i = 0; i < gets && next_get < next_put; i++) {
            void *item;
            assert_conc_ok(conc_queue_get_nowait(q, &item));
            assert_ptr_equal(item, P(next_get));
            next_get++;
        }
        assert_int_equal(conc_queue_qsize(q), next_put - next_get);
    }
    assert_true(next_get > 100);
    conc_queue_free(q);
}

static void
test_put_enomem(void **state)
{
    (void)state;
    for (int k = CONC_QUEUE_FIFO; k <= CONC_QUEUE_PRIORITY; k++) {
        conc_queue *q = new_queue((conc_queue_kind)k, 0, NULL);
        void *item;
        conc_test_fail_alloc_after(1); /* the first put allocates storage */
        assert_conc(conc_queue_put(q, P(1), 0), CONC_ENOMEM);
        conc_test_fail_alloc_after(0);
        assert_int_equal(conc_queue_qsize(q), 0);
        assert_conc_ok(conc_queue_join(q, 0)); /* the failed put counts not */
        assert_conc_ok(conc_queue_put(q, P(1), 0));
        uintptr_t n = 1;
        for (;;) { /* fill until the storage must grow again */
            conc_test_fail_alloc_after(1);
            int r = conc_queue_put(q, P(n + 1), 0);
            conc_test_fail_alloc_after(0);
            if (r == CONC_ENOMEM)
                break;
            assert_conc_ok(r);
            assert_true(++n < 100000);
        }
        assert_true(n >= 2);
        assert_int_equal(conc_queue_qsize(q), n);
        assert_conc_ok(conc_queue_put(q, P(n + 1), 0));
        uintptr_t sum = 0;
        for (uintptr_t i = 0; i <= n; i++) {
            assert_conc_ok(conc_queue_get(q, 0, &item));
            sum += (uintptr_t)item;
        }
        assert_int_equal(sum, (n + 1) * (n + 2) / 2); /* nothing lost */
        assert_conc(conc_queue_get(q, 0, &item), CONC_EEMPTY);
        conc_queue_free(q);
    }
}

/* A burst grows the storage; draining shrinks it again, and a shrink that
 * cannot reallocate keeps the larger array without losing anything. */
static void
test_burst_and_drain(void **state)
{
    (void)state;
    const uintptr_t n = 5000;
    for (int k = CONC_QUEUE_FIFO; k <= CONC_QUEUE_PRIORITY; k++) {
        conc_queue *q = new_queue((conc_queue_kind)k, 0, NULL);
        for (int round = 0; round < 2; round++) {
            uintptr_t sum = 0;
            void *item;
            for (uintptr_t i = 1; i <= n; i++)
                assert_conc_ok(conc_queue_put(q, P(i), 0));
            for (uintptr_t i = 1; i <= n; i++) {
                conc_test_fail_alloc_after(round); /* round 1: shrinks fail */
                assert_conc_ok(conc_queue_get(q, 0, &item));
                conc_test_fail_alloc_after(0);
                sum += (uintptr_t)item;
                if (k == CONC_QUEUE_FIFO)
                    assert_ptr_equal(item, P(i));
            }
            assert_int_equal(sum, n * (n + 1) / 2);
            /* A trickle after the burst: FIFO frees its large array. */
            for (uintptr_t i = 1; i <= 3; i++) {
                assert_conc_ok(conc_queue_put(q, P(i), 0));
                assert_conc_ok(conc_queue_get(q, 0, &item));
                assert_ptr_equal(item, P(i));
            }
            assert_true(conc_queue_empty(q));
        }
        conc_queue_free(q);
    }
}

/* ---- SimpleQueue --------------------------------------------------------- */

static void
test_simplequeue_order_and_size(void **state)
{
    (void)state;
    const uintptr_t n = 3 * CONC__SIMPLEQUEUE_SEGMENT + 5;
    conc_simplequeue *q;
    void *item;
    assert_conc_ok(conc_simplequeue_new(NULL, &q));
    assert_true(conc_simplequeue_empty(q));
    assert_conc(conc_simplequeue_get_nowait(q, &item), CONC_EEMPTY);
    assert_conc_ok(conc_simplequeue_put(q, NULL));
    for (uintptr_t i = 1; i <= n; i++) {
        assert_conc_ok(conc_simplequeue_put(q, P(i)));
        assert_int_equal(conc_simplequeue_qsize(q), i + 1);
    }
    assert_false(conc_simplequeue_empty(q));
    item = P(1);
    assert_conc_ok(conc_simplequeue_get(q, 0, &item));
    assert_null(item);
    for (uintptr_t i = 1; i <= n; i++) {
        assert_conc_ok(conc_simplequeue_get(q, CONC_FOREVER, &item));
        assert_ptr_equal(item, P(i));
        assert_int_equal(conc_simplequeue_qsize(q), n - i);
    }
    assert_true(conc_simplequeue_empty(q));
    assert_conc(conc_simplequeue_get(q, 0, &item), CONC_EEMPTY);
    /* Recycled segments carry no stale state into a second pass. */
    for (uintptr_t i = 1; i <= n; i++)
        assert_conc_ok(conc_simplequeue_put(q, P(i + n)));
    for (uintptr_t i = 1; i <= n; i++) {
        assert_conc_ok(conc_simplequeue_get_nowait(q, &item));
        assert_ptr_equal(item, P(i + n));
    }
    assert_conc(conc_simplequeue_get_nowait(q, &item), CONC_EEMPTY);
    conc_simplequeue_free(q);
}

static int
sq_getter_blocked(void *arg)
{
    return conc__simplequeue_waiters(arg) >= 1;
}

static void
test_simplequeue_blocked_get(void **state)
{
    (void)state;
    conc_simplequeue *q;
    assert_conc_ok(conc_simplequeue_new(NULL, &q));
    struct call c = {.op = OP_SQ_GET, .sq = q, .timeout = 30.0, .result = 1};
    assert_int_equal(pthread_create(&c.thread, NULL, call_main, &c), 0);
    assert_true(conc_test_wait_until(sq_getter_blocked, q, 10.0));
    assert_conc_ok(conc_simplequeue_put(q, P(42)));
    call_finish(&c);
    assert_conc_ok(c.result);
    assert_ptr_equal(c.item, P(42));
    assert_int_equal(conc__simplequeue_waiters(q), 0);
    conc_simplequeue_free(q);
}

static void
test_simplequeue_free_drops(void **state)
{
    (void)state;
    reset_drops();
    conc_simplequeue *q;
    void *item;
    assert_conc_ok(conc_simplequeue_new(count_drop, &q));
    for (uintptr_t i = 1; i <= 300; i++)
        assert_conc_ok(conc_simplequeue_put(q, P(i)));
    for (uintptr_t i = 1; i <= 100; i++)
        assert_conc_ok(conc_simplequeue_get(q, 0, &item));
    conc_simplequeue_free(q);
    assert_int_equal(atomic_load(&dropped_count), 200);
    assert_int_equal(atomic_load(&dropped_sum), 45150 - 5050);
}

static void
test_simplequeue_put_enomem(void **state)
{
    (void)state;
    const uintptr_t seg = CONC__SIMPLEQUEUE_SEGMENT;
    conc_simplequeue *q;
    void *item;
    assert_conc_ok(conc_simplequeue_new(NULL, &q));
    for (uintptr_t i = 1; i < seg; i++)
        assert_conc_ok(conc_simplequeue_put(q, P(i)));
    /* The put that fills the segment allocates the next one. */
    conc_test_fail_alloc_after(1);
    assert_conc(conc_simplequeue_put(q, P(seg)), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    assert_int_equal(conc_simplequeue_qsize(q), seg - 1);
    for (uintptr_t i = seg; i <= 2 * seg; i++)
        assert_conc_ok(conc_simplequeue_put(q, P(i)));
    for (uintptr_t i = 1; i <= 2 * seg; i++) {
        assert_conc_ok(conc_simplequeue_get(q, 0, &item));
        assert_ptr_equal(item, P(i));
    }
    assert_true(conc_simplequeue_empty(q));
    conc_simplequeue_free(q);
}

/* ---- Many producers, many consumers -------------------------------------- */

#define PRODUCERS    4
#define CONSUMERS    4
#define PER_PRODUCER 20000
#define STRESS_ITEMS (PRODUCERS * PER_PRODUCER)

struct stress {
    conc_queue *q;        /* or: */
    conc_simplequeue *sq; /* consumers stop at a NULL item */
    conc_queue_kind kind;
    unsigned char *seen; /* per item: times delivered */
    atomic_int errors;   /* failed calls, duplicates, disorder */
};

struct worker {
    struct stress *s;
    int index;
    pthread_t thread;
};

/* Mixes the ways to wait: forever, short timeouts, and nowait. */
static double
stress_timeout(unsigned n)
{
    return n % 3 == 0 ? CONC_FOREVER : n % 3 == 1 ? 0.001 : 0;
}

static int
stress_put(struct stress *s, uintptr_t id, unsigned n)
{
    if (s->sq)
        return conc_simplequeue_put(s->sq, P(id));
    int r;
    do {
        if (s->kind == CONC_QUEUE_PRIORITY)
            r = conc_queue_put_priority(s->q, P(id), (int64_t)(n % 13) - 6,
                                        stress_timeout(n));
        else
            r = conc_queue_put(s->q, P(id), stress_timeout(n));
    } while (r == CONC_EFULL);
    return r;
}

static void *
producer_main(void *arg)
{
    struct worker *w = arg;
    for (unsigned j = 0; j < PER_PRODUCER; j++) {
        uintptr_t id = (uintptr_t)w->index * PER_PRODUCER + j + 1;
        if (stress_put(w->s, id, j * 7919u) != 0)
            atomic_fetch_add(&w->s->errors, 1);
    }
    return NULL;
}

/* Takes one item; returns 0, or CONC_ECLOSED at the end of the run. */
static int
stress_get(struct stress *s, void **item, unsigned n)
{
    int r;
    do {
        if (s->sq)
            r = conc_simplequeue_get(s->sq, stress_timeout(n), item);
        else
            r = conc_queue_get(s->q, stress_timeout(n), item);
    } while (r == CONC_EEMPTY);
    if (r == 0 && s->sq && *item == NULL)
        r = CONC_ECLOSED;
    return r;
}

/* Records one delivery; checks that no item comes twice and, for FIFO
 * queues, that each producer's items come in the order they were put. */
static void
stress_record(struct stress *s, uintptr_t id, uintptr_t *last)
{
    uintptr_t p = (id - 1) / PER_PRODUCER;
    if (id == 0 || id > STRESS_ITEMS || s->seen[id - 1]++ != 0)
        atomic_fetch_add(&s->errors, 1);
    else if (s->kind == CONC_QUEUE_FIFO && id <= last[p])
        atomic_fetch_add(&s->errors, 1);
    else
        last[p] = id;
}

static void *
consumer_main(void *arg)
{
    struct worker *w = arg;
    struct stress *s = w->s;
    uintptr_t last[PRODUCERS] = {0};
    void *item;
    int r;
    for (unsigned n = (unsigned)w->index; (r = stress_get(s, &item, n)) == 0;
         n++) {
        stress_record(s, (uintptr_t)item, last);
        if (s->q && conc_queue_task_done(s->q) != 0)
            atomic_fetch_add(&s->errors, 1);
    }
    if (r != CONC_ECLOSED)
        atomic_fetch_add(&s->errors, 1);
    return NULL;
}

/* Tells the consumers the run is over once every item is in: a shutdown
 * (after join, which returns once every item was taken and marked done),
 * or one NULL per consumer for a SimpleQueue. */
static void
stress_end(struct stress *s)
{
    if (s->sq) {
        for (int i = 0; i < CONSUMERS; i++)
            assert_conc_ok(conc_simplequeue_put(s->sq, NULL));
        return;
    }
    assert_conc_ok(conc_queue_join(s->q, CONC_FOREVER));
    assert_int_equal(conc_queue_qsize(s->q), 0);
    assert_conc_ok(conc_queue_shutdown(s->q, 0));
}

static void
run_stress(struct stress *s)
{
    struct worker prod[PRODUCERS], cons[CONSUMERS];
    s->seen = calloc(STRESS_ITEMS, 1);
    assert_non_null(s->seen);
    atomic_init(&s->errors, 0);
    for (int i = 0; i < CONSUMERS; i++) {
        cons[i] = (struct worker){.s = s, .index = i};
        assert_int_equal(
            pthread_create(&cons[i].thread, NULL, consumer_main, &cons[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        prod[i] = (struct worker){.s = s, .index = i};
        assert_int_equal(
            pthread_create(&prod[i].thread, NULL, producer_main, &prod[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(pthread_join(prod[i].thread, NULL), 0);
    stress_end(s);
    for (int i = 0; i < CONSUMERS; i++)
        assert_int_equal(pthread_join(cons[i].thread, NULL), 0);
    assert_int_equal(atomic_load(&s->errors), 0);
    for (size_t i = 0; i < STRESS_ITEMS; i++)
        assert_int_equal(s->seen[i], 1); /* every item exactly once */
    free(s->seen);
}

static void
stress_queue(conc_queue_kind kind, size_t maxsize)
{
    struct stress s = {.kind = kind};
    s.q = new_queue(kind, maxsize, NULL);
    run_stress(&s);
    assert_conc_ok(conc_queue_join(s.q, 0));
    conc_queue_free(s.q);
}

static void
test_stress_fifo(void **state)
{
    (void)state;
    stress_queue(CONC_QUEUE_FIFO, 0);
    stress_queue(CONC_QUEUE_FIFO, 8);
    stress_queue(CONC_QUEUE_FIFO,
                 LARGE_MAXSIZE / 4); /* putters wait for runs */
}

static void
test_stress_lifo(void **state)
{
    (void)state;
    stress_queue(CONC_QUEUE_LIFO, 0);
    stress_queue(CONC_QUEUE_LIFO, 8);
}

static void
test_stress_priority(void **state)
{
    (void)state;
    stress_queue(CONC_QUEUE_PRIORITY, 0);
    stress_queue(CONC_QUEUE_PRIORITY, 8);
}

static void
test_stress_simplequeue(void **state)
{
    (void)state;
    struct stress s = {.kind = CONC_QUEUE_FIFO};
    assert_conc_ok(conc_simplequeue_new(NULL, &s.sq));
    run_stress(&s);
    assert_true(conc_simplequeue_empty(s.sq));
    conc_simplequeue_free(s.sq);
}

/* Two threads hand items back and forth through two queues of one slot
 * each. Every step needs the other thread's wake-up, so a lost one shows
 * as a timeout (not hidden by a later event, as in the stress tests). */
#define PINGS 20000

struct pong {
    conc_queue *to, *from; /* or: */
    conc_simplequeue *sto, *sfrom;
    int errors;
    pthread_t thread;
};

static int
pong_step(struct pong *p, uintptr_t i)
{
    void *item;
    int r = p->to ? conc_queue_put(p->to, P(i), 10.0)
                  : conc_simplequeue_put(p->sto, P(i));
    if (r == 0)
        r = p->from ? conc_queue_get(p->from, 10.0, &item)
                    : conc_simplequeue_get(p->sfrom, 10.0, &item);
    return r != 0 || item != P(i);
}

static void *
pong_main(void *arg)
{
    struct pong *p = arg;
    for (uintptr_t i = 0; i < PINGS && !p->errors; i++)
        p->errors += pong_step(p, i);
    return NULL;
}

static void
test_ping_pong(void **state)
{
    (void)state;
    for (int k = CONC_QUEUE_FIFO; k <= CONC_QUEUE_PRIORITY + 1; k++) {
        struct pong a, b;
        conc_queue *q[2] = {NULL, NULL};
        conc_simplequeue *sq[2] = {NULL, NULL};
        for (int i = 0; i < 2; i++) {
            if (k <= CONC_QUEUE_PRIORITY)
                q[i] = new_queue((conc_queue_kind)k, 1, NULL);
            else
                assert_conc_ok(conc_simplequeue_new(NULL, &sq[i]));
        }
        a = (struct pong){
            .to = q[0], .from = q[1], .sto = sq[0], .sfrom = sq[1]};
        b = (struct pong){
            .to = q[1], .from = q[0], .sto = sq[1], .sfrom = sq[0]};
        assert_int_equal(pthread_create(&a.thread, NULL, pong_main, &a), 0);
        assert_int_equal(pthread_create(&b.thread, NULL, pong_main, &b), 0);
        assert_int_equal(pthread_join(a.thread, NULL), 0);
        assert_int_equal(pthread_join(b.thread, NULL), 0);
        assert_int_equal(a.errors + b.errors, 0);
        for (int i = 0; i < 2; i++) {
            conc_queue_free(q[i]);
            conc_simplequeue_free(sq[i]);
        }
    }
}

/* One producer fills a one-slot queue as fast as it can, so nearly every
 * put waits for a get and nearly every get for a put. */
struct pipe_run {
    conc_queue *q;
    int errors;
};

static void *
pipe_producer(void *arg)
{
    struct pipe_run *run = arg;
    for (uintptr_t i = 1; i <= PINGS; i++)
        if (conc_queue_put(run->q, P(i), 10.0) != 0)
            run->errors++;
    return NULL;
}

static void
test_one_slot_pipe(void **state)
{
    (void)state;
    for (int k = CONC_QUEUE_FIFO; k <= CONC_QUEUE_PRIORITY; k++) {
        struct pipe_run run = {.q = new_queue((conc_queue_kind)k, 1, NULL)};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, pipe_producer, &run), 0);
        for (uintptr_t i = 1; i <= PINGS; i++) {
            void *item;
            assert_conc_ok(conc_queue_get(run.q, 10.0, &item));
            assert_ptr_equal(item, P(i));
        }
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(run.errors, 0);
        conc_queue_free(run.q);
    }
}

/* A SimpleQueue put touches the queue no more once its item can be got, so
 * the thread that gets the last item may free the queue while the producer
 * is still on its way out of put (ASan would see any later touch). */
static void *
last_user_producer(void *arg)
{
    for (uintptr_t i = 1; i <= 100; i++)
        conc_simplequeue_put(arg, P(i));
    return NULL;
}

static void
test_simplequeue_last_user_frees(void **state)
{
    (void)state;
    for (int round = 0; round < 200; round++) {
        conc_simplequeue *q;
        assert_conc_ok(conc_simplequeue_new(NULL, &q));
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, last_user_producer, q), 0);
        void *item = NULL;
        for (uintptr_t n = 1; n <= 100; n++) {
            assert_conc_ok(conc_simplequeue_get(q, 10.0, &item));
            assert_ptr_equal(item, P(n));
        }
        conc_simplequeue_free(q);
        assert_int_equal(pthread_join(t, NULL), 0);
    }
}

/* An immediate shutdown in the middle of traffic: every item a put
 * accepted is delivered or dropped, exactly once, and join returns. */
#define SD_THREADS 2
#define SD_MAX     (1 << 20)

static unsigned char *sd_seen;
static atomic_long sd_delivered;

static void
sd_drop(void *item)
{
    sd_seen[(uintptr_t)item]++;
}

struct sd_worker {
    conc_queue *q;
    int index;
    uintptr_t accepted; /* producers: items put */
    int result;
    pthread_t thread;
};

static void *
sd_producer(void *arg)
{
    struct sd_worker *w = arg;
    uintptr_t id = (uintptr_t)w->index;
    while (id < SD_MAX &&
           (w->result = conc_queue_put(w->q, P(id), CONC_FOREVER)) == 0) {
        w->accepted++;
        id += SD_THREADS;
    }
    return NULL;
}

static void *
sd_consumer(void *arg)
{
    struct sd_worker *w = arg;
    void *item;
    while ((w->result = conc_queue_get(w->q, CONC_FOREVER, &item)) == 0) {
        sd_seen[(uintptr_t)item]++;
        atomic_fetch_add(&sd_delivered, 1);
        conc_queue_task_done(w->q);
    }
    return NULL;
}

static int
sd_started(void *arg)
{
    (void)arg;
    return atomic_load(&sd_delivered) >= 2000;
}

static void
sd_check(struct sd_worker *prod)
{
    for (int p = 0; p < SD_THREADS; p++) {
        /* Stopped by the shutdown (or, on a very slow run, done). */
        assert_true(prod[p].result == CONC_ECLOSED ||
                    prod[p].accepted == SD_MAX / SD_THREADS);
        for (uintptr_t k = 0; k < SD_MAX / SD_THREADS; k++) {
            uintptr_t id = k * SD_THREADS + (uintptr_t)p;
            assert_int_equal(sd_seen[id], k < prod[p].accepted ? 1 : 0);
        }
    }
}

static void
test_stress_shutdown_immediate(void **state)
{
    (void)state;
    struct sd_worker prod[SD_THREADS], cons[SD_THREADS];
    sd_seen = calloc(SD_MAX, 1);
    assert_non_null(sd_seen);
    atomic_store(&sd_delivered, 0);
    conc_queue *q = new_queue(CONC_QUEUE_FIFO, 64, sd_drop);
    for (int i = 0; i < SD_THREADS; i++) {
        prod[i] = cons[i] = (struct sd_worker){.q = q, .index = i};
        assert_int_equal(
            pthread_create(&prod[i].thread, NULL, sd_producer, &prod[i]), 0);
        assert_int_equal(
            pthread_create(&cons[i].thread, NULL, sd_consumer, &cons[i]), 0);
    }
    assert_true(conc_test_wait_until(sd_started, NULL, 30.0));
    assert_conc_ok(conc_queue_shutdown(q, 1));
    for (int i = 0; i < SD_THREADS; i++) {
        assert_int_equal(pthread_join(prod[i].thread, NULL), 0);
        assert_int_equal(pthread_join(cons[i].thread, NULL), 0);
        assert_conc(cons[i].result, CONC_ECLOSED);
    }
    sd_check(prod);
    assert_conc_ok(conc_queue_join(q, 0));
    conc_queue_free(q);
    free(sd_seen);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_new_defaults_and_errors),
        conc_unit_test(test_new_enomem),
        conc_unit_test(test_fifo_order),
        conc_unit_test(test_lifo_order),
        conc_unit_test(test_priority_order),
        conc_unit_test(test_priority_many_ties_and_null),
        conc_unit_test(test_put_priority_wrong_kind),
        conc_unit_test(test_nowait_full_and_empty),
        conc_unit_test(test_timeouts),
        conc_unit_test(test_nan_and_null),
        conc_unit_test(test_blocked_put_released_by_get),
        conc_unit_test(test_blocked_get_released_by_put),
        conc_unit_test(test_large_blocked_put_released_by_one_get),
        conc_unit_test(test_large_put_takes_one_slot),
        conc_unit_test(test_large_put_takes_last_slots),
        conc_unit_test(test_timed_waits_satisfied),
        conc_unit_test(test_task_done_and_join),
        conc_unit_test(test_task_done_before_get),
        conc_unit_test(test_many_joiners),
        conc_unit_test(test_shutdown_normal),
        conc_unit_test(test_shutdown_wakes_blocked_getters),
        conc_unit_test(test_shutdown_wakes_blocked_putters),
        conc_unit_test(test_shutdown_immediate),
        conc_unit_test(test_shutdown_immediate_releases_join),
        conc_unit_test(test_shutdown_immediate_after_early_task_done),
        conc_unit_test(test_shutdown_twice),
        conc_unit_test(test_free_drops_items),
        conc_unit_test(test_fifo_batch_interleaving),
        conc_unit_test(test_put_enomem),
        conc_unit_test(test_burst_and_drain),
        conc_unit_test(test_simplequeue_order_and_size),
        conc_unit_test(test_simplequeue_blocked_get),
        conc_unit_test(test_simplequeue_free_drops),
        conc_unit_test(test_simplequeue_put_enomem),
        conc_unit_test(test_stress_fifo),
        conc_unit_test(test_stress_lifo),
        conc_unit_test(test_stress_priority),
        conc_unit_test(test_stress_simplequeue),
        conc_unit_test(test_stress_shutdown_immediate),
        conc_unit_test(test_ping_pong),
        conc_unit_test(test_one_slot_pipe),
        conc_unit_test(test_simplequeue_last_user_frees),
    };
    return conc_run_tests(tests);
}
