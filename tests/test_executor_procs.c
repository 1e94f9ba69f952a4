/* Process executors alone: a descriptor that cannot reach its worker
 * fails only its task; workers that die inside a task (SIGKILL,
 * segfault, abort, exit) fail only that task; an idle worker killed
 * from outside, task time limits, max_tasks_per_child, and workers killed
 * at random while many tasks run, running tasks cancelled by killing
 * their worker (cancel_kills, and a TaskGroup's abort). What every engine
 * does is in test_executor.c, once per engine.
 *
 * Tasks that must stay running wait on the shared gate (tasks.h). Nothing
 * sleeps to synchronize and every wait is bounded. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "executor/procs_internal.h"
#include "tasks.h"

/* ---- Descriptors -------------------------------------------------------- */

/* A descriptor that cannot be passed to the worker fails its task with
 * CONC_EBADF, and the worker goes on to the next task instead of waiting
 * forever for the descriptor. To make the pass fail, the test closes the
 * executor's copy while the task waits in the backlog behind a held task
 * (that copy takes the lowest free number, which the test learns first):
 * sendmsg then refuses it, as it would for want of kernel memory. */
static void
test_fd_not_passed(void **state)
{
    (void)state;
    conc_executor *ex = open_exec(PROCESSES, 1);
    conc_future *held = submit_int(ex, held_task, 3);
    wait_started(1);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int copy = dup(sv[1]);
    assert_true(copy >= 0);
    close(copy);
    conc_future *f = NULL;
    assert_conc_ok(conc_executor_submit_with(
        ex, fd_write_task, "hello", 5,
        &(conc_submit_opts){.has_fd = 1, .fd = sv[1]}, &f));
    assert_int_equal(close(copy), 0); /* the executor's copy */
    release_gate();
    assert_int_equal(future_int(held), 9);
    assert_conc(conc_future_result(f, WAIT_S, NULL, NULL), CONC_EBADF);
    assert_non_null(strstr(conc_future_message(f), "could not be passed"));
    conc_future *next = submit_int(ex, square_task, 4);
    assert_int_equal(future_int(next), 16);
    conc_future_free(next);
    conc_future_free(held);
    conc_future_free(f);
    conc_executor_free(ex);
    close(sv[0]);
    close(sv[1]);
    fixture_close();
}

/* ---- Process workers that die -------------------------------------------- */

static void
run_death(enum death how, const char *what)
{
    conc_executor *ex = open_exec(PROCESSES, 2);
    conc_future *f = submit_int(ex, die_task, how);
    conc_clear_failure();
    assert_conc(conc_future_result(f, WAIT_S, NULL, NULL), CONC_EBROKEN);
    int pid = atomic_load(&fx.sh->last_pid);
    check_death_message(conc_failure_message(), pid, what);
    check_death_message(conc_future_message(f), pid, what);
    conc_future_free(f);

    /* The executor replaced the worker: two tasks run at once again. */
    conc_future *a = submit_int(ex, held_task, 5);
    conc_future *b = submit_int(ex, held_task, 6);
    wait_started(2);
    release_gate();
    assert_int_equal(future_int(a), 25);
    assert_int_equal(future_int(b), 36);
    conc_future_free(a);
    conc_future_free(b);
    assert_int_equal(conc_executor_max_workers(ex), 2);
    close_exec(ex);
}

DEATH_TESTS_OF(run_death)

/* A death fails only the task that was running in that worker. */
static void
test_death_spares_others(void **state)
{
    (void)state;
    conc_executor *ex = open_exec(PROCESSES, 2);
    conc_future *a = submit_int(ex, held_task, 7);
    wait_started(1);
    conc_future *d = submit_int(ex, die_task, DIE_KILL);
    assert_conc(conc_future_result(d, WAIT_S, NULL, NULL), CONC_EBROKEN);
    conc_future *b = submit_int(ex, square_task, 8);
    assert_int_equal(future_int(b), 64);
    assert_int_equal(conc_future_running(a), 1);
    release_gate();
    assert_int_equal(future_int(a), 49);
    conc_future_free(a);
    conc_future_free(b);
    conc_future_free(d);
    close_exec(ex);
}

/* Counts its runs per item in fx.sh->slot; item 55 kills its worker. */
static int
die_at_55_task(const void *arg, size_t len, conc_buf *result)
{
    int v = arg_int(arg, len);
    atomic_fetch_add(&fx.sh->slot[v], 1);
    if (v == 55) {
        atomic_store(&fx.sh->last_pid, (int)getpid());
        kill(getpid(), SIGKILL);
    }
    return put_int(result, v * v);
}

/* Executor.map: a death in a chunk fails only the item it ran; the
 * chunk's other items come, each run once. */
static void
test_death_in_map_chunk(void **state)
{
    (void)state;
    conc_executor *ex = open_exec(PROCESSES, 2);
    enum { N = 100 };
    int in[N];
    conc_items items = number_items(in, N);
    conc_map_iter *it;
    assert_conc_ok(conc_executor_map(ex, die_at_55_task, &items,
                                     &(conc_map_opts){.chunksize = 13}, &it));
    for (int i = 0; i < N; i++) {
        const void *data;
        conc_clear_failure();
        int rc = conc_map_next(it, WAIT_S, &data, NULL);
        assert_int_equal(conc_map_index(it), i);
        if (i == 55) {
            assert_conc(rc, CONC_EBROKEN);
            check_death_message(conc_failure_message(),
                                atomic_load(&fx.sh->last_pid), "signal 9");
            continue;
        }
        assert_conc_ok(rc);
        assert_int_equal(*(const int *)data, i * i);
    }
    conc_map_free(it);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&fx.sh->slot[i]), 1);
    close_exec(ex);
}

/* An idle worker killed from outside is replaced; no task fails. */
static void
test_idle_worker_killed(void **state)
{
    (void)state;
    conc_executor *ex = open_exec(PROCESSES, 1);
    struct tagged w = run_whoami(ex);
    assert_int_equal(kill(w.pid, SIGKILL), 0);
    /* Once reaped, the executor knows. */
    assert_true(conc_test_wait_until(process_gone, &w.pid, WAIT_S));
    for (int i = 0; i < 20; i++) {
        conc_future *f = submit_int(ex, square_task, i);
        assert_int_equal(future_int(f), i * i);
        conc_future_free(f);
    }
    assert_int_not_equal(run_whoami(ex).pid, w.pid);
    close_exec(ex);
}

static void
test_task_timeout(void **state)
{
    (void)state;
    fixture_open();
    conc_executor_opts o = {.max_workers = 1, .task_timeout = 0.2};
    conc_executor *ex = new_exec(PROCESSES, &o);
    /* Under the limit: fine. */
    conc_future *f = submit_int(ex, square_task, 3);
    assert_int_equal(future_int(f), 9);
    conc_future_free(f);

    double t0 = conc_monotonic();
    f = submit_int(ex, held_task, 1);
    wait_started(1);
    int pid = atomic_load(&fx.sh->last_pid);
    assert_conc(conc_future_result(f, WAIT_S, NULL, NULL), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= 0.2 - SLACK_S);
    conc_future_free(f);

    /* The worker was killed and replaced. */
    struct tagged w = run_whoami(ex);
    assert_int_not_equal(w.pid, pid);
    assert_true(conc_test_wait_until(process_gone, &pid, WAIT_S));
    f = submit_int(ex, square_task, 4);
    assert_int_equal(future_int(f), 16);
    conc_future_free(f);
    close_exec(ex);
}

static void
test_max_tasks_per_child(void **state)
{
    (void)state;
    fixture_open();
    conc_executor_opts o = {.max_workers = 1, .max_tasks_per_child = 2};
    conc_executor *ex = new_exec(PROCESSES, &o);
    int pids[6];
    for (int i = 0; i < 6; i++)
        pids[i] = run_whoami(ex).pid;
    for (int i = 0; i < 6; i += 2) {
        assert_int_equal(pids[i], pids[i + 1]);
        if (i)
            assert_int_not_equal(pids[i], pids[i - 1]);
    }
    assert_int_not_equal(pids[0], pids[4]);
    assert_int_not_equal(pids[0], (int)getpid());
    close_exec(ex);
}

/* Random deaths: tasks record their pid in their item's slot while they
 * run; a killer thread claims a slot (so the worker is certainly alive and
 * running that task) and kills the worker. Some items also kill
 * themselves. Every task must succeed with the right result or fail with
 * CONC_EBROKEN, at most as many as were killed, and nothing hangs. */
#define RD_TASKS 300
#define RD_KILLS 8

static void
test_random_deaths(void **state)
{
    (void)state;
    conc_executor *ex = open_exec(PROCESSES, 3);
    struct killer k = {
        .ntasks = RD_TASKS, .max_kills = RD_KILLS, .next_slot = 11};
    conc_thread *t = start_thread(killer_fn, &k);
    conc_future *fs[RD_TASKS];
    for (int i = 0; i < RD_TASKS; i++)
        fs[i] = submit_int(ex, rd_task, i);
    int failed = 0, self = 0;
    for (int i = 0; i < RD_TASKS; i++) {
        const void *data;
        size_t len;
        int rc = conc_future_result(fs[i], WAIT_S, &data, &len);
        if (i % RD_SELF == 5) {
            self++;
            assert_conc(rc, CONC_EBROKEN);
        }
        if (rc == CONC_EBROKEN) {
            failed++;
        } else {
            if (rc != 0) /* which death or check failed it */
                print_error("task %d (%s cancel): %s\n", i,
                            i % 3 == 1 ? "no" : "a late",
                            conc_future_message(fs[i]));
            assert_conc_ok(rc);
            assert_int_equal(len, sizeof(int));
            assert_int_equal(*(const int *)data, i * 3 + 1);
        }
        conc_future_free(fs[i]);
    }
    atomic_store(&k.stop, 1);
    join_thread(t);
    assert_true(failed >= self);
    assert_true(failed <= self + k.kills);
    /* Still serving. */
    conc_future *f = submit_int(ex, square_task, 12);
    assert_int_equal(future_int(f), 144);
    conc_future_free(f);
    close_exec(ex);
}

/* ---- Cancelling a running task (cancel_kills) -----------------------------
 */

/* Counts a future's completions: exactly one is allowed. */
static int
count_done(void *arg, conc_future *f)
{
    (void)f;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

static int
reached_one(void *arg)
{
    return atomic_load((atomic_int *)arg) >= 1;
}

/* A thread that waits on a future and keeps what its wait returned. */
struct waiter {
    conc_future *f;
    int rc;
};

static int
waiter_fn(void *arg)
{
    struct waiter *w = arg;
    w->rc = conc_future_result(w->f, WAIT_S, NULL, NULL);
    return 0;
}

/* By default, as in Python, a running task cannot be cancelled. */
static void
test_cancel_running_default(void **state)
{
    (void)state;
    conc_executor *ex = open_exec(PROCESSES, 1);
    conc_future *f = submit_int(ex, held_task, 3);
    wait_started(1);
    int pid = atomic_load(&fx.sh->last_pid);
    assert_int_equal(conc_future_cancel(f), 0);
    assert_int_equal(conc_future_cancelled(f), 0);
    release_gate();
    assert_int_equal(future_int(f), 9);
    assert_int_equal(run_whoami(ex).pid, pid); /* the same worker */
    conc_future_free(f);
    close_exec(ex);
}

/* With cancel_kills, cancelling a running task kills its worker: the
 * future ends cancelled at once, for its waiters too, its callback runs
 * once, the tasks queued behind it run on a replacement, none lost. */
static void
test_cancel_kills_running(void **state)
{
    (void)state;
    fixture_open();
    conc_executor *ex = new_exec(
        PROCESSES, &(conc_executor_opts){.max_workers = 1, .cancel_kills = 1});
    conc_future *f = submit_int(ex, held_task, 3);
    conc_future *behind[4];
    for (int i = 0; i < 4; i++)
        behind[i] = submit_int(ex, square_task, i);
    atomic_int done = 0;
    assert_conc_ok(conc_future_add_done_callback(f, count_done, &done));
    wait_started(1);
    int pid = atomic_load(&fx.sh->last_pid);
    struct waiter w = {.f = f};
    conc_thread *t = start_thread(waiter_fn, &w);
    assert_true(conc_future_running(f));
    assert_int_equal(conc_future_cancel(f), 1);
    assert_int_equal(conc_future_cancelled(f), 1);
    assert_int_equal(conc_future_cancel(f), 1); /* again: still cancelled */
    assert_int_equal(atomic_load(&done), 1);
    assert_conc(conc_future_result(f, 0, NULL, NULL), CONC_ECANCELED);
    join_thread(t);
    assert_conc(w.rc, CONC_ECANCELED);
    assert_true(conc_test_wait_until(process_gone, &pid, WAIT_S));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(future_int(behind[i]), i * i);
        conc_future_free(behind[i]);
    }
    assert_int_not_equal(run_whoami(ex).pid, pid);
    assert_int_equal(atomic_load(&done), 1);
    conc_future_free(f);
    close_exec(ex);
}

/* A Pool's AsyncResult is the same engine's future: with cancel_kills, a
 * running apply_async is killed too, and the pool serves on. */
static void
test_cancel_kills_pool(void **state)
{
    (void)state;
    fixture_open();
    conc_pool *p = new_pool(
        PROCESSES, &(conc_pool_opts){.processes = 1, .cancel_kills = 1});
    conc_async_result *r = apply_int(p, held_task, 3, NULL);
    wait_started(1);
    int pid = atomic_load(&fx.sh->last_pid);
    assert_int_equal(conc_future_cancel(r), 1);
    assert_conc(conc_async_result_get(r, 0, NULL, NULL), CONC_ECANCELED);
    assert_true(conc_test_wait_until(process_gone, &pid, WAIT_S));
    conc_async_result *next = apply_int(p, square_task, 5, NULL);
    assert_int_equal(result_int(next), 25);
    conc_future_free(next);
    conc_future_free(r);
    close_pool(p);
}

/* A Pool callback that tells the test it runs, then holds the result
 * thread until the test sets `hold`. */
struct holder {
    conc_event *entered, *hold;
};

static void
holding_cb(void *arg, const void *data, size_t len)
{
    (void)data, (void)len;
    struct holder *h = arg;
    conc_event_set(h->entered);
    assert_conc_ok(conc_event_wait(h->hold, WAIT_S));
}

/* Spins for a millisecond, as a task does when its worker loses the CPU,
 * then squares. */
static int
slow_square_task(const void *arg, size_t len, conc_buf *result)
{
    double end = conc_monotonic() + 0.001;
    while (conc_monotonic() < end)
        ;
    return square_task(arg, len, result);
}

/* How many tasks the rings of the engine that holds `r` may hold:
 * learned from the tasks' run times (procs_results.c). */
static size_t
ring_depth(conc_async_result *r)
{
    struct pengine *e = conc__job_of(r)->engine;
    return atomic_load(&e->depth);
}

/* Holds the pool's result thread in a callback, no task outstanding, with
 * the rings at least `want` tasks deep: until the test sets h->hold, the
 * depth stays (only the result thread changes it) and every task submitted
 * goes straight into a ring, where the worker runs it with no help from
 * the result thread. The first try follows a slow task, which makes the
 * rings shallow, as a worker preempted in a task does; the tries after it
 * are tiny tasks, which deepen them again. Returns the held task's
 * result (the square of *v), whose callback returns once h->hold is set. */
#define HOLD_TRIES 1000

static conc_async_result *
hold_results_deep(conc_pool *p, struct holder *h, size_t want, int *v)
{
    for (int i = 0; i < HOLD_TRIES; i++) {
        conc_event_clear(h->entered);
        conc_event_clear(h->hold);
        conc_async_result *r =
            apply_int(p, i ? square_task : slow_square_task, i,
                      &(conc_apply_opts){.callback = holding_cb, .arg = h});
        assert_conc_ok(conc_event_wait(h->entered, WAIT_S));
        *v = i;
        if (ring_depth(r) >= want)
            return r;
        conc_event_set(h->hold);
        assert_int_equal(result_int(r), i * i); /* its callback returned */
        conc_future_free(r);
    }
    fail_msg("the rings stayed shallower than %zu tasks", want);
    return NULL;
}

/* The task finished, its result written but not yet read, and its worker
 * runs the next one when the cancel comes: the result wins (cancel says
 * 0), and the next task is not killed. The result thread is held in a
 * callback so that it reads no result meanwhile, with the rings deep
 * enough for both tasks: a task left in the backlog would wait for the
 * held result thread (the rings' depth follows the tasks' run times, so
 * 30 tiny tasks first were not enough when one of them was slow). */
static void
test_cancel_after_finish(void **state)
{
    (void)state;
    fixture_open();
    conc_pool *p = new_pool(
        PROCESSES, &(conc_pool_opts){.processes = 1, .cancel_kills = 1});
    struct holder h;
    assert_conc_ok(conc_event_new(NULL, &h.entered));
    assert_conc_ok(conc_event_new(NULL, &h.hold));
    int v;
    conc_async_result *a = hold_results_deep(p, &h, 2, &v);
    conc_async_result *f = apply_int(p, square_task, 3, NULL);
    conc_async_result *g = apply_int(p, held_task, 4, NULL);
    wait_started(1); /* g runs: f's result is written, unread */
    int pid = atomic_load(&fx.sh->last_pid);
    assert_int_equal(conc_future_cancel(f), 0);
    conc_event_set(h.hold);
    assert_int_equal(result_int(a), v * v);
    assert_int_equal(result_int(f), 9);
    release_gate();
    assert_int_equal(result_int(g), 16);
    assert_int_equal(apply_tagged(p, whoami_task, 0).pid, pid);
    conc_future_free(a);
    conc_future_free(f);
    conc_future_free(g);
    conc_event_free(h.entered);
    conc_event_free(h.hold);
    close_pool(p);
}

/* The task finishes while the kill is on its way, or its worker has
 * claimed it and not yet started it: tiny tasks cancelled at every point
 * of their lives. Each ends once, cancelled exactly when cancel said 1,
 * and otherwise with its result: never failed by its worker's death. */
#define RACE_TASKS 400

static void
test_cancel_kill_races(void **state)
{
    (void)state;
    fixture_open();
    conc_executor *ex = new_exec(
        PROCESSES, &(conc_executor_opts){.max_workers = 2, .cancel_kills = 1});
    conc_future *fs[RACE_TASKS];
    int said[RACE_TASKS];
    atomic_int done[RACE_TASKS];
    for (int i = 0; i < RACE_TASKS; i++) {
        said[i] = 0;
        atomic_init(&done[i], 0);
        fs[i] = submit_int(ex, square_task, i);
        assert_conc_ok(
            conc_future_add_done_callback(fs[i], count_done, &done[i]));
        /* Items 0 mod 3 are cancelled at once, 2 mod 3 two submits later
         * (pending, claimed, running or done by then), 1 mod 3 never. */
        if (i % 3 == 0)
            said[i] = conc_future_cancel(fs[i]);
        else if (i % 3 == 1 && i >= 2)
            said[i - 2] = conc_future_cancel(fs[i - 2]);
    }
    int cancelled = 0;
    for (int i = 0; i < RACE_TASKS; i++) {
        const void *data;
        size_t len;
        int rc = conc_future_result(fs[i], WAIT_S, &data, &len);
        assert_true(said[i] == 0 || said[i] == 1);
        if (said[i]) {
            assert_conc(rc, CONC_ECANCELED);
            cancelled++;
        } else {
            if (rc != 0) /* which death or check failed it */
                print_error("task %d (%s cancel): %s\n", i,
                            i % 3 == 1 ? "no" : "a late",
                            conc_future_message(fs[i]));
            assert_conc_ok(rc);
            assert_int_equal(len, sizeof(int));
            assert_int_equal(*(const int *)data, i * i);
        }
        assert_true(conc_test_wait_until(reached_one, &done[i], WAIT_S));
        assert_int_equal(atomic_load(&done[i]), 1);
        conc_future_free(fs[i]);
    }
    assert_true(cancelled > 0);
    conc_future *f = submit_int(ex, square_task, 12);
    assert_int_equal(future_int(f), 144);
    conc_future_free(f);
    close_exec(ex);
}

/* A task's claim word stays its own until the task has ended: while one
 * task runs, queued tasks cancelled before they start move the task
 * numbers on by more than the CONC__SLOTS (256) claim words, and the
 * running task and the one queued behind it still end with their
 * results. A word was reused once its task's frame was consumed, before
 * the task ended: the worker then found its word overwritten and left,
 * and the task behind failed with it. */
/* The engine that holds `f`, and the last task number it sent to its
 * worker 0 (read under the engine's lock). */
static struct pengine *
engine_of(conc_future *f)
{
    return conc__job_of(f)->engine;
}

static uint64_t
last_sent(struct pengine *e)
{
    conc__pe_lock(e);
    uint64_t ws = e->w[0].wseq;
    conc__pe_unlock(e);
    return ws;
}

/* Tiny tasks until the rings are at least `want` tasks deep (the depth
 * follows the tasks' run times: one slow task makes them shallow). */
static void
deepen(conc_executor *ex, size_t want)
{
    for (int i = 0; i < HOLD_TRIES; i++) {
        conc_future *f = submit_int(ex, square_task, i);
        assert_int_equal(future_int(f), i * i);
        size_t depth = atomic_load(&engine_of(f)->depth);
        conc_future_free(f);
        if (depth >= want)
            return;
    }
    fail_msg("the rings stayed shallower than %zu tasks", want);
}

static void
test_cancels_while_one_runs(void **state)
{
    (void)state;
    conc_executor *ex = open_exec(PROCESSES, 1);
    /* The running task, the one behind it and each cancelled one in
     * turn: three in the ring. Only results change the depth, and none
     * come until the release. */
    deepen(ex, 3);
    conc_future *held = submit_int(ex, held_task, 3);
    wait_started(1);
    struct pengine *e = engine_of(held);
    uint64_t first = last_sent(e);
    conc_future *behind = submit_int(ex, square_task, 7);
    for (int i = 0; i < 600; i++) {
        conc_future *f = submit_int(ex, square_task, i);
        assert_int_equal(conc_future_cancel(f), 1);
        conc_future_free(f);
    }
    /* The cancelled tasks went through the ring up to the claim words'
     * bound (then into the backlog): the case the test is for. */
    assert_true(last_sent(e) - first >= CONC__SLOTS - 8);
    release_gate();
    assert_int_equal(future_int(held), 9);
    assert_int_equal(future_int(behind), 49);
    conc_future *after = submit_int(ex, square_task, 12);
    assert_int_equal(future_int(after), 144);
    conc_future_free(after);
    conc_future_free(behind);
    conc_future_free(held);
    close_exec(ex);
}

/* The worker was already dying (killed from outside) when the cancel
 * came: either the cancel wins (1, cancelled) or the death does (0, the
 * task fails with CONC_EBROKEN), exactly one, and the future ends once. */
static void
test_cancel_dying_worker(void **state)
{
    (void)state;
    fixture_open();
    conc_executor *ex = new_exec(
        PROCESSES, &(conc_executor_opts){.max_workers = 1, .cancel_kills = 1});
    for (int round = 0; round < 4; round++) {
        forget_started();
        conc_future *f = submit_int(ex, held_task, 3);
        atomic_int done = 0;
        assert_conc_ok(conc_future_add_done_callback(f, count_done, &done));
        conc_future *behind = submit_int(ex, square_task, round);
        wait_started(1);
        int pid = atomic_load(&fx.sh->last_pid);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int said = conc_future_cancel(f);
        int rc = conc_future_result(f, WAIT_S, NULL, NULL);
        if (said == 1)
            assert_conc(rc, CONC_ECANCELED);
        else
            assert_conc(rc, CONC_EBROKEN);
        assert_int_equal(future_int(behind), round * round);
        assert_true(conc_test_wait_until(reached_one, &done, WAIT_S));
        assert_int_equal(atomic_load(&done), 1);
        assert_true(conc_test_wait_until(process_gone, &pid, WAIT_S));
        conc_future_free(behind);
        conc_future_free(f);
    }
    close_exec(ex);
}

/* ---- A TaskGroup kills its running process tasks ------------------------ */

/* A TaskGroup member that fails at once. */
static int
fail_member(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    return conc_fail(CONC_EVALUE, "member failed");
}

/* A group holding a running process task (`arg`): another member fails,
 * and the group's exit returns that failure at once, the process task
 * cancelled. The task would run until the gate's timeout (WAIT_S). */
static int
tg_process_main(const void *arg, size_t len, conc_buf *result)
{
    (void)len, (void)result;
    conc_future *pf = *(conc_future *const *)arg;
    conc_aio_taskgroup *tg;
    assert_conc_ok(conc_aio_taskgroup_new(&tg));
    assert_conc_ok(conc_aio_taskgroup_add(tg, pf));
    double t0 = conc_monotonic();
    assert_conc_ok(
        conc_aio_taskgroup_create_task(tg, fail_member, NULL, 0, NULL, NULL));
    int rc = conc_aio_sleep(3600);
    assert_conc(rc, CONC_ECANCELED);
    assert_conc(conc_aio_taskgroup_exit(tg, rc), CONC_EVALUE);
    assert_true(conc_monotonic() - t0 < WAIT_S / 2);
    assert_true(conc_future_cancelled(pf));
    conc_aio_taskgroup_free(tg);
    return 0;
}

/* The process task is killed with its worker although the executor was
 * made without cancel_kills, and a replacement serves. The task starts,
 * and its worker's end is awaited, outside the loop. */
static void
test_taskgroup_kills_process_task(void **state)
{
    (void)state;
    conc_executor *ex = open_exec(PROCESSES, 1);
    conc_future *pf = submit_int(ex, held_task, 3);
    wait_started(1);
    int pid = atomic_load(&fx.sh->last_pid);
    assert_true(conc_future_running(pf));
    assert_conc_ok(conc_aio_run(tg_process_main, &pf, sizeof pf, NULL));
    assert_conc(conc_future_result(pf, 0, NULL, NULL), CONC_ECANCELED);
    assert_true(conc_test_wait_until(process_gone, &pid, WAIT_S));
    conc_future *f = submit_int(ex, square_task, 4);
    assert_int_equal(future_int(f), 16);
    assert_int_not_equal(run_whoami(ex).pid, pid);
    conc_future_free(f);
    conc_future_free(pf);
    close_exec(ex);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_fd_not_passed),
        DEATH_TESTS,
        conc_unit_test(test_death_spares_others),
        conc_unit_test(test_idle_worker_killed),
        conc_unit_test(test_death_in_map_chunk),
        conc_unit_test(test_task_timeout),
        conc_unit_test(test_max_tasks_per_child),
        conc_unit_test(test_random_deaths),
        conc_unit_test(test_cancel_running_default),
        conc_unit_test(test_cancel_kills_running),
        conc_unit_test(test_cancel_kills_pool),
        conc_unit_test(test_cancel_after_finish),
        conc_unit_test(test_cancel_kill_races),
        conc_unit_test(test_cancel_dying_worker),
        conc_unit_test(test_cancels_while_one_runs),
        /* Last: a loop's threads stay for the program's life. */
        conc_unit_test(test_taskgroup_kills_process_task),
    };
    /* CONC_TEST_FILTER=pattern runs only the matching tests. */
    if (getenv("CONC_TEST_FILTER"))
        cmocka_set_test_filter(getenv("CONC_TEST_FILTER"));
    return conc_run_tests(tests);
}
