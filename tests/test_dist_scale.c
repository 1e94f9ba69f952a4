/* Scale-out over Redis, the second program (test_dist holds the first):
 * the executor's map, workers that run their tasks in processes, and the
 * durability faults (acknowledged submits across a server killed with
 * SIGKILL, a dead submitter's results expiring), against a real
 * redis-server started on a loopback port (tests/peers/redis_fixture.c). */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "conc_test.h"
#include "dist_fixture.h"
#include "core/internal.h"
#include "dist/dist_internal.h"

#define LONG_WAIT 60.0
/* Well under the 30 s reclaim_idle a take-over of tasks not handed back
 * would wait for. */
#define HAND_BACK_WAIT 10.0
/* A nap that holds a serving thread, and how long the tasks held behind
 * it may wait for another thread: well under the nap. */
#define LONG_NAP         30.0
#define IDLE_THREAD_WAIT 15.0

static conc_future *
submit(conc_dist_executor *dx, const char *name, const void *arg, size_t len)
{
    conc_future *f = NULL;
    assert_conc_ok(conc_dist_submit(dx, name, arg, len, LONG_WAIT, &f));
    return f;
}

/* ---- map ----------------------------------------------------------------- */

struct progress {
    size_t calls, done, total;
};

static void
on_progress(void *arg, size_t done, size_t total)
{
    struct progress *p = arg;
    assert_true(done > p->done); /* increasing */
    p->calls++;
    p->done = done;
    p->total = total;
}

/* An array map: results in input order with a bound on the tasks in
 * flight far below the input, and progress once per item. */
static void
test_map_array(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t peer = dist_start_peer(q, 2, "5", 5, 0);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    enum { N = 300 };
    static long in[N];
    for (long i = 0; i < N; i++)
        in[i] = i;
    struct progress pr = {0};
    conc_map_opts mo = {
        .max_in_flight = 16, .progress = on_progress, .progress_arg = &pr};
    conc_items items = CONC_ITEMS(in, N);
    conc_map_iter *it = NULL;
    assert_conc_ok(conc_dist_map(dx, "square", &items, &mo, &it));
    conc_dist_status st;
    const void *data;
    size_t len;
    for (long i = 0; i < N; i++) {
        assert_conc_ok(conc_map_next(it, LONG_WAIT, &data, &len));
        assert_conc_ok(
            conc_dist_status_get(dist_server.url, DIST_PASSWORD, q, 5, &st));
        assert_true(st.queued + st.in_flight <= 16); /* lazy: bounded */
        assert_int_equal(dist_long_of(data, len), i * i);
        assert_int_equal(conc_map_index(it), i);
    }
    assert_conc(conc_map_next(it, LONG_WAIT, &data, &len), CONC_ECLOSED);
    assert_int_equal(pr.calls, N);
    assert_int_equal(pr.done, N);
    assert_int_equal(pr.total, N);
    conc_map_free(it);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

struct gen {
    long next, end;
};

/* Yields the longs next..end-1, except that 5 comes as two bytes. */
static int
gen_next(void *ctx, conc_buf *item)
{
    struct gen *g = ctx;
    if (g->next == g->end)
        return 0;
    long v = g->next++;
    int r = conc_buf_append(item, &v, v == 5 ? 2 : sizeof v);
    return r < 0 ? r : 1;
}

/* A generator map: items of varying size, one that fails (its error and
 * message come out in its place, and the map goes on); a map freed
 * early cancels what is left without waiting for it. */
static void
test_map_generator_and_failures(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t peer = dist_start_peer(q, 2, "5", 5, 0);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    struct gen g = {0, 40};
    conc_items items = {.next = gen_next, .ctx = &g};
    struct progress pr = {0};
    conc_map_opts mo = {
        .max_in_flight = 8, .progress = on_progress, .progress_arg = &pr};
    conc_map_iter *it = NULL;
    assert_conc_ok(conc_dist_map(dx, "square", &items, &mo, &it));
    assert_int_equal(g.next, 0); /* nothing read before the first next */
    const void *data;
    size_t len;
    for (long i = 0; i < 40; i++) {
        int r = conc_map_next(it, LONG_WAIT, &data, &len);
        assert_true(g.next <= i + 1 + 8); /* read no further than it sends */
        if (i == 5) {
            assert_conc(r, CONC_EVALUE);
            assert_non_null(strstr(conc_failure_message(), "got 2 bytes"));
        } else {
            assert_conc_ok(r);
            assert_int_equal(dist_long_of(data, len), i * i);
        }
    }
    assert_conc(conc_map_next(it, LONG_WAIT, &data, &len), CONC_ECLOSED);
    assert_int_equal(pr.total, 40);
    conc_map_free(it);

    /* Freed with long tasks in flight: returns at once, and the
     * executor has nothing left in flight. */
    double naps[6] = {30, 30, 30, 30, 30, 30};
    conc_items nap_items = CONC_ITEMS(naps, 6);
    assert_conc_ok(conc_dist_map(dx, "nap", &nap_items, NULL, &it));
    assert_conc(conc_map_next(it, 0.1, &data, &len), CONC_ETIMEDOUT);
    double t0 = conc_monotonic();
    conc_map_free(it);
    assert_conc_ok(conc_dist_shutdown(dx, 1, 0, LONG_WAIT));
    assert_true(conc_monotonic() - t0 < 20);
    conc_items one = CONC_ITEMS(naps, 1);
    assert_conc(conc_dist_map(dx, "nap", &one, NULL, &it), CONC_ECLOSED);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

/* The map's contract for bad arguments. */
static void
test_map_contract(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    long in[2] = {1, 2};
    conc_items items = CONC_ITEMS(in, 2), bad = {.size = 8, .count = 2};
    conc_map_iter *it = NULL;
    conc_map_opts nan_timeout = {.timed = 1, .timeout = 0.0 / 0.0};
    assert_conc(conc_dist_map(NULL, "square", &items, NULL, &it), CONC_EINVAL);
    assert_conc(conc_dist_map(dx, "bad name", &items, NULL, &it), CONC_EINVAL);
    assert_conc(conc_dist_map(dx, "square", &bad, NULL, &it), CONC_EINVAL);
    assert_conc(conc_dist_map(dx, "square", &items, &nan_timeout, &it),
                CONC_EINVAL);
    assert_conc(conc_dist_map(dx, "square", &items, NULL, NULL), CONC_EINVAL);
    /* A timed map with no worker runs out of time, and says so. */
    conc_map_opts timed = {.timed = 1, .timeout = 0.2};
    assert_conc_ok(conc_dist_map(dx, "square", &items, &timed, &it));
    assert_conc(conc_map_next(it, LONG_WAIT, NULL, NULL), CONC_ETIMEDOUT);
    conc_map_free(it);
    conc_dist_executor_free(dx);
}

/* A map freed while the server is gone cancels its tasks within one
 * bound on the wait for the server, not one per task. */
static void
test_map_free_with_server_gone(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    enum { N = 40 };
    static long in[N];
    conc_items items = CONC_ITEMS(in, N);
    conc_map_opts mo = {.max_in_flight = 20};
    conc_map_iter *it = NULL;
    assert_conc_ok(conc_dist_map(dx, "square", &items, &mo, &it));
    /* No worker: the first call submits 20 and times out on the first. */
    assert_conc(conc_map_next(it, 0.2, NULL, NULL), CONC_ETIMEDOUT);
    redis_fixture_kill(&dist_server);
    double t0 = conc_monotonic();
    conc_map_free(it);
    assert_true(conc_monotonic() - t0 < 10);
    conc_dist_executor_free(dx);
    assert_int_equal(redis_fixture_restart(&dist_server), 0);
}

/* ---- Coroutines -----------------------------------------------------------
 */

static conc_dist_executor *coro_dx;
static _Atomic int ticks, ticking;

static int
ticker(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    while (atomic_load(&ticking)) {
        atomic_fetch_add(&ticks, 1);
        conc_aio_sleep(0.01);
    }
    return 0;
}

/* A coroutine awaits remote futures (await, gather, and a plain
 * conc_future_result, which suspends it too) while another coroutine of
 * its loop keeps running. */
static int
coro_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    atomic_store(&ticking, 1);
    conc_future *t = NULL, *fs[3] = {NULL, NULL, NULL};
    int r = conc_aio_create_task(ticker, NULL, 0, NULL, &t);
    double nap = 0.3;
    long v = 6;
    if (r == 0)
        r = conc_dist_submit(coro_dx, "nap", &nap, sizeof nap, LONG_WAIT,
                             &fs[0]);
    if (r == 0)
        r = conc_dist_submit(coro_dx, "square", &v, sizeof v, LONG_WAIT,
                             &fs[1]);
    if (r == 0)
        r = conc_dist_submit(coro_dx, "square", &v, sizeof v, LONG_WAIT,
                             &fs[2]);
    if (r == 0)
        r = conc_aio_await(fs[0]);
    int seen = atomic_load(&ticks);
    if (r == 0)
        r = conc_aio_gather(fs + 1, 1, 0);
    const void *d = NULL;
    size_t l = 0;
    if (r == 0)
        r = conc_future_result(fs[2], LONG_WAIT, &d, &l);
    if (r == 0 && (l != sizeof v || memcmp(d, &(long){36}, l) != 0))
        r = CONC_EVALUE;
    if (r == 0 && seen < 1)
        r = conc_fail(CONC_EVALUE, "the loop did not run while awaiting");
    atomic_store(&ticking, 0);
    if (t)
        conc_aio_await(t);
    for (int i = 0; i < 3; i++)
        conc_future_free(fs[i]);
    conc_future_free(t);
    return r;
}

static void
test_coroutine_awaits_remote_futures(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t peer = dist_start_peer(q, 2, "5", 5, 0);
    coro_dx = dist_new_executor(q, NULL);
    assert_conc_ok(conc_aio_run(coro_main, NULL, 0, NULL));
    conc_dist_executor_free(coro_dx);
    dist_stop_peer(peer);
}

/* ---- Process workers ----------------------------------------------------- */

/* Tasks run in the worker's processes: a task that crashes its process
 * fails alone (not delivered again) and the worker goes on; a task over
 * its time limit is killed with its process. */
static void
test_process_workers(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t peer = dist_start_peer(q, 1, "5", 5, 2);
    conc_dist_opts o = {.time_limit = 0.5};
    conc_dist_executor *dx = dist_new_executor(q, &o);
    enum { N = 40 };
    conc_future *fs[N];
    for (long i = 0; i < N; i++)
        fs[i] = submit(dx, "square", &i, sizeof i);
    conc_future *crash = submit(dx, "crash", NULL, 0);
    double nap = 30;
    conc_future *slow = submit(dx, "nap", &nap, sizeof nap);
    assert_conc(conc_future_result(crash, LONG_WAIT, NULL, NULL), CONC_EBROKEN);
    assert_non_null(strstr(conc_future_message(crash), "signal 6"));
    double t0 = conc_monotonic();
    assert_conc(conc_future_result(slow, LONG_WAIT, NULL, NULL),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 < 20);
    dist_check_squares(fs, N, LONG_WAIT);
    long v = 9; /* served after both processes were replaced */
    conc_future *after = submit(dx, "square", &v, sizeof v);
    assert_int_equal(dist_long_result(after, LONG_WAIT), 81);
    conc_dist_status st;
    assert_conc_ok(
        conc_dist_status_get(dist_server.url, DIST_PASSWORD, q, 5, &st));
    assert_int_equal(st.dead_letters, 0);
    conc_future_free(after);
    conc_future_free(crash);
    conc_future_free(slow);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

/* conc-worker --processes serves from worker processes. */
static void
test_conc_worker_processes(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    setenv("REDIS_PASSWORD", DIST_PASSWORD, 1);
    char *argv[] = {
        CONC_WORKER,   "--url", dist_server.url, "--queue",    q,
        "--processes", "2",     DIST_TASKS,      "lib_square", NULL};
    pid_t w = redis_fixture_spawn(argv);
    unsetenv("REDIS_PASSWORD");
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    long v = 12;
    conc_future *f = submit(dx, "lib_square", &v, sizeof v);
    assert_int_equal(dist_long_result(f, LONG_WAIT), 144);
    conc_future_free(f);
    conc_dist_executor_free(dx);
    dist_stop_peer(w);
}

/* The pending entries of the queue's stream: the delivery count and the
 * consumer of the first (0 and "" if none). Returns how many. */
static size_t
pending(const char *queue, long long *deliveries, char *consumer, size_t size)
{
    struct conc__rconn c;
    assert_conc_ok(conc__rconn_init(&c, dist_server.url, DIST_PASSWORD, 5));
    redisReply *rep = NULL;
    assert_conc_ok(conc__rconn_cmdf(&c, conc__now_ns() + (int64_t)5e9, 1, &rep,
                                    "XPENDING {conc:%s}:tasks workers - + 10",
                                    queue));
    size_t n = rep->elements;
    *deliveries = 0;
    consumer[0] = '\0';
    if (n > 0) {
        snprintf(consumer, size, "%s", rep->element[0]->element[1]->str);
        *deliveries = rep->element[0]->element[3]->integer;
    }
    freeReplyObject(rep);
    conc__rconn_fini(&c);
    return n;
}

/* A task that runs far longer than reclaim_idle is not taken over while
 * its worker lives: the worker's heartbeat keeps its claim fresh, so it
 * stays with one consumer, delivered once, though another worker looks
 * for idle tasks all along. */
static void
test_heartbeat_keeps_long_task(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    pid_t a = dist_start_peer(q, 1, "1", 5, 0);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    double nap = 2.5;
    conc_future *f = submit(dx, "nap", &nap, sizeof nap);
    pid_t b = dist_start_peer(q, 1, "1", 5, 0); /* the would-be taker */
    char first[128] = "", now[128];
    long long deliveries;
    /* Polls the pending list (no event tells of a take-over) until the
     * task is done. */
    while (conc_future_result(f, 0.1, NULL, NULL) == CONC_ETIMEDOUT) {
        if (pending(q, &deliveries, now, sizeof now) == 0)
            continue;
        assert_int_equal(deliveries, 1);
        if (!first[0])
            snprintf(first, sizeof first, "%s", now);
        assert_string_equal(now, first);
    }
    assert_true(first[0] != '\0');
    assert_conc_ok(conc_future_result(f, 0, NULL, NULL));
    conc_future_free(f);
    conc_dist_executor_free(dx);
    dist_stop_peer(a);
    dist_stop_peer(b);
}

/* Whether every pending entry of the queue is with one consumer and was
 * delivered once; their number goes to *n. */
static int
pending_all_once(const char *queue, size_t *n)
{
    struct conc__rconn c;
    assert_conc_ok(conc__rconn_init(&c, dist_server.url, DIST_PASSWORD, 5));
    redisReply *rep = NULL;
    assert_conc_ok(conc__rconn_cmdf(&c, conc__now_ns() + (int64_t)5e9, 1, &rep,
                                    "XPENDING {conc:%s}:tasks workers - + 100",
                                    queue));
    int ok = 1;
    *n = rep->elements;
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        ok &= e->element[3]->integer == 1 &&
              strcmp(e->element[1]->str, rep->element[0]->element[1]->str) == 0;
    }
    freeReplyObject(rep);
    conc__rconn_fini(&c);
    return ok;
}

enum { HELD = 4 }; /* a nap, then squares held behind it */

static int
all_held(void *arg)
{
    size_t n;
    return pending_all_once(arg, &n) && n == HELD;
}

/* Submits a nap and HELD - 1 squares before any worker runs, so that the
 * first worker takes them all in one batch. */
static void
submit_batch(conc_dist_executor *dx, double nap, conc_future **fs)
{
    fs[0] = submit(dx, "nap", &nap, sizeof nap);
    for (long i = 1; i < HELD; i++)
        fs[i] = submit(dx, "square", &i, sizeof i);
}

/* Tasks a worker holds in its batch behind a long one are not taken over
 * though they wait longer than reclaim_idle: the heartbeat renews them
 * too, so each is delivered once, to one consumer, and runs there. */
static void
test_held_batch_not_robbed(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    conc_future *fs[HELD];
    submit_batch(dx, 2.5, fs);
    pid_t a = dist_start_peer(q, 1, "1", 5, 0);
    assert_true(conc_test_wait_until(all_held, q, LONG_WAIT));
    pid_t b = dist_start_peer(q, 1, "1", 5, 0); /* the would-be taker */
    /* Polls the pending list (no event tells of a take-over) until the
     * nap is done. */
    while (conc_future_result(fs[0], 0.1, NULL, NULL) == CONC_ETIMEDOUT) {
        size_t n;
        assert_true(pending_all_once(q, &n));
    }
    assert_conc_ok(conc_future_result(fs[0], 0, NULL, NULL));
    for (long i = 1; i < HELD; i++)
        assert_int_equal(dist_long_result(fs[i], LONG_WAIT), i * i);
    for (int i = 0; i < HELD; i++)
        conc_future_free(fs[i]);
    conc_dist_executor_free(dx);
    dist_stop_peer(a);
    dist_stop_peer(b);
}

/* Tasks held in a batch behind a long one run on another thread of the
 * same worker, idle meanwhile, not after the long one: the squares are
 * done well before the nap would end (it is cancelled then). */
static void
test_held_go_to_idle_thread(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    conc_future *fs[HELD];
    submit_batch(dx, LONG_NAP, fs);
    pid_t a = dist_start_peer(q, 2, "5", 5, 0);
    for (long i = 1; i < HELD; i++) {
        assert_conc_ok(conc_future_result(fs[i], IDLE_THREAD_WAIT, NULL, NULL));
        assert_int_equal(dist_long_result(fs[i], LONG_WAIT), i * i);
    }
    assert_false(conc_future_done(fs[0]));
    conc_future_cancel(fs[0]);
    for (int i = 0; i < HELD; i++)
        conc_future_free(fs[i]);
    conc_dist_executor_free(dx);
    dist_stop_peer(a); /* the nap sees the cancel */
}

/* A worker stopped with tasks of its batch not started hands them back:
 * another worker takes them over at once, well before its reclaim_idle
 * (30 s) would let it take a dead worker's tasks. The stop may come before
 * the nap starts (the batch is pending before the worker runs any of it):
 * then the nap is handed back too, so the second worker is started before
 * the nap's result is awaited. */
static void
test_stop_hands_back_batch(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    conc_future *fs[HELD];
    submit_batch(dx, 0.5, fs);
    pid_t a = dist_start_peer(q, 1, "30", 5, 0);
    assert_true(conc_test_wait_until(all_held, q, LONG_WAIT));
    dist_stop_peer(a); /* during the nap, which it finishes, or before it */
    pid_t b = dist_start_peer(q, 1, "30", 5, 0);
    assert_conc_ok(
        conc_wait(fs, HELD, CONC_ALL_COMPLETED, HAND_BACK_WAIT, NULL));
    for (long i = 1; i < HELD; i++)
        assert_int_equal(dist_long_result(fs[i], LONG_WAIT), i * i);
    for (int i = 0; i < HELD; i++)
        conc_future_free(fs[i]);
    conc_dist_executor_free(dx);
    dist_stop_peer(b);
}

/* ---- Durability ---------------------------------------------------------- */

/* With appendfsync always, every submit the server acknowledged survives
 * the server's death by SIGKILL: submitted with no worker running, the
 * server killed and restarted, then a worker runs every one. */
static void
test_acked_submits_survive_kill(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    enum { N = 500 };
    static long in[N];
    static conc_future *fs[N];
    for (long i = 0; i < N; i++)
        in[i] = i;
    conc_items items = CONC_ITEMS(in, N);
    size_t n = 0;
    assert_conc_ok(
        conc_dist_submit_many(dx, "square", &items, LONG_WAIT, fs, &n));
    assert_int_equal(n, N);
    redis_fixture_kill(&dist_server);
    assert_int_equal(redis_fixture_restart(&dist_server), 0);
    pid_t peer = dist_start_peer(q, 2, "5", 5, 0);
    assert_conc_ok(conc_wait(fs, N, CONC_ALL_COMPLETED, LONG_WAIT, NULL));
    dist_check_squares(fs, N, LONG_WAIT);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

/* The keys matching `pattern` (KEYS: a test's few), with the smallest
 * and largest time to live in ms among them. Returns how many. */
static size_t
keys_ttl(const char *pattern, long long *min_ms, long long *max_ms)
{
    struct conc__rconn c;
    assert_conc_ok(conc__rconn_init(&c, dist_server.url, DIST_PASSWORD, 5));
    int64_t deadline = conc__now_ns() + (int64_t)5e9;
    redisReply *rep = NULL;
    assert_conc_ok(conc__rconn_cmdf(&c, deadline, 1, &rep, "KEYS %s", pattern));
    size_t n = rep->elements;
    *min_ms = -1;
    *max_ms = -1;
    for (size_t i = 0; i < n; i++) {
        redisReply *t = NULL;
        assert_conc_ok(conc__rconn_cmdf(&c, deadline, 1, &t, "PTTL %s",
                                        rep->element[i]->str));
        if (*min_ms < 0 || t->integer < *min_ms)
            *min_ms = t->integer;
        if (t->integer > *max_ms)
            *max_ms = t->integer;
        freeReplyObject(t);
    }
    freeReplyObject(rep);
    conc__rconn_fini(&c);
    return n;
}

/* Long enough that the results are still there when the test looks,
 * right after they are written, on a loaded machine. */
#define SHORT_TTL 3.0
/* Polls for the keys' expiry (no event tells of it) at most this often. */
#define EXPIRY_POLLS  200
#define EXPIRY_POLL_S 0.05

static int
submitter_child(void *arg)
{
    const char *q = arg;
    conc_dist_opts o = {.result_ttl = SHORT_TTL};
    conc_dist_executor *dx = NULL;
    if (conc_dist_executor_new(dist_server.url, DIST_PASSWORD, q, &o, &dx) < 0)
        return 1;
    conc_future *f = NULL;
    for (long i = 0; i < 10; i++)
        if (conc_dist_submit(dx, "square", &i, sizeof i, LONG_WAIT, &f) < 0)
            return 2;
    return 0; /* dies with its tasks in flight */
}

/* A submitter that dies with tasks in flight: they still run, and their
 * results and its done stream expire after its result_ttl instead of
 * staying in Redis for good. */
static void
test_submitter_dies_results_expire(void **state)
{
    (void)state;
    DIST_NEED_SERVER();
    char q[64], res[128], done[128];
    dist_fixture_queue(q, sizeof q);
    snprintf(res, sizeof res, "{conc:%s}:res:*", q);
    snprintf(done, sizeof done, "{conc:%s}:done:*", q);
    reap(fork_child(submitter_child, q));
    long long lo, hi;
    assert_int_equal(keys_ttl(res, &lo, &hi), 0); /* nothing ran yet */
    pid_t peer = dist_start_peer(q, 1, "5", 5, 0);
    /* One serving thread takes tasks in order: once a later task is
     * done, the dead submitter's ten are too. */
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    long v = 3;
    conc_future *f = submit(dx, "square", &v, sizeof v);
    assert_int_equal(dist_long_result(f, LONG_WAIT), 9);
    /* The ten results (and ours, with a day to live) exist, written
     * moments ago, and expire. */
    assert_int_equal(keys_ttl(res, &lo, &hi), 11);
    assert_true(lo > 0 && lo <= (long long)(SHORT_TTL * 1000));
    assert_true(hi > (long long)(SHORT_TTL * 1000));
    assert_int_equal(keys_ttl(done, &lo, &hi), 2);
    assert_true(lo > 0 && lo <= (long long)(SHORT_TTL * 1000));
    conc_future_free(f);
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
    size_t left = 11;
    for (int i = 0; i < EXPIRY_POLLS && left > 1; i++) {
        conc_sleep(EXPIRY_POLL_S);
        left = keys_ttl(res, &lo, &hi);
    }
    assert_int_equal(left, 1); /* only ours is left */
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_map_array),
        conc_unit_test(test_map_generator_and_failures),
        conc_unit_test(test_map_contract),
        conc_unit_test(test_map_free_with_server_gone),
        conc_unit_test(test_coroutine_awaits_remote_futures),
        conc_unit_test(test_process_workers),
        conc_unit_test(test_conc_worker_processes),
        conc_unit_test(test_heartbeat_keeps_long_task),
        conc_unit_test(test_held_batch_not_robbed),
        conc_unit_test(test_held_go_to_idle_thread),
        conc_unit_test(test_stop_hands_back_batch),
        conc_unit_test(test_acked_submits_survive_kill),
        conc_unit_test(test_submitter_dies_results_expire),
    };
    return dist_fixture_run("test_dist_scale", "s", tests,
                            sizeof tests / sizeof *tests);
}
