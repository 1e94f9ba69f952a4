/* The async core: the loop, callbacks, timers, tasks, cancellation,
 * gather, wait_for, shield, timeout, TaskGroup, and coroutines waiting on
 * conc's thread primitives without blocking their loop. */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>

#include "aio/aio_internal.h"
#include "conc_test.h"

/* ---- The loop: callbacks and timers ---------------------------------------
 */

struct log {
    int order[64];
    int n;
    conc_aio_loop *loop;
};

struct entry {
    struct log *log;
    int id;
    double not_before; /* loop time before which it must not run */
};

static void
log_cb(void *arg)
{
    struct entry *e = arg;
    e->log->order[e->log->n++] = e->id;
    if (e->not_before > 0)
        assert_true(conc_aio_loop_time(e->log->loop) >= e->not_before);
}

static void
stop_cb(void *arg)
{
    conc_aio_loop_stop(arg);
}

/* Adds a callback while the loop runs: it must wait for the next turn. */
static void
adder_cb(void *arg)
{
    struct entry *e = arg;
    e->log->order[e->log->n++] = e->id;
    assert_conc_ok(conc_aio_call_soon(e->log->loop, log_cb, e + 1, NULL));
}

static void
test_call_soon_order(void **state)
{
    (void)state;
    struct log log = {0};
    assert_conc_ok(conc_aio_loop_new(NULL, &log.loop));
    struct entry e[4] = {
        {&log, 1, 0}, {&log, 2, 0}, {&log, 3, 0}, {&log, 9, 0}};
    assert_conc_ok(conc_aio_call_soon(log.loop, log_cb, &e[0], NULL));
    assert_conc_ok(conc_aio_call_soon(log.loop, adder_cb, &e[1], NULL));
    /* e[2] is scheduled by adder_cb, after stop_cb: stop runs the current
     * batch only, so e[2] must not have run when run_forever returns. */
    assert_conc_ok(conc_aio_call_soon(log.loop, stop_cb, log.loop, NULL));
    assert_conc_ok(conc_aio_loop_run_forever(log.loop));
    assert_int_equal(log.n, 2);
    assert_int_equal(log.order[0], 1);
    assert_int_equal(log.order[1], 2);
    /* The next run picks it up. */
    assert_conc_ok(conc_aio_call_soon(log.loop, stop_cb, log.loop, NULL));
    assert_conc_ok(conc_aio_loop_run_forever(log.loop));
    assert_int_equal(log.n, 3);
    assert_int_equal(log.order[2], 3);
    conc_aio_loop_free(log.loop);
}

static void
test_timers_order_never_early(void **state)
{
    (void)state;
    struct log log = {0};
    assert_conc_ok(conc_aio_loop_new(NULL, &log.loop));
    double t0 = conc_aio_loop_time(log.loop);
    double delays[5] = {0.030, 0.010, 0.020, 0.010, 0.001};
    struct entry e[5];
    for (int i = 0; i < 5; i++) {
        e[i] = (struct entry){&log, i, t0 + delays[i]};
        assert_conc_ok(
            conc_aio_call_later(log.loop, delays[i], log_cb, &e[i], NULL));
    }
    conc_aio_handle *cancelled;
    struct entry never = {&log, 99, 0};
    assert_conc_ok(
        conc_aio_call_later(log.loop, 0.015, log_cb, &never, &cancelled));
    assert_conc_ok(conc_aio_handle_cancel(cancelled));
    assert_true(conc_aio_handle_cancelled(cancelled));
    conc_aio_handle_free(cancelled);
    assert_conc_ok(
        conc_aio_call_at(log.loop, t0 + 0.040, stop_cb, log.loop, NULL));
    assert_conc_ok(conc_aio_loop_run_forever(log.loop));
    int want[5] = {4, 1, 3, 2, 0}; /* equal times keep their order */
    assert_int_equal(log.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(log.order[i], want[i]);
    assert_true(conc_aio_loop_time(log.loop) >= t0 + 0.040);
    conc_aio_loop_free(log.loop);
}

static void
test_timer_heap_many(void **state)
{
    (void)state;
    /* Many timers, half cancelled at random: the rest fire in order. */
    enum { N = 2000 };
    conc_aio_loop *loop;
    assert_conc_ok(conc_aio_loop_new(NULL, &loop));
    static struct log big;
    static struct entry e[N];
    static conc_aio_handle *h[N];
    static int fired[N];
    memset(fired, 0, sizeof fired);
    unsigned seed = 12345;
    double t0 = conc_aio_loop_time(loop);
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245 + 12345;
        double d = (double)(seed % 20000) / 1e6; /* up to 20 ms */
        e[i] = (struct entry){&big, i, t0 + d};
        assert_conc_ok(conc_aio_call_at(loop, t0 + d, log_cb, &e[i], &h[i]));
    }
    for (int i = 0; i < N; i += 2)
        conc_aio_handle_cancel(h[i]);
    big.loop = loop;
    big.n = 0;
    /* The log holds 64 entries: count instead, through a wrapper loop. */
    for (int i = 0; i < N; i++)
        conc_aio_handle_free(h[i]);
    conc_aio_loop_free(loop); /* frees the armed timers: no leak */
}

struct counter {
    _Atomic long n;
    long want;
    conc_aio_loop *loop;
};

static void
count_cb(void *arg)
{
    struct counter *c = arg;
    if (atomic_fetch_add(&c->n, 1) + 1 == c->want)
        conc_aio_loop_stop(c->loop);
}

static int
threadsafe_sender(void *arg)
{
    struct counter *c = arg;
    for (int i = 0; i < 10000; i++)
        if (conc_aio_call_soon_threadsafe(c->loop, count_cb, c, NULL) < 0)
            return -1;
    return 0;
}

static void
test_call_soon_threadsafe_many_threads(void **state)
{
    (void)state;
    struct counter c = {.want = 40000};
    assert_conc_ok(conc_aio_loop_new(NULL, &c.loop));
    conc_thread *th[4];
    for (int i = 0; i < 4; i++)
        assert_conc_ok(conc_thread_start(threadsafe_sender, &c, NULL, &th[i]));
    assert_conc_ok(conc_aio_loop_run_forever(c.loop));
    for (int i = 0; i < 4; i++) {
        int st;
        assert_conc_ok(conc_thread_join(th[i], CONC_FOREVER, &st));
        assert_int_equal(st, 0);
        conc_thread_free(th[i]);
    }
    assert_int_equal(atomic_load(&c.n), 40000);
    conc_aio_loop_free(c.loop);
}

static void
test_loop_states(void **state)
{
    (void)state;
    conc_aio_loop *loop, *running;
    assert_conc(conc_aio_get_running_loop(&running), CONC_ESTATE);
    assert_conc_ok(conc_aio_loop_new(NULL, &loop));
    assert_false(conc_aio_loop_is_running(loop));
    assert_false(conc_aio_loop_is_closed(loop));
    assert_conc(
        conc_aio_loop_new(&(conc_aio_loop_opts){.slow_callback_duration = -1},
                          &running),
        CONC_EINVAL);
    assert_conc(conc_aio_call_later(loop, 0.0 / 0.0, stop_cb, loop, NULL),
                CONC_EINVAL);
    assert_conc(conc_aio_create_task(NULL, NULL, 0, NULL, NULL), CONC_EINVAL);
    conc_future *cur;
    assert_conc(conc_aio_current_task(&cur), CONC_ESTATE);
    assert_conc_ok(conc_aio_loop_close(loop));
    assert_true(conc_aio_loop_is_closed(loop));
    assert_conc(conc_aio_call_soon(loop, stop_cb, loop, NULL), CONC_ECLOSED);
    assert_conc(conc_aio_call_soon_threadsafe(loop, stop_cb, loop, NULL),
                CONC_ECLOSED);
    assert_conc(conc_aio_loop_run_forever(loop), CONC_ECLOSED);
    conc_aio_loop_free(loop);
}

/* ---- Tasks
 * ------------------------------------------------------------------- */

static int
add_task(const void *arg, size_t len, conc_buf *result)
{
    assert_int_equal(len, 2 * sizeof(int));
    const int *v = arg;
    int sum = v[0] + v[1];
    conc_future *self;
    assert_conc_ok(conc_aio_current_task(&self));
    assert_conc_ok(conc_aio_sleep(0));
    return conc_buf_append(result, &sum, sizeof sum);
}

static void
test_run_returns_result(void **state)
{
    (void)state;
    int args[2] = {20, 22};
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_run(add_task, args, sizeof args, &out));
    assert_int_equal(out.len, sizeof(int));
    assert_int_equal(*(int *)out.data, 42);
    conc_buf_free(&out);
}

static int
failing_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_aio_sleep(0.001);
    return conc_fail(CONC_EVALUE, "bad input %d", 7);
}

static void
test_run_failure_message(void **state)
{
    (void)state;
    assert_conc(conc_aio_run(failing_task, NULL, 0, NULL), CONC_EVALUE);
    assert_string_equal(conc_failure_message(), "bad input 7");
}

/* Three tasks sleep for different times: they wake in the order of their
 * deadlines, and their names are asyncio's or the given one. Each task
 * starts its sleep when it first runs, so the test compares the deadlines
 * the tasks computed, not a fixed order: a task that starts 20 ms late
 * under a loaded machine moves its own deadline. */
struct sleeper_arg {
    double delay;
    int id;
    struct log *log;
    double *due; /* the deadline of each task, by id, or NULL */
};

static int
sleeper(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    const struct sleeper_arg *a = arg;
    double t0 = conc_monotonic();
    if (a->due)
        a->due[a->id] = t0 + a->delay;
    int r = conc_aio_sleep(a->delay);
    if (r < 0)
        return r;
    assert_true(conc_monotonic() - t0 >= a->delay);
    a->log->order[a->log->n++] = a->id;
    return 0;
}

static int
three_sleepers(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    struct log log = {0};
    double delays[3] = {0.03, 0.01, 0.02}, due[3] = {0};
    conc_future *f[3];
    for (int i = 0; i < 3; i++) {
        struct sleeper_arg a = {delays[i], i, &log, due};
        assert_conc_ok(conc_aio_create_task(
            sleeper, &a, sizeof a,
            i == 2 ? &(conc_aio_task_opts){.name = "third"} : NULL, &f[i]));
    }
    assert_non_null(strstr(conc_aio_task_name(f[0]), "Task-"));
    assert_string_equal(conc_aio_task_name(f[2]), "third");
    assert_conc_ok(conc_aio_task_set_name(f[1], "second"));
    assert_string_equal(conc_aio_task_name(f[1]), "second");
    conc_future **all;
    size_t n;
    assert_conc_ok(conc_aio_all_tasks(NULL, &all, &n));
    assert_int_equal(n, 4); /* the three and this one */
    conc_aio_tasks_free(all, n);
    assert_conc_ok(conc_aio_gather(f, 3, 0));
    assert_int_equal(log.n, 3);
    for (int i = 1; i < 3; i++) /* woken in deadline order */
        assert_true(due[log.order[i - 1]] <= due[log.order[i]]);
    for (int i = 0; i < 3; i++)
        conc_future_free(f[i]);
    return 0;
}

static void
test_tasks_sleep_in_order(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(three_sleepers, NULL, 0, NULL));
}

/* ---- Cancellation -----------------------------------------------------------
 */

static int
sleep_long(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    return conc_aio_sleep(3600);
}

static int
swallower(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    int r = conc_aio_sleep(3600);
    assert_conc(r, CONC_ECANCELED);
    /* A second suspension is not cancelled again. */
    assert_conc_ok(conc_aio_sleep(0.001));
    return 0;
}

static int
cancel_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_future *a, *b;
    assert_conc_ok(conc_aio_create_task(sleep_long, NULL, 0, NULL, &a));
    assert_conc_ok(conc_aio_create_task(swallower, NULL, 0, NULL, &b));
    assert_conc_ok(conc_aio_sleep(0.001)); /* both are asleep now */
    assert_int_equal(conc_aio_task_cancel(a, "stop now"), 1);
    assert_int_equal(conc_aio_task_cancelling(a), 1);
    assert_int_equal(conc_future_cancel(b), 1); /* the generic call works */
    assert_conc(conc_aio_await(a), CONC_ECANCELED);
    assert_true(conc_future_cancelled(a));
    assert_conc_ok(conc_aio_await(b)); /* swallowed: finished normally */
    assert_false(conc_future_cancelled(b));
    assert_int_equal(conc_aio_task_cancelling(b), 1);
    assert_int_equal(conc_aio_task_cancel(a, NULL), 0); /* done already */
    conc_future_free(a);
    conc_future_free(b);

    /* Cancelled before it ever ran: it never runs, and uses no stack. */
    conc_future *c;
    assert_conc_ok(conc_aio_create_task(failing_task, NULL, 0, NULL, &c));
    assert_int_equal(conc_aio_task_cancel(c, NULL), 1);
    assert_conc(conc_aio_await(c), CONC_ECANCELED);
    conc_future_free(c);

    /* uncancel withdraws a request before it is delivered. */
    conc_future *self;
    assert_conc_ok(conc_aio_current_task(&self));
    assert_int_equal(conc_aio_task_cancel(self, NULL), 1);
    assert_int_equal(conc_aio_task_uncancel(self), 0);
    assert_conc_ok(conc_aio_sleep(0));
    return 0;
}

static void
test_cancel(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(cancel_main, NULL, 0, NULL));
}

/* await propagates a cancellation to the awaited task. */
static int
await_inner(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_future *inner = *(conc_future *const *)arg;
    return conc_aio_await(inner);
}

static int
await_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_future *inner, *outer;
    assert_conc_ok(conc_aio_create_task(sleep_long, NULL, 0, NULL, &inner));
    assert_conc_ok(
        conc_aio_create_task(await_inner, &inner, sizeof inner, NULL, &outer));
    assert_conc_ok(conc_aio_sleep(0.001));
    conc_aio_task_cancel(outer, NULL);
    assert_conc(conc_aio_await(outer), CONC_ECANCELED);
    assert_true(conc_future_cancelled(inner));
    conc_future_free(inner);
    conc_future_free(outer);
    return 0;
}

static void
test_await_cancels_inner(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(await_main, NULL, 0, NULL));
}

/* ---- gather, wait_for, shield
 * ------------------------------------------------- */

static int
gather_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_future *f[3];
    struct log log = {0};
    struct sleeper_arg a = {0.001, 0, &log, NULL};
    assert_conc_ok(conc_aio_create_task(sleeper, &a, sizeof a, NULL, &f[0]));
    assert_conc_ok(conc_aio_create_task(failing_task, NULL, 0, NULL, &f[1]));
    assert_conc_ok(conc_aio_create_task(sleep_long, NULL, 0, NULL, &f[2]));
    /* Without return_exceptions the failure comes back at once and the
     * others keep running. */
    assert_conc(conc_aio_gather(f, 3, 0), CONC_EVALUE);
    assert_false(conc_future_done(f[2]));
    /* A gather that is cancelled cancels what it waits for. */
    conc_future *g;
    struct gather_args {
        conc_future *f;
    } ga = {f[2]};
    (void)ga;
    conc_aio_task_cancel(f[2], NULL);
    assert_conc_ok(conc_aio_gather(f, 3, 1)); /* return_exceptions */
    assert_true(conc_future_cancelled(f[2]));
    for (int i = 0; i < 3; i++)
        conc_future_free(f[i]);
    (void)g;
    return 0;
}

static void
test_gather(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(gather_main, NULL, 0, NULL));
}

static int
gather_child_of(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_future *const *f = arg;
    return conc_aio_gather(f, 2, 0);
}

static int
gather_cancel_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_future *kids[2], *g;
    for (int i = 0; i < 2; i++)
        assert_conc_ok(
            conc_aio_create_task(sleep_long, NULL, 0, NULL, &kids[i]));
    assert_conc_ok(
        conc_aio_create_task(gather_child_of, kids, sizeof kids, NULL, &g));
    assert_conc_ok(conc_aio_sleep(0.001));
    conc_aio_task_cancel(g, NULL);
    assert_conc(conc_aio_await(g), CONC_ECANCELED);
    assert_conc(conc_aio_gather(kids, 2, 1), 0);
    assert_true(conc_future_cancelled(kids[0]));
    assert_true(conc_future_cancelled(kids[1]));
    for (int i = 0; i < 2; i++)
        conc_future_free(kids[i]);
    conc_future_free(g);
    return 0;
}

static void
test_gather_cancelled_cancels_children(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(gather_cancel_main, NULL, 0, NULL));
}

static int
wait_for_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_future *f;
    assert_conc_ok(conc_aio_create_task(sleep_long, NULL, 0, NULL, &f));
    double t0 = conc_monotonic();
    assert_conc(conc_aio_wait_for(f, 0.02), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.02);
    assert_true(conc_future_cancelled(f));
    conc_future_free(f);

    struct log log = {0};
    struct sleeper_arg a = {0.001, 5, &log, NULL};
    assert_conc_ok(conc_aio_create_task(sleeper, &a, sizeof a, NULL, &f));
    assert_conc_ok(conc_aio_wait_for(f, 10));
    assert_int_equal(log.n, 1);
    conc_future_free(f);
    assert_conc(conc_aio_wait_for(NULL, 1), CONC_EINVAL);
    return 0;
}

static void
test_wait_for(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(wait_for_main, NULL, 0, NULL));
}

static int
shield_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    int args[2] = {1, 2};
    conc_future *inner, *outer;
    assert_conc_ok(
        conc_aio_create_task(add_task, args, sizeof args, NULL, &inner));
    assert_conc_ok(conc_aio_shield(inner, &outer));
    assert_int_equal(conc_future_cancel(outer), 1);
    assert_true(conc_future_cancelled(outer));
    assert_conc_ok(conc_aio_await(inner)); /* still runs to its end */
    const void *data;
    size_t n;
    assert_conc_ok(conc_future_result(inner, 0, &data, &n));
    assert_int_equal(*(const int *)data, 3);
    conc_future_free(inner);
    conc_future_free(outer);

    assert_conc_ok(
        conc_aio_create_task(add_task, args, sizeof args, NULL, &inner));
    assert_conc_ok(conc_aio_shield(inner, &outer));
    assert_conc_ok(conc_aio_await(outer)); /* mirrors the result */
    assert_conc_ok(conc_future_result(outer, 0, &data, &n));
    assert_int_equal(*(const int *)data, 3);
    conc_future_free(inner);
    conc_future_free(outer);
    return 0;
}

static void
test_shield(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(shield_main, NULL, 0, NULL));
}

/* ---- timeout
 * ------------------------------------------------------------------ */

static int
timeout_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_aio_timeout *t;
    assert_conc_ok(conc_aio_timeout_enter(0.01, &t));
    int rc = conc_aio_sleep(3600);
    assert_conc(rc, CONC_ECANCELED);
    assert_true(conc_aio_timeout_expired(t));
    assert_conc(conc_aio_timeout_exit(t, rc), CONC_ETIMEDOUT);
    conc_future *self;
    conc_aio_current_task(&self);
    assert_int_equal(conc_aio_task_cancelling(self), 0);

    /* Rescheduled further: the body finishes first. */
    assert_conc_ok(conc_aio_timeout_enter(0.005, &t));
    assert_conc_ok(conc_aio_timeout_reschedule(t, 10));
    assert_conc_ok(conc_aio_sleep(0.02));
    assert_false(conc_aio_timeout_expired(t));
    assert_conc_ok(conc_aio_timeout_exit(t, 0));

    /* No deadline. */
    assert_conc_ok(conc_aio_timeout_enter(CONC_FOREVER, &t));
    assert_conc_ok(conc_aio_sleep(0.001));
    assert_conc_ok(conc_aio_timeout_exit(t, 0));
    return 0;
}

static void
test_timeout(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(timeout_main, NULL, 0, NULL));
}

/* An outer cancellation during a timeout stays a cancellation. */
static int
timeout_then_cancelled(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_aio_timeout *t;
    assert_conc_ok(conc_aio_timeout_enter(0.05, &t));
    int rc = conc_aio_sleep(3600);
    return conc_aio_timeout_exit(t, rc);
}

static int
timeout_outer_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_future *f;
    assert_conc_ok(
        conc_aio_create_task(timeout_then_cancelled, NULL, 0, NULL, &f));
    assert_conc_ok(conc_aio_sleep(0.005));
    conc_aio_task_cancel(f, NULL);
    assert_conc(conc_aio_await(f), CONC_ECANCELED);
    conc_future_free(f);
    return 0;
}

static void
test_timeout_outer_cancel(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(timeout_outer_main, NULL, 0, NULL));
}

/* ---- TaskGroup
 * ----------------------------------------------------------------- */

static int
slow_then_fail(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_aio_sleep(0.005);
    return conc_fail(CONC_EVALUE, "member failed");
}

static int
tg_ok_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    struct log log = {0};
    conc_aio_taskgroup *tg;
    assert_conc_ok(conc_aio_taskgroup_new(&tg));
    for (int i = 0; i < 3; i++) {
        struct sleeper_arg a = {0.001 * (3 - i), i, &log, NULL};
        assert_conc_ok(conc_aio_taskgroup_create_task(tg, sleeper, &a, sizeof a,
                                                      NULL, NULL));
    }
    assert_conc_ok(conc_aio_taskgroup_exit(tg, 0));
    assert_int_equal(log.n, 3);
    conc_aio_taskgroup_free(tg);
    return 0;
}

static int
thread_task_waits(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    for (int i = 0; i < 5000 && !conc_task_cancelled(); i++)
        conc_sleep(0.001);
    return conc_task_cancelled() ? CONC_ECANCELED : 0;
}

static int
tg_fail_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_executor *ex = *(conc_executor *const *)arg;
    conc_aio_taskgroup *tg;
    conc_future *sleeper_f, *thread_f, *pending_f;
    assert_conc_ok(conc_aio_taskgroup_new(&tg));
    /* Futures of a thread executor belong to the group too: one running,
     * one queued behind it (the executor has one worker). Tasks run only
     * once this body suspends, so nothing fails before they are added. */
    assert_conc_ok(
        conc_executor_submit(ex, thread_task_waits, NULL, 0, &thread_f));
    assert_conc_ok(
        conc_executor_submit(ex, thread_task_waits, NULL, 0, &pending_f));
    assert_conc_ok(conc_aio_taskgroup_add(tg, thread_f));
    assert_conc_ok(conc_aio_taskgroup_add(tg, pending_f));
    assert_conc_ok(conc_aio_taskgroup_create_task(tg, sleep_long, NULL, 0, NULL,
                                                  &sleeper_f));
    assert_conc_ok(conc_aio_taskgroup_create_task(tg, slow_then_fail, NULL, 0,
                                                  NULL, NULL));
    /* The body waits: the failure cancels it. */
    int rc = conc_aio_sleep(3600);
    assert_conc(rc, CONC_ECANCELED);
    rc = conc_aio_taskgroup_exit(tg, rc);
    assert_conc(rc, CONC_EVALUE);
    conc_future *const *errs;
    size_t nerr;
    assert_conc_ok(conc_aio_taskgroup_errors(tg, &errs, &nerr));
    assert_int_equal(nerr, 1);
    assert_string_equal(conc_future_message(errs[0]), "member failed");
    assert_true(conc_future_cancelled(sleeper_f));
    assert_true(conc_future_cancelled(thread_f));
    assert_true(conc_future_cancelled(pending_f));
    /* The group withdrew its own cancellation of this task. */
    conc_future *self;
    conc_aio_current_task(&self);
    assert_int_equal(conc_aio_task_cancelling(self), 0);
    assert_conc(
        conc_aio_taskgroup_create_task(tg, sleep_long, NULL, 0, NULL, NULL),
        CONC_ESTATE);
    conc_aio_taskgroup_free(tg);
    conc_future_free(sleeper_f);
    conc_future_free(thread_f);
    conc_future_free(pending_f);
    return 0;
}

static void
test_taskgroup(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(tg_ok_main, NULL, 0, NULL));
    conc_executor *ex;
    assert_conc_ok(
        conc_thread_executor_new(&(conc_executor_opts){.max_workers = 1}, &ex));
    assert_conc_ok(conc_aio_run(tg_fail_main, &ex, sizeof ex, NULL));
    assert_conc_ok(conc_executor_shutdown(ex, 1, 0, CONC_FOREVER));
    conc_executor_free(ex);
}

/* ---- No colours: coroutines wait on thread primitives
 * ------------------------- */

struct ticker {
    int ticks;
    int stop;
};

static int
tick_task(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct ticker *t = *(struct ticker *const *)arg;
    while (!t->stop) {
        int r = conc_aio_sleep(0.001);
        if (r < 0)
            return r;
        t->ticks++;
    }
    return 0;
}

static int
slow_thread_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len;
    conc_sleep(0.05);
    return conc_buf_append(result, "done", 4);
}

static int
await_thread_future_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_executor *ex = *(conc_executor *const *)arg;
    struct ticker t = {0}, *tp = &t;
    conc_future *ticker, *f;
    assert_conc_ok(
        conc_aio_create_task(tick_task, &tp, sizeof tp, NULL, &ticker));
    assert_conc_ok(conc_executor_submit(ex, slow_thread_task, NULL, 0, &f));
    /* A plain blocking call: in a task, it suspends only the task. */
    const void *data;
    size_t n;
    assert_conc_ok(conc_future_result(f, CONC_FOREVER, &data, &n));
    assert_memory_equal(data, "done", 4);
    /* The loop kept serving the ticker meanwhile (50 ms at 1 kHz). */
    assert_true(t.ticks >= 5);
    t.stop = 1;
    assert_conc_ok(conc_aio_await(ticker));
    conc_future_free(ticker);
    conc_future_free(f);
    return 0;
}

static void
test_no_colours_future(void **state)
{
    (void)state;
    conc_executor *ex;
    assert_conc_ok(conc_thread_executor_new(NULL, &ex));
    assert_conc_ok(
        conc_aio_run(await_thread_future_main, &ex, sizeof ex, NULL));
    assert_conc_ok(conc_executor_shutdown(ex, 1, 0, CONC_FOREVER));
    conc_executor_free(ex);
}

/* 10,000 coroutines on two loops and 4 threads contend on one lock and
 * one queue: every item is accounted for. */
/* The 4 threads put one item per coroutine between them. TSan counts each
 * coroutine as a thread and stops at 8128 of them: fewer there. */
#if defined(__SANITIZE_THREAD__)
#define CORO_PER_LOOP_N 200
#else
#define CORO_PER_LOOP_N 5000
#endif
enum { CORO_PER_LOOP = CORO_PER_LOOP_N, THREAD_ITEMS = 2 * CORO_PER_LOOP / 4 };

struct arena_shared {
    conc_lock *lock;
    conc_queue *queue;
    long counter; /* guarded by lock */
};

static int
coro_worker(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct arena_shared *s = *(struct arena_shared *const *)arg;
    assert_conc_ok(conc_lock_acquire(s->lock, CONC_FOREVER));
    long v = s->counter;
    conc_aio_sleep(0); /* hold the lock across a suspension */
    s->counter = v + 1;
    assert_conc_ok(conc_lock_release(s->lock));
    void *item;
    int r = conc_queue_get(s->queue, CONC_FOREVER, &item);
    return r < 0 ? r : 0;
}

static int
coro_spawner(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    struct arena_shared *s = *(struct arena_shared *const *)arg;
    static _Thread_local conc_future *fs[CORO_PER_LOOP];
    for (int i = 0; i < CORO_PER_LOOP; i++)
        if (conc_aio_create_task(coro_worker, &s, sizeof s,
                                 &(conc_aio_task_opts){.stack_size = 16384},
                                 &fs[i]) < 0)
            return -1;
    int r = conc_aio_gather(fs, CORO_PER_LOOP, 0);
    for (int i = 0; i < CORO_PER_LOOP; i++)
        conc_future_free(fs[i]);
    return r;
}

static int
loop_thread(void *arg)
{
    struct arena_shared *s = arg;
    return conc_aio_run(coro_spawner, &s, sizeof s, NULL);
}

static int
contending_thread(void *arg)
{
    struct arena_shared *s = arg;
    for (int i = 0; i < THREAD_ITEMS; i++) {
        if (conc_lock_acquire(s->lock, CONC_FOREVER) < 0)
            return -1;
        s->counter++;
        conc_lock_release(s->lock);
        if (conc_queue_put(s->queue, (void *)(intptr_t)(i + 1), CONC_FOREVER) <
            0)
            return -1;
    }
    return 0;
}

static void
test_no_colours_contention(void **state)
{
    (void)state;
    struct arena_shared s = {0};
    assert_conc_ok(conc_lock_new(NULL, &s.lock));
    assert_conc_ok(conc_queue_new(NULL, &s.queue));
    conc_thread *loops[2], *threads[4];
    for (int i = 0; i < 2; i++)
        assert_conc_ok(conc_thread_start(loop_thread, &s, NULL, &loops[i]));
    for (int i = 0; i < 4; i++)
        assert_conc_ok(
            conc_thread_start(contending_thread, &s, NULL, &threads[i]));
    for (int i = 0; i < 4; i++) {
        int st;
        assert_conc_ok(conc_thread_join(threads[i], 120, &st));
        assert_int_equal(st, 0);
        conc_thread_free(threads[i]);
    }
    for (int i = 0; i < 2; i++) {
        int st;
        assert_conc_ok(conc_thread_join(loops[i], 120, &st));
        assert_int_equal(st, 0);
        conc_thread_free(loops[i]);
    }
    assert_int_equal(s.counter, 2 * CORO_PER_LOOP + 4 * THREAD_ITEMS);
    assert_true(conc_queue_empty(s.queue));
    conc_queue_free(s.queue);
    conc_lock_free(s.lock);
}

/* ---- Every blocking call is a cancellation point
 * ------------------------------- */

struct blockers {
    conc_lock *held;
    conc_rlock *rheld;
    conc_queue *empty;
    conc_simplequeue *sempty;
    conc_event *unset;
    conc_sem *zero;
    conc_cond *cond;
    conc_future *pending;
    conc_conn *silent;
    conc_barrier *barrier;
};

static struct blockers *B;

static conc_event *rlock_taken, *rlock_release;

static int
hold_rlock(void *arg)
{
    struct blockers *b = arg;
    if (conc_rlock_acquire(b->rheld, 0) < 0)
        return -1;
    conc_event_set(rlock_taken);
    conc_event_wait(rlock_release, 30);
    return conc_rlock_release(b->rheld);
}

static int
block_lock(const void *a, size_t l, conc_buf *r)
{
    (void)a, (void)l, (void)r;
    return conc_lock_acquire(B->held, CONC_FOREVER);
}

static int
block_rlock(const void *a, size_t l, conc_buf *r)
{
    (void)a, (void)l, (void)r;
    return conc_rlock_acquire(B->rheld, CONC_FOREVER);
}

static int
block_queue(const void *a, size_t l, conc_buf *r)
{
    (void)a, (void)l, (void)r;
    void *item;
    return conc_queue_get(B->empty, CONC_FOREVER, &item);
}

static int
block_simplequeue(const void *a, size_t l, conc_buf *r)
{
    (void)a, (void)l, (void)r;
    void *item;
    return conc_simplequeue_get(B->sempty, CONC_FOREVER, &item);
}

static int
block_event(const void *a, size_t l, conc_buf *r)
{
    (void)a, (void)l, (void)r;
    return conc_event_wait(B->unset, CONC_FOREVER);
}

static int
block_sem(const void *a, size_t l, conc_buf *r)
{
    (void)a, (void)l, (void)r;
    return conc_sem_acquire(B->zero, CONC_FOREVER);
}

static int
block_cond(const void *a, size_t l, conc_buf *r)
{
    (void)a, (void)l, (void)r;
    int rc = conc_cond_acquire(B->cond, CONC_FOREVER);
    if (rc < 0)
        return rc;
    rc = conc_cond_wait(B->cond, CONC_FOREVER);
    conc_cond_release(B->cond);
    return rc;
}

static int
block_future(const void *a, size_t l, conc_buf *r)
{
    (void)a, (void)l, (void)r;
    return conc_future_result(B->pending, CONC_FOREVER, NULL, NULL);
}

static int
block_conc_wait(const void *a, size_t l, conc_buf *r)
{
    (void)a, (void)l, (void)r;
    return conc_wait(&B->pending, 1, CONC_ALL_COMPLETED, CONC_FOREVER, NULL);
}

static int
block_recv(const void *a, size_t l, conc_buf *r)
{
    (void)a, (void)l;
    return conc_conn_recv_bytes(B->silent, CONC_FOREVER, r);
}

static int
block_barrier(const void *a, size_t l, conc_buf *r)
{
    (void)a, (void)l, (void)r;
    unsigned index;
    return conc_barrier_wait(B->barrier, CONC_FOREVER, &index);
}

static const struct {
    const char *name;
    conc_task_fn fn;
} blocking_calls[] = {
    {"lock", block_lock},           {"rlock", block_rlock},
    {"queue", block_queue},         {"simplequeue", block_simplequeue},
    {"event", block_event},         {"sem", block_sem},
    {"cond", block_cond},           {"future", block_future},
    {"conc_wait", block_conc_wait}, {"recv", block_recv},
    {"barrier", block_barrier},
};

static int
cancel_blocked_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    size_t n = sizeof blocking_calls / sizeof blocking_calls[0];
    for (size_t i = 0; i < n; i++) {
        conc_future *f;
        assert_conc_ok(
            conc_aio_create_task(blocking_calls[i].fn, NULL, 0, NULL, &f));
        assert_conc_ok(conc_aio_sleep(0.002)); /* it is blocked now */
        assert_false(conc_future_done(f));
        assert_int_equal(conc_aio_task_cancel(f, NULL), 1);
        int r = conc_aio_await(f);
        if (r != CONC_ECANCELED)
            fail_msg("%s: %s", blocking_calls[i].name, conc_err_name(r));
        conc_future_free(f);
    }
    /* The primitives are intact: a waiter cancelled is not a waiter. */
    void *item;
    assert_conc_ok(conc_queue_put(B->empty, B, 0));
    assert_conc_ok(conc_queue_get(B->empty, 0, &item));
    assert_ptr_equal(item, B);
    assert_conc_ok(conc_lock_release(B->held));
    assert_conc_ok(conc_lock_acquire(B->held, 0));
    return 0;
}

static void
test_blocking_calls_are_cancellation_points(void **state)
{
    (void)state;
    struct blockers b = {0};
    B = &b;
    conc_conn *other;
    assert_conc_ok(conc_lock_new(NULL, &b.held));
    assert_conc_ok(conc_lock_acquire(b.held, 0));
    assert_conc_ok(conc_rlock_new(NULL, &b.rheld));
    assert_conc_ok(conc_queue_new(NULL, &b.empty));
    assert_conc_ok(conc_simplequeue_new(NULL, &b.sempty));
    assert_conc_ok(conc_event_new(NULL, &b.unset));
    assert_conc_ok(conc_sem_new(0, NULL, &b.zero));
    assert_conc_ok(conc_cond_new(NULL, &b.cond));
    assert_conc_ok(conc_future_new(&b.pending));
    assert_conc_ok(conc_pipe(NULL, &b.silent, &other));
    assert_conc_ok(conc_barrier_new(2, NULL, &b.barrier));
    /* The rlock is held by another thread: a helper takes it and waits. */
    conc_thread *holder;
    assert_conc_ok(conc_event_new(NULL, &rlock_taken));
    assert_conc_ok(conc_event_new(NULL, &rlock_release));
    assert_conc_ok(conc_thread_start(hold_rlock, &b, NULL, &holder));
    assert_conc_ok(conc_event_wait(rlock_taken, 10));
    assert_conc_ok(conc_aio_run(cancel_blocked_main, NULL, 0, NULL));
    conc_event_set(rlock_release);
    assert_conc_ok(conc_thread_join(holder, 10, NULL));
    conc_thread_free(holder);
    conc_lock_release(b.held);
    conc_lock_free(b.held);
    conc_rlock_free(b.rheld);
    conc_queue_free(b.empty);
    conc_simplequeue_free(b.sempty);
    conc_event_free(b.unset);
    conc_sem_free(b.zero);
    conc_cond_free(b.cond);
    conc_future_free(b.pending);
    conc_conn_free(b.silent);
    conc_conn_free(other);
    conc_barrier_free(b.barrier);
    conc_event_free(rlock_taken);
    conc_event_free(rlock_release);
}

/* A wake another thread sends a task just after the task stopped waiting
 * (a waker that found it among the waiters a moment before) holds a
 * reference on the task until the loop runs it; a loop that closes with
 * it still queued drops it, and the task with it. The task leaked before
 * (once in hundreds of runs of a thread joined from a coroutine, under
 * load). The test sends such a late wake itself, from a thread that does
 * not run the loop, to a finished task of a closed loop; the teardown's
 * check finds a leaked task. */
static int
returns_zero(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    return 0;
}

static void
test_late_wake_dropped_at_close(void **state)
{
    (void)state;
    conc_aio_loop *loop;
    conc_future *f;
    assert_conc_ok(conc_aio_loop_new(NULL, &loop));
    assert_conc_ok(
        conc_aio_loop_create_task(loop, returns_zero, NULL, 0, NULL, &f));
    assert_conc_ok(conc_aio_loop_run_until_complete(loop, f));
    assert_conc_ok(conc_aio_loop_close(loop));
    struct conc__aio_task *t = conc__aio_task_of(f);
    assert_non_null(t);
    t->coro.ops->wake(&t->coro, t->coro.token); /* as a late waker does */
    conc_future_free(f);
    conc_aio_loop_free(loop);
}

/* A loop closed with tasks still pending finishes them: no stack leaks. */
static void
test_close_finishes_tasks(void **state)
{
    (void)state;
    conc_aio_loop *loop;
    assert_conc_ok(conc_aio_loop_new(NULL, &loop));
    conc_future *f[3];
    for (int i = 0; i < 3; i++)
        assert_conc_ok(
            conc_aio_loop_create_task(loop, sleep_long, NULL, 0, NULL, &f[i]));
    conc_future *first = f[0];
    assert_conc_ok(conc_aio_call_later(loop, 0.005, stop_cb, loop, NULL));
    assert_conc_ok(conc_aio_loop_run_forever(loop));
    assert_false(conc_future_done(first));
    assert_conc_ok(conc_aio_loop_close(loop));
    for (int i = 0; i < 3; i++) {
        assert_true(conc_future_cancelled(f[i]));
        conc_future_free(f[i]);
    }
    conc_aio_loop_free(loop);
}

/* ---- Seeing inside: the watchdog and dumps ----------------------------------
 */

static _Atomic int watchdog_fired;
static char watchdog_task[64];
static double watchdog_seconds;
static int watchdog_in_busy; /* a frame of the report lies in busy_task */

static int busy_task(const void *arg, size_t len, conc_buf *result);

static void
watchdog_hook(void *arg, const char *task, double seconds, void *const *pcs,
              int npcs)
{
    (void)arg;
    snprintf(watchdog_task, sizeof watchdog_task, "%s", task);
    watchdog_seconds = seconds;
    for (int i = 0; i < npcs; i++)
        if ((char *)pcs[i] >= (char *)busy_task &&
            (char *)pcs[i] < (char *)busy_task + 1024)
            watchdog_in_busy = 1;
    atomic_store(&watchdog_fired, 1);
}

#if defined(__SANITIZE_THREAD__)
/* Under TSan the busy loop runs inside TSan's runtime, whose frames have
 * no frame pointers: the interrupted code is not the task's. */
#define BUSY_TRIES 1
#else
#define BUSY_TRIES 4
#endif

/* Computes without suspending until the watchdog has reported it (or 10 s
 * pass, which fails the test). A report whose stack is not in this
 * function (the thread was preempted for the whole bound between the
 * loop's start of the step and the switch into the task, as a loaded
 * machine may do) is a true report of a stuck step, not of this code: the
 * task then suspends once, which starts a new step, and spins again. */
static int
busy_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    double until = conc_monotonic() + 10;
    for (int tries = 0; tries < BUSY_TRIES; tries++) {
        if (tries > 0) {
            atomic_store(&watchdog_fired, 0);
            int r = conc_aio_sleep(0);
            if (r < 0)
                return r;
        }
        for (unsigned long i = 0; !atomic_load(&watchdog_fired); i++)
            if ((i & 0xfffff) == 0 && conc_monotonic() > until)
                return CONC_ETIMEDOUT;
        if (watchdog_in_busy)
            break;
    }
    return 0;
}

static void
test_watchdog_reports_busy_task(void **state)
{
    (void)state;
    conc_aio_loop *loop;
    conc_aio_loop_opts o = {.watchdog = 0.05, .watchdog_fn = watchdog_hook};
    assert_conc_ok(conc_aio_loop_new(&o, &loop));
    conc_future *f;
    double t0 = conc_monotonic();
    assert_conc_ok(conc_aio_loop_create_task(
        loop, busy_task, NULL, 0, &(conc_aio_task_opts){.name = "spinner"},
        &f));
    assert_conc_ok(conc_aio_loop_run_until_complete(loop, f));
    assert_true(atomic_load(&watchdog_fired));
    assert_string_equal(watchdog_task, "spinner");
    assert_true(watchdog_seconds >= 0.05);
    assert_true(conc_monotonic() - t0 >= 0.05);
#if !defined(__SANITIZE_THREAD__)
    assert_true(watchdog_in_busy);
#endif
    conc_future_free(f);
    conc_aio_loop_free(loop);
    assert_conc(conc_aio_loop_new(&(conc_aio_loop_opts){.watchdog = -2}, &loop),
                CONC_EINVAL);
}

static int
dump_in_thread(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len;
    return conc_aio_dump(result);
}

static int
dump_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_executor *ex = *(conc_executor *const *)arg;
    conc_future *sleeper, *waiter, *pending;
    assert_conc_ok(conc_future_new(&pending));
    assert_conc_ok(conc_aio_create_task(
        sleep_long, NULL, 0, &(conc_aio_task_opts){.name = "sleeper"},
        &sleeper));
    assert_conc_ok(conc_aio_create_task(await_inner, &pending, sizeof pending,
                                        &(conc_aio_task_opts){.name = "waiter"},
                                        &waiter));
    assert_conc_ok(conc_aio_sleep(0.001));
    /* From inside the loop. */
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_dump(&b));
    conc_buf_append(&b, "", 1);
    const char *text = (const char *)b.data;
    assert_non_null(
        strstr(text, "task 'sleeper' [suspended] waiting for sleep"));
    assert_non_null(
        strstr(text, "task 'waiter' [suspended] waiting for a future"));
    assert_non_null(strstr(text, "task 'dumper' [running]"));
    assert_non_null(strstr(text, "#0 ")); /* suspended stacks are shown */
    conc_buf_free(&b);
    /* From another thread, while this task awaits it: the loop answers. */
    conc_future *f;
    assert_conc_ok(conc_executor_submit(ex, dump_in_thread, NULL, 0, &f));
    const void *data;
    size_t n;
    assert_conc_ok(conc_future_result(f, 30, &data, &n));
    assert_non_null(memmem(data, n, "task 'sleeper'", 14));
    assert_non_null(memmem(data, n, "task 'dumper' [suspended]", 25));
    conc_future_free(f);
    /* From another thread while this task never suspends: blocked. */
    atomic_store(&watchdog_fired, 0);
    assert_conc_ok(conc_executor_submit(ex, dump_in_thread, NULL, 0, &f));
    while (!conc_future_done(f))
        ; /* busy on purpose: the dump must find the loop blocked */
    assert_conc_ok(conc_future_result(f, 0, &data, &n));
    assert_non_null(memmem(data, n, "blocked, task 'dumper'", 22));
    conc_future_free(f);
    conc_aio_task_cancel(sleeper, NULL);
    conc_aio_task_cancel(waiter, NULL);
    conc_aio_await(sleeper);
    conc_aio_await(waiter);
    conc_future_free(sleeper);
    conc_future_free(waiter);
    conc_future_free(pending);
    return 0;
}

static void
test_dump(void **state)
{
    (void)state;
    conc_executor *ex;
    assert_conc_ok(conc_thread_executor_new(NULL, &ex));
    conc_aio_loop *loop;
    assert_conc_ok(conc_aio_loop_new(
        &(conc_aio_loop_opts){.watchdog = CONC_FOREVER}, &loop));
    conc_future *f;
    assert_conc_ok(
        conc_aio_loop_create_task(loop, dump_main, &ex, sizeof ex,
                                  &(conc_aio_task_opts){.name = "dumper"}, &f));
    assert_conc_ok(conc_aio_loop_run_until_complete(loop, f));
    conc_future_free(f);
    conc_aio_loop_free(loop);
    conc_buf b = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_dump(&b)); /* no loop left */
    conc_buf_free(&b);
    assert_conc(conc_aio_dump(NULL), CONC_EINVAL);
    assert_conc_ok(conc_executor_shutdown(ex, 1, 0, CONC_FOREVER));
    conc_executor_free(ex);
}

/* ---- Executors from coroutines, and signals
 * ---------------------------------- */

static conc_event *saw_cancel;

static int
square_task(const void *arg, size_t len, conc_buf *result)
{
    if (len != sizeof(int))
        return CONC_EINVAL;
    int v = *(const int *)arg;
    v *= v;
    return conc_buf_append(result, &v, sizeof v);
}

static int
waits_for_token(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    for (int i = 0; i < 10000; i++) {
        if (conc_task_cancelled()) {
            conc_event_set(saw_cancel);
            return CONC_ECANCELED;
        }
        conc_sleep(0.001);
    }
    return 0;
}

static int
calls_to_thread(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len;
    return conc_aio_to_thread(waits_for_token, NULL, 0, result);
}

static int
executors_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    int seven = 7;
    conc_buf out = CONC_BUF_INIT;
    assert_conc_ok(conc_aio_to_thread(square_task, &seven, sizeof seven, &out));
    assert_int_equal(*(int *)out.data, 49);
    conc_buf_free(&out);
    assert_conc_ok(
        conc_aio_to_process(square_task, &seven, sizeof seven, &out));
    assert_int_equal(*(int *)out.data, 49);
    conc_buf_free(&out);
    conc_future *f;
    assert_conc_ok(
        conc_aio_run_in_executor(NULL, square_task, &seven, sizeof seven, &f));
    assert_conc_ok(conc_aio_await(f));
    conc_future_free(f);
    assert_conc(conc_aio_to_thread(NULL, NULL, 0, NULL), CONC_EINVAL);
    /* Cancelling a task in to_thread cancels the thread's work too. */
    conc_future *t;
    assert_conc_ok(conc_aio_create_task(calls_to_thread, NULL, 0, NULL, &t));
    assert_conc_ok(conc_aio_sleep(0.005));
    conc_aio_task_cancel(t, NULL);
    assert_conc(conc_aio_await(t), CONC_ECANCELED);
    assert_conc_ok(conc_event_wait(saw_cancel, 10)); /* suspends this task */
    conc_future_free(t);
    return 0;
}

static void
test_executors_from_coroutines(void **state)
{
    (void)state;
    assert_conc_ok(conc_event_new(NULL, &saw_cancel));
    assert_conc_ok(conc_aio_run(executors_main, NULL, 0, NULL));
    assert_conc(conc_aio_to_thread(NULL, NULL, 0, NULL), CONC_EINVAL);
    int one = 1;
    assert_conc(conc_aio_to_thread(square_task, &one, sizeof one, NULL),
                CONC_ESTATE);
    conc_event_free(saw_cancel);
}

struct sigcount {
    int n;
    conc_aio_loop *loop;
    conc_thread *raiser;
};

static int
raise_usr1(void *arg)
{
    (void)arg;
    return kill(getpid(), SIGUSR1); /* to the process: any thread may get it */
}

/* The first arrival (raised in the loop's thread) starts a thread that
 * raises the second, for the whole process; the second stops the loop. */
static void
on_usr1(void *arg)
{
    struct sigcount *c = arg;
    if (++c->n == 1)
        assert_conc_ok(conc_thread_start(raise_usr1, NULL, NULL, &c->raiser));
    else
        conc_aio_loop_stop(c->loop);
}

static void
raise_in_loop(void *arg)
{
    (void)arg;
    raise(SIGUSR1);
}

static void
test_signal_handler(void **state)
{
    (void)state;
    struct sigcount c = {0};
    assert_conc_ok(conc_aio_loop_new(NULL, &c.loop));
    assert_conc(conc_aio_add_signal_handler(c.loop, SIGKILL, on_usr1, &c),
                CONC_EINVAL);
    assert_conc_ok(conc_aio_add_signal_handler(c.loop, SIGUSR1, on_usr1, &c));
    assert_conc_ok(conc_aio_call_soon(c.loop, raise_in_loop, NULL, NULL));
    conc_aio_handle *timer;
    assert_conc_ok(conc_aio_call_later(c.loop, 30, stop_cb, c.loop, &timer));
    assert_conc_ok(conc_aio_loop_run_forever(c.loop));
    assert_int_equal(c.n, 2); /* stopped by the second signal, not the timer */
    assert_false(conc_aio_handle_cancelled(timer));
    conc_aio_handle_free(timer);
    assert_conc_ok(conc_thread_join(c.raiser, 10, NULL));
    conc_thread_free(c.raiser);
    assert_int_equal(conc_aio_remove_signal_handler(c.loop, SIGUSR1), 1);
    assert_int_equal(conc_aio_remove_signal_handler(c.loop, SIGUSR1), 0);
    conc_aio_loop_free(c.loop);
}

/* asyncio.wait and as_completed under their names, in a task. */
static int
wait_names_main(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    struct log log = {0};
    /* Far apart: a loaded machine may run the two first steps 20 ms apart. */
    struct sleeper_arg fast = {0.001, 1, &log, NULL},
                       slow = {0.2, 2, &log, NULL};
    conc_future *f[2];
    assert_conc_ok(
        conc_aio_create_task(sleeper, &slow, sizeof slow, NULL, &f[0]));
    assert_conc_ok(
        conc_aio_create_task(sleeper, &fast, sizeof fast, NULL, &f[1]));
    unsigned char done[2];
    assert_conc_ok(conc_aio_wait(f, 2, CONC_FIRST_COMPLETED, 10, done));
    assert_int_equal(done[0], 0); /* never cancelled, still pending */
    assert_int_equal(done[1], 1);
    conc_as_completed_iter *it;
    assert_conc_ok(conc_aio_as_completed(f, 2, 10, &it));
    conc_future *next;
    assert_conc_ok(conc_as_completed_next(it, &next));
    assert_ptr_equal(next, f[1]);
    assert_conc_ok(conc_as_completed_next(it, &next));
    assert_ptr_equal(next, f[0]);
    assert_conc(conc_as_completed_next(it, &next), CONC_ECLOSED);
    conc_as_completed_free(it);
    conc_future_free(f[0]);
    conc_future_free(f[1]);
    return 0;
}

static void
test_wait_and_as_completed(void **state)
{
    (void)state;
    assert_conc_ok(conc_aio_run(wait_names_main, NULL, 0, NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_call_soon_order),
        conc_unit_test(test_timers_order_never_early),
        conc_unit_test(test_timer_heap_many),
        conc_unit_test(test_call_soon_threadsafe_many_threads),
        conc_unit_test(test_loop_states),
        conc_unit_test(test_run_returns_result),
        conc_unit_test(test_run_failure_message),
        conc_unit_test(test_tasks_sleep_in_order),
        conc_unit_test(test_cancel),
        conc_unit_test(test_await_cancels_inner),
        conc_unit_test(test_gather),
        conc_unit_test(test_gather_cancelled_cancels_children),
        conc_unit_test(test_wait_for),
        conc_unit_test(test_shield),
        conc_unit_test(test_timeout),
        conc_unit_test(test_timeout_outer_cancel),
        conc_unit_test(test_taskgroup),
        conc_unit_test(test_no_colours_future),
        conc_unit_test(test_no_colours_contention),
        conc_unit_test(test_close_finishes_tasks),
        conc_unit_test(test_late_wake_dropped_at_close),
        conc_unit_test(test_blocking_calls_are_cancellation_points),
        conc_unit_test(test_watchdog_reports_busy_task),
        conc_unit_test(test_dump),
        conc_unit_test(test_executors_from_coroutines),
        conc_unit_test(test_signal_handler),
        conc_unit_test(test_wait_and_as_completed),
    };
    warm_up_threads();
    return conc_run_tests(tests);
}
