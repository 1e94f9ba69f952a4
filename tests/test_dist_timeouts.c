/* Scale-out over Redis: every blocking call of conc/dist.h returns within
 * its timeout (or its documented bound) while the server does not answer.
 * The server is stopped with SIGSTOP, so that connections hang rather than
 * fail (a killed server refuses at once, which proves nothing about the
 * waits); each test's teardown sends SIGCONT, so no test leaves it stopped.
 * Time checks are one-sided: a call may be quicker, never much slower. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc_test.h"
#include "dist_fixture.h"
#include "dist/executor_internal.h"

#define LONG_WAIT 20.0
/* The short timeout given to calls while the server is stopped, and how
 * much later than it they may return (loaded machines, sanitizers). */
#define SHORT 0.2
#define SLACK 1.3
/* The bounds of the calls that take no timeout, from conc/dist.h: a
 * cancel, a free, and the round a worker finishes before it sees its
 * timeout or a stop. */
#define CANCEL_BOUND 2.0
#define FREE_BOUND   2.0
#define WORKER_ROUND 2.0
/* How much later than its timeout a worker's run may return while the
 * server hangs (its calls end half a second after the deadline, then
 * those that follow get a fifth of a second each). */
#define RUN_SLACK 1.5
/* How long another thread's submit holds the connection while the server
 * is stopped (longer than CANCEL_BOUND + SLACK). */
#define HOLD 4.0

/* Stops the server: it keeps its connections and accepts new ones (the
 * kernel completes the handshakes), but answers nothing. */
static void
freeze(void)
{
    assert_int_equal(kill(dist_server.pid, SIGSTOP), 0);
}

static void
thaw(void)
{
    if (dist_have_server && dist_server.pid > 0)
        kill(dist_server.pid, SIGCONT);
}

static int
thaw_teardown(void **state)
{
    thaw();
    return conc_test_teardown(state);
}

#define timeout_test(f)                                                        \
    cmocka_unit_test_setup_teardown(f, conc_test_setup, thaw_teardown)

/* Submits square(v) and waits for its result. */
static long
round_trip(conc_dist_executor *dx, long v)
{
    conc_future *f = dist_submit_long(dx, "square", v, LONG_WAIT);
    long r = dist_long_result(f, LONG_WAIT);
    conc_future_free(f);
    return r;
}

/* ---- Map ----------------------------------------------------------------- */

/* A generator of the longs from ctx[0] to ctx[1] - 1 (a map keeps the
 * items it read itself). */
static int
next_long(void *ctx, conc_buf *item)
{
    long *left = ctx; /* [next, end] */
    if (left[0] == left[1])
        return 0;
    long v = left[0]++;
    return conc_buf_append(item, &v, sizeof v) < 0 ? CONC_ENOMEM : 1;
}

struct drained_arg {
    const char *queue;
};

/* Whether the queue holds no task, delivered or not. */
static int
queue_drained(void *arg)
{
    struct drained_arg *a = arg;
    conc_dist_status st;
    return conc_dist_status_get(dist_server.url, DIST_PASSWORD, a->queue,
                                LONG_WAIT, &st) == 0 &&
           st.queued == 0 && st.in_flight == 0;
}

/* A map whose batch of submits hangs on a stopped server returns
 * CONC_ETIMEDOUT within its timeout (it gave a started batch 5 s), and
 * once the server goes on every item comes back once, in order, and no
 * task stays in the queue (a copy sent twice is skipped or run again). */
static void
map_while_frozen(const conc_items *items, long n)
{
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    pid_t peer = dist_start_peer(q, 2, "5", 5, 0);
    assert_int_equal(round_trip(dx, 7), 49); /* the worker is up */
    conc_map_opts mo = {.max_in_flight = 16};
    conc_map_iter *m = NULL;
    assert_conc_ok(conc_dist_map(dx, "square", items, &mo, &m));
    freeze();
    const void *d = NULL;
    size_t len = 0;
    for (int i = 0; i < 2; i++) {
        double t0 = conc_monotonic();
        assert_conc(conc_map_next(m, SHORT, &d, &len), CONC_ETIMEDOUT);
        assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    }
    thaw();
    for (long i = 0; i < n; i++) {
        assert_conc_ok(conc_map_next(m, LONG_WAIT, &d, &len));
        assert_int_equal(dist_long_of(d, len), i * i);
        assert_int_equal(conc_map_index(m), (size_t)i);
    }
    assert_conc(conc_map_next(m, LONG_WAIT, &d, &len), CONC_ECLOSED);
    conc_map_free(m);
    struct drained_arg da = {q};
    assert_true(conc_test_wait_until(queue_drained, &da, LONG_WAIT));
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

static void
test_map_next_within_timeout(void **state)
{
    (void)state;
    DIST_NEED_SERVER();
    enum { N = 40 };
    static long in[N];
    for (long i = 0; i < N; i++)
        in[i] = i;
    conc_items items = CONC_ITEMS(in, N);
    map_while_frozen(&items, N);
}

static void
test_map_generator_within_timeout(void **state)
{
    (void)state;
    DIST_NEED_SERVER();
    long range[2] = {0, 40};
    conc_items items = {.next = next_long, .ctx = range};
    map_while_frozen(&items, range[1]);
}

/* Freeing a map whose batch is unconfirmed cancels within the cancel's
 * bound; once the server goes on, the tasks it could not cancel complete
 * (the watcher sent them again), so nothing stays in flight. */
static void
test_map_free_unconfirmed(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    pid_t peer = dist_start_peer(q, 2, "5", 5, 0);
    assert_int_equal(round_trip(dx, 3), 9);
    static long in[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    conc_items items = CONC_ITEMS(in, 8);
    conc_map_iter *m = NULL;
    assert_conc_ok(conc_dist_map(dx, "square", &items, NULL, &m));
    freeze();
    assert_conc(conc_map_next(m, SHORT, NULL, NULL), CONC_ETIMEDOUT);
    double t0 = conc_monotonic();
    conc_map_free(m);
    assert_true(conc_monotonic() - t0 < CANCEL_BOUND + SLACK);
    thaw();
    assert_conc_ok(conc_dist_shutdown(dx, 1, 0, LONG_WAIT));
    conc_dist_executor_free(dx);
    dist_stop_peer(peer);
}

/* ---- Connecting ------------------------------------------------------------
 */

/* The constructors wait for a stopped server up to connect_timeout; with
 * retry_on_startup they then succeed and go on trying. */
static void
test_connect_bounded(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    freeze();
    conc_dist_opts o = {.connect_timeout = SHORT};
    conc_dist_executor *dx = NULL;
    double t0 = conc_monotonic();
    assert_conc(
        conc_dist_executor_new(dist_server.url, DIST_PASSWORD, q, &o, &dx),
        CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    o.retry_on_startup = 1;
    t0 = conc_monotonic();
    assert_conc_ok(
        conc_dist_executor_new(dist_server.url, DIST_PASSWORD, q, &o, &dx));
    assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    conc_dist_worker_opts wo = {.connect_timeout = SHORT};
    conc_dist_worker *w = NULL;
    t0 = conc_monotonic();
    assert_conc(
        conc_dist_worker_new(dist_server.url, DIST_PASSWORD, q, &wo, &w),
        CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    wo.retry_on_startup = 1;
    t0 = conc_monotonic();
    assert_conc_ok(
        conc_dist_worker_new(dist_server.url, DIST_PASSWORD, q, &wo, &w));
    assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    conc_dist_worker_free(w);
    thaw(); /* test_free_bounded times a free */
    conc_dist_executor_free(dx);
}

/* ---- Submitting and waiting ------------------------------------------------
 */

static void
test_submit_bounded(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    freeze();
    long v = 5;
    conc_future *f = NULL;
    double t0 = conc_monotonic();
    assert_conc(conc_dist_submit(dx, "square", &v, sizeof v, SHORT, &f),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    /* Again on the connection the first one dropped: a new one hangs in
     * its AUTH. */
    t0 = conc_monotonic();
    assert_conc(conc_dist_submit(dx, "square", &v, sizeof v, SHORT, &f),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    static long in[300];
    static conc_future *fs[300];
    size_t n = 99;
    conc_items items = CONC_ITEMS(in, 300);
    t0 = conc_monotonic();
    assert_conc(conc_dist_submit_many(dx, "square", &items, SHORT, fs, &n),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    assert_int_equal(n, 0);
    thaw();
    conc_dist_executor_free(dx);
}

struct long_submit {
    conc_dist_executor *dx;
    int r;
};

static int
long_submit_main(void *arg)
{
    struct long_submit *ls = arg;
    long v = 1;
    conc_future *f = NULL;
    ls->r = conc_dist_submit(ls->dx, "square", &v, sizeof v, HOLD, &f);
    if (ls->r == 0)
        conc_future_free(f);
    return 0;
}

static int
cmd_lock_held(void *arg)
{
    conc_dist_executor *dx = arg;
    return conc_lock_locked(dx->cmd_lock) == 1;
}

/* A submit with a short timeout, and a cancel, return on time while
 * another thread's submit, with a longer timeout, holds the command
 * connection. */
static void
test_behind_another_submit(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL); /* no worker */
    long w = 3;
    conc_future *g = NULL;
    assert_conc_ok(conc_dist_submit(dx, "square", &w, sizeof w, LONG_WAIT, &g));
    freeze();
    struct long_submit ls = {.dx = dx};
    conc_thread *t = NULL;
    assert_conc_ok(conc_thread_start(long_submit_main, &ls, NULL, &t));
    assert_true(conc_test_wait_until(cmd_lock_held, dx, LONG_WAIT));
    long v = 2;
    conc_future *f = NULL;
    double t0 = conc_monotonic();
    assert_conc(conc_dist_submit(dx, "square", &v, sizeof v, SHORT, &f),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    t0 = conc_monotonic();
    /* Neither the connection nor the server comes: not cancelled. */
    assert_int_equal(conc_future_cancel(g), 0);
    assert_true(conc_monotonic() - t0 < CANCEL_BOUND + SLACK);
    assert_true(conc_monotonic() - t0 < HOLD);
    thaw();
    assert_conc_ok(conc_thread_join(t, LONG_WAIT, NULL));
    conc_thread_free(t);
    conc_future_free(g);
    conc_dist_executor_free(dx);
}

/* Waits on a future are local; shutdown's wait and its claims keep its
 * timeout. */
static void
test_wait_shutdown_bounded(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL); /* no worker */
    long v = 4;
    conc_future *f = NULL, *g = NULL;
    assert_conc_ok(conc_dist_submit(dx, "square", &v, sizeof v, LONG_WAIT, &f));
    assert_conc_ok(conc_dist_submit(dx, "square", &v, sizeof v, LONG_WAIT, &g));
    freeze();
    const void *d;
    size_t len;
    double t0 = conc_monotonic();
    assert_conc(conc_future_result(f, SHORT, &d, &len), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    t0 = conc_monotonic();
    assert_conc(conc_dist_shutdown(dx, 1, 0, SHORT), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    t0 = conc_monotonic();
    assert_conc_ok(conc_dist_shutdown(dx, 1, 1, SHORT));
    assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    assert_true(conc_future_cancelled(f));
    assert_true(conc_future_cancelled(g));
    conc_future_free(f);
    conc_future_free(g);
    thaw(); /* test_free_bounded times a free */
    conc_dist_executor_free(dx);
}

/* Freeing an executor with many futures in flight while the server hangs
 * takes FREE_BOUND at most, and cancels them all. */
static void
test_free_bounded(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    enum { N = DIST_ZEROS_MAX };
    static conc_future *fs[N];
    dist_submit_zeros(dx, N, LONG_WAIT, fs);
    freeze();
    dist_free_cancels(dx, FREE_BOUND + SLACK, fs, N);
}

/* ---- Status and workers ----------------------------------------------------
 */

static void
test_status_bounded(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    freeze();
    conc_dist_status st = {.queued = 77};
    double t0 = conc_monotonic();
    assert_conc(
        conc_dist_status_get(dist_server.url, DIST_PASSWORD, q, SHORT, &st),
        CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 < SHORT + SLACK);
    assert_int_equal(st.queued, 77); /* unchanged on failure */
}

struct run_arg {
    conc_dist_worker *w;
    double timeout;
    int r;
    conc_event *started;
};

static int
run_main(void *arg)
{
    struct run_arg *a = arg;
    conc_event_set(a->started);
    a->r = conc_dist_worker_run(a->w, a->timeout);
    return 0;
}

/* conc_dist_worker_run returns within its timeout plus RUN_SLACK, and
 * within one round of conc_dist_worker_stop, while the server hangs. */
static void
test_worker_run_stop_bounded(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    conc_dist_worker_opts wo = {.threads = 2};
    conc_dist_worker *w = NULL;
    assert_conc_ok(
        conc_dist_worker_new(dist_server.url, DIST_PASSWORD, q, &wo, &w));
    freeze();
    double t0 = conc_monotonic();
    assert_conc_ok(conc_dist_worker_run(w, SHORT));
    assert_true(conc_monotonic() - t0 < SHORT + RUN_SLACK);
    struct run_arg a = {.w = w, .timeout = CONC_FOREVER, .r = 1};
    assert_conc_ok(conc_event_new(NULL, &a.started));
    conc_thread *t = NULL;
    assert_conc_ok(conc_thread_start(run_main, &a, NULL, &t));
    assert_conc_ok(conc_event_wait(a.started, LONG_WAIT));
    t0 = conc_monotonic();
    assert_conc_ok(conc_dist_worker_stop(w));
    assert_conc_ok(conc_thread_join(t, LONG_WAIT, NULL));
    assert_true(conc_monotonic() - t0 < WORKER_ROUND + SLACK);
    assert_conc_ok(a.r);
    conc_thread_free(t);
    conc_event_free(a.started);
    conc_dist_worker_free(w);
}

/* ---- A submit that fails after sending -------------------------------------
 */

static atomic_int counted;

/* Counts its runs. */
static int
count_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    atomic_fetch_add(&counted, 1);
    return conc_buf_append(result, "k", 1);
}

static int
nothing_in_flight(void *arg)
{
    conc_dist_executor *dx = arg;
    conc_cond_acquire(dx->cond, CONC_FOREVER);
    int none = dx->in_flight == 0;
    conc_cond_release(dx->cond);
    return none;
}

/* A submit that times out after its task was sent fails, and its task
 * does not run: the server executes the XADD once it answers again, but
 * the task's result key is claimed first, so the worker skips it. Only
 * the task submitted after it runs. */
static void
test_submit_timeout_does_not_run(void **state)
{
    (void)state;
    char q[64];
    dist_fixture_queue(q, sizeof q);
    atomic_store(&counted, 0);
    conc_dist_executor *dx = dist_new_executor(q, NULL);
    freeze();
    long v = 1;
    conc_future *f = NULL;
    assert_conc(conc_dist_submit(dx, "count", &v, sizeof v, SHORT, &f),
                CONC_ETIMEDOUT);
    thaw();
    /* The claim is made once the server answers (its job then leaves). */
    assert_true(conc_test_wait_until(nothing_in_flight, dx, LONG_WAIT));
    conc_dist_worker *w = NULL;
    assert_conc_ok(
        conc_dist_worker_new(dist_server.url, DIST_PASSWORD, q, NULL, &w));
    struct run_arg a = {.w = w, .timeout = CONC_FOREVER, .r = 1};
    assert_conc_ok(conc_event_new(NULL, &a.started));
    conc_thread *t = NULL;
    assert_conc_ok(conc_thread_start(run_main, &a, NULL, &t));
    /* The worker reads the stream in order: the first task comes first. */
    assert_conc_ok(conc_dist_submit(dx, "count", &v, sizeof v, LONG_WAIT, &f));
    const void *d = NULL;
    size_t len = 0;
    assert_conc_ok(conc_future_result(f, LONG_WAIT, &d, &len));
    assert_int_equal(len, 1);
    conc_future_free(f);
    assert_conc_ok(conc_dist_worker_stop(w));
    assert_conc_ok(conc_thread_join(t, LONG_WAIT, NULL));
    assert_conc_ok(a.r);
    assert_int_equal(atomic_load(&counted), 1);
    conc_thread_free(t);
    conc_event_free(a.started);
    conc_dist_worker_free(w);
    conc_dist_executor_free(dx);
}

/* ---- Setup --------------------------------------------------------------- */

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        timeout_test(test_map_next_within_timeout),
        timeout_test(test_map_generator_within_timeout),
        timeout_test(test_map_free_unconfirmed),
        timeout_test(test_connect_bounded),
        timeout_test(test_submit_bounded),
        timeout_test(test_behind_another_submit),
        timeout_test(test_wait_shutdown_bounded),
        timeout_test(test_free_bounded),
        timeout_test(test_status_bounded),
        timeout_test(test_worker_run_stop_bounded),
        timeout_test(test_submit_timeout_does_not_run),
    };
    /* Once for the program: the registry lives as long as it. */
    if (conc_dist_register("count", count_task) < 0)
        return 1;
    return dist_fixture_run("test_dist_timeouts", "to", tests,
                            sizeof tests / sizeof *tests);
}
