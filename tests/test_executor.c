/* Executors, common behaviour: every scenario runs once on each engine of
 * the table (tasks.h), the thread executor and the process executor, with
 * the same tasks (one task signature runs in both): defaults and invalid
 * options, submit and result, failures with code and message, cancel, map
 * in input order with chunks, a lazy generator input with a bounded number
 * in flight, map timeouts and progress, shutdown(wait, cancel_futures),
 * bounded submission, initializers (a failing one breaks the executor),
 * descriptor passing, the scoped form and many submitting threads. Then
 * what only threads do: the cancel token, a task waiting for a later one,
 * shutdown from a task. What only worker processes do (deaths, time
 * limits, max_tasks_per_child) is in test_executor_procs.c.
 *
 * Tasks that must stay running wait on the shared gate (tasks.h), so the
 * test knows exactly which tasks run. Nothing sleeps to synchronize and
 * every wait is bounded. */
#include <math.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conc/sync.h"
#include "tasks.h"

/* ---- Tasks of this program (more in tasks.h) ----------------------------- */

static int
echo_task(const void *arg, size_t len, conc_buf *result)
{
    return conc_buf_append(result, arg, len);
}

/* A success may return any non-negative value. */
static int
positive_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    conc_buf_append(result, "ok", 2);
    return 5;
}

static int
fail_silently_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    (void)result;
    return CONC_EPERM;
}

/* Like held_task, but reports its cancel token once released. */
static int
held_token_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    conc_sem_release(fx.started, 1);
    if (conc_event_wait(fx.gate, WAIT_S) != 0)
        return conc_fail(CONC_ETIMEDOUT, "the gate never opened");
    return put_int(result, conc_task_cancelled());
}

/* Stops early once cancelled, as a long thread task should. */
static int
token_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    (void)result;
    conc_sem_release(fx.started, 1);
    double end = conc_monotonic() + WAIT_S;
    while (!conc_task_cancelled()) {
        if (conc_monotonic() > end)
            return conc_fail(CONC_ETIMEDOUT, "never cancelled");
        /* A bounded poll: nothing announces the token. */
        conc_event_wait(fx.gate, 0.001);
    }
    return CONC_ECANCELED;
}

static int
failing_init_fn(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    (void)result;
    atomic_fetch_add(&fx.sh->init_runs, 1);
    return conc_fail(CONC_EPERM, "initializer refused");
}

/* Takes its descriptor, writes its argument and closes it itself. */
static int
fd_take_task(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    int fd = conc_task_take_fd();
    if (fd < 0)
        return conc_fail(CONC_EBADF, "no descriptor");
    ssize_t w = write(fd, arg, len);
    close(fd);
    return w == (ssize_t)len ? 0 : conc_fail(CONC_EPIPE, "short write");
}

static int
no_fd_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    int r[2] = {conc_task_fd(), conc_task_take_fd()};
    return conc_buf_append(result, r, sizeof r);
}

/* ---- Creation and options ------------------------------------------------ */

static void
body_defaults(enum kind k)
{
    fixture_open();
    size_t cpus = cpu_count();
    /* Python's defaults: min(32, CPUs + 4) threads, or a process a CPU. */
    size_t want = k == PROCESSES ? cpus : cpus + 4 < 32 ? cpus + 4 : 32;
    conc_executor *ex = new_exec(k, NULL);
    assert_int_equal(conc_executor_max_workers(ex), want);
    conc_executor_free(ex);
    conc_executor_free(NULL);

    conc_executor_opts o = {.max_workers = 3};
    ex = new_exec(k, &o);
    assert_int_equal(conc_executor_max_workers(ex), 3);
    close_exec(ex);
}

static void
body_invalid_options(enum kind k)
{
    int (*make)(const conc_executor_opts *, conc_executor **) =
        engines[k].executor_new;
    conc_executor *ex = NULL;
    conc_executor_opts bad_mode = {.submit_mode = (conc_submit_mode)7};
    conc_executor_opts nan_submit = {.max_pending = 1,
                                     .submit_mode = CONC_SUBMIT_TIMEOUT,
                                     .submit_timeout = NAN};
    conc_executor_opts nan_task = {.task_timeout = NAN};
    conc_executor_opts neg_task = {.task_timeout = -1};
    assert_conc(make(NULL, NULL), CONC_EINVAL);
    assert_conc(make(&bad_mode, &ex), CONC_EINVAL);
    assert_conc(make(&nan_submit, &ex), CONC_EINVAL);
    assert_conc(make(&nan_task, &ex), CONC_EINVAL);
    assert_conc(make(&neg_task, &ex), CONC_EINVAL);
    assert_null(ex);
    /* Allocation failures leave nothing behind (the leak guard checks). */
    conc_test_fail_alloc_after(1);
    assert_conc(make(NULL, &ex), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    assert_null(ex);
}

/* ---- Submit and result --------------------------------------------------- */

static void
body_submit_result(enum kind k)
{
    fixture_open();
    conc_executor_opts o = {.max_workers = 3};
    conc_executor *ex = new_exec(k, &o);

    conc_future *f = submit_int(ex, square_task, 7);
    assert_int_equal(future_int(f), 49);
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_FINISHED);
    conc_future_free(f);

    /* Many at once, in any order of completion. */
    enum { N = 300 };
    conc_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = submit_int(ex, square_task, i);
    for (int i = 0; i < N; i++) {
        assert_int_equal(future_int(fs[i]), i * i);
        conc_future_free(fs[i]);
    }

    /* A positive return is a success; no argument is fine. */
    assert_conc_ok(conc_executor_submit(ex, positive_task, NULL, 0, &f));
    const void *data;
    size_t len;
    assert_conc_ok(conc_future_result(f, WAIT_S, &data, &len));
    assert_int_equal(len, 2);
    assert_memory_equal(data, "ok", 2);
    conc_future_free(f);

    /* A large argument and result. */
    size_t big = 3u << 20;
    char *src = malloc(big);
    assert_non_null(src);
    for (size_t i = 0; i < big; i++)
        src[i] = (char)(i * 31 + 7);
    assert_conc_ok(conc_executor_submit(ex, echo_task, src, big, &f));
    assert_conc_ok(conc_future_result(f, WAIT_S, &data, &len));
    assert_int_equal(len, big);
    assert_memory_equal(data, src, big);
    conc_future_free(f);
    free(src);

    /* Fire and forget: the task still runs. */
    int one = 1;
    assert_conc_ok(
        conc_executor_submit(ex, count_task, &one, sizeof one, NULL));
    assert_conc_ok(conc_executor_shutdown(ex, 1, 0, CONC_FOREVER));
    assert_int_equal(atomic_load(&fx.sh->finished), 1);
    close_exec(ex);
}

static void
body_submit_invalid(enum kind k)
{
    conc_executor *ex = open_exec(k, 1);
    conc_future *f = NULL;
    int v = 1;
    /* Allocation failure in a first submit (later ones may reuse a
     * future's block): nothing runs, nothing leaks. */
    conc_test_fail_alloc_after(1);
    assert_conc(conc_executor_submit(ex, count_task, &v, sizeof v, &f),
                CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    assert_null(f);
    assert_conc(conc_executor_submit(ex, NULL, &v, sizeof v, &f), CONC_EINVAL);
    assert_conc(conc_executor_submit(ex, square_task, NULL, 4, &f),
                CONC_EINVAL);
    conc_submit_opts neg = {.has_fd = 1, .fd = -1};
    conc_submit_opts closed = {.has_fd = 1, .fd = 1000};
    assert_conc(conc_executor_submit_with(ex, fd_write_task, "x", 1, &neg, &f),
                CONC_EBADF);
    assert_conc(
        conc_executor_submit_with(ex, fd_write_task, "x", 1, &closed, &f),
        CONC_EBADF);
    assert_null(f);
    assert_conc_ok(conc_executor_shutdown(ex, 1, 0, CONC_FOREVER));
    assert_int_equal(atomic_load(&fx.sh->finished), 0);
    close_exec(ex);
}

/* A failing task's code and message reach the caller; a later failure
 * without a message on the same worker does not inherit the old one. */
static void
body_task_failure(enum kind k)
{
    conc_executor *ex = open_exec(k, 1);
    conc_future *f = submit_int(ex, fail_task, 7);
    conc_clear_failure();
    assert_conc(conc_future_result(f, WAIT_S, NULL, NULL), CONC_EVALUE);
    assert_string_equal(conc_failure_message(), "bad item 7");
    assert_string_equal(conc_future_message(f), "bad item 7");
    int code = 0;
    assert_conc_ok(conc_future_exception(f, 0, &code));
    assert_int_equal(code, CONC_EVALUE);
    assert_int_equal(conc_future_cancelled(f), 0);
    conc_future_free(f);

    f = submit_int(ex, fail_silently_task, 0);
    assert_conc(conc_future_result(f, WAIT_S, NULL, NULL), CONC_EPERM);
    assert_string_equal(conc_failure_message(), "");
    assert_string_equal(conc_future_message(f), "");
    conc_future_free(f);

    /* The worker keeps serving. */
    f = submit_int(ex, square_task, 9);
    assert_int_equal(future_int(f), 81);
    conc_future_free(f);
    close_exec(ex);
}

/* The caller drops its futures at once; the executor holds them until
 * done, the tasks run, and everything is freed in the end. */
static void
body_drop_futures(enum kind k)
{
    conc_executor *ex = open_exec(k, 2);
    for (int i = 0; i < 10; i++)
        conc_future_free(submit_int(ex, held_task, i));
    for (int i = 0; i < 20; i++)
        conc_future_free(submit_int(ex, count_task, i));
    wait_started(2);
    release_gate();
    conc_executor_free(ex);
    assert_int_equal(atomic_load(&fx.sh->finished), 20);
    assert_int_equal(atomic_load(&fx.sh->started), 10);
    fixture_close();
}

/* Futures outlive their executor: every question still has its answer,
 * and freeing them afterwards releases everything. */
static void
body_futures_outlive(enum kind k)
{
    conc_executor *ex = open_exec(k, 2);
    conc_future *f[3];
    for (int i = 0; i < 3; i++)
        f[i] = submit_int(ex, square_task, i + 2);
    conc_executor_free(ex);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(conc_future_state_of(f[i]), CONC_FUTURE_FINISHED);
        assert_int_equal(conc_future_running(f[i]), 0);
        assert_int_equal(conc_future_cancel(f[i]), 0);
        assert_int_equal(future_int(f[i]), (i + 2) * (i + 2));
        conc_future_free(f[i]);
    }
    fixture_close();
}

/* ---- Cancel -------------------------------------------------------------- */

static void
body_cancel(enum kind k)
{
    conc_executor *ex = open_exec(k, 1);
    conc_future *a = submit_int(ex, held_token_task, 0);
    wait_started(1);
    conc_future *b = submit_int(ex, count_task, 1);
    assert_int_equal(conc_future_running(a), 1);
    assert_int_equal(conc_future_state_of(b), CONC_FUTURE_PENDING);

    /* Pending: cancelled for good. Running: refused (a thread task sees
     * its token raised, a process task does not). */
    assert_int_equal(conc_future_cancel(b), 1);
    assert_int_equal(conc_future_cancelled(b), 1);
    assert_int_equal(conc_future_cancel(a), 0);
    assert_int_equal(conc_future_running(a), 1);
    release_gate();
    assert_int_equal(future_int(a), k == THREADS ? 1 : 0);
    assert_int_equal(conc_future_cancelled(a), 0);
    assert_conc(conc_future_result(b, 0, NULL, NULL), CONC_ECANCELED);
    conc_executor_free(ex);
    assert_int_equal(atomic_load(&fx.sh->finished), 0);
    conc_future_free(a);
    conc_future_free(b);
    fixture_close();
}

/* A thread task that sees its token and returns CONC_ECANCELED ends
 * cancelled. */
static void
test_cancel_token_threads(void **state)
{
    (void)state;
    fixture_open();
    assert_int_equal(conc_task_cancelled(), 0);
    conc_executor *ex =
        new_exec(THREADS, &(conc_executor_opts){.max_workers = 1});
    conc_future *f = submit_int(ex, token_task, 0);
    wait_started(1);
    assert_int_equal(conc_future_cancel(f), 0);
    assert_conc(conc_future_result(f, WAIT_S, NULL, NULL), CONC_ECANCELED);
    assert_int_equal(conc_future_cancelled(f), 1);
    assert_int_equal(conc_future_state_of(f), CONC_FUTURE_CANCELLED);
    /* The next task on the same thread starts with a fresh token. */
    conc_future *g = submit_int(ex, held_token_task, 0);
    wait_started(1);
    release_gate();
    assert_int_equal(future_int(g), 0);
    conc_future_free(g);
    conc_future_free(f);
    close_exec(ex);
}

/* A thread task may wait for a task submitted after it (as in Python,
 * while workers are free): workers take jobs by batches, and a job in the
 * batch of a worker stuck in such a wait is taken by another worker. */
static conc_event *later_ev;

static int
wait_later_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    return conc_event_wait(later_ev, WAIT_S);
}

static int
set_later_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg, (void)len, (void)result;
    conc_event_set(later_ev);
    return 0;
}

static void
test_wait_for_later_task_threads(void **state)
{
    (void)state;
    fixture_open();
    assert_conc_ok(conc_event_new(NULL, &later_ev));
    conc_executor *ex =
        new_exec(THREADS, &(conc_executor_opts){.max_workers = 2});
    for (int round = 0; round < 200; round++) {
        conc_event_clear(later_ev);
        conc_future *w = submit_int(ex, wait_later_task, 0);
        conc_future *tiny[3];
        for (int i = 0; i < 3; i++)
            tiny[i] = submit_int(ex, square_task, i);
        conc_future *set = submit_int(ex, set_later_task, 0);
        assert_conc_ok(conc_future_result(w, WAIT_S, NULL, NULL));
        assert_conc_ok(conc_future_result(set, WAIT_S, NULL, NULL));
        for (int i = 0; i < 3; i++) {
            assert_int_equal(future_int(tiny[i]), i * i);
            conc_future_free(tiny[i]);
        }
        conc_future_free(set);
        conc_future_free(w);
    }
    conc_executor_free(ex);
    conc_event_free(later_ev);
    fixture_close();
}

/* ---- Map ----------------------------------------------------------------- */

static void
check_square_map(conc_map_iter *it, int n)
{
    for (int i = 0; i < n; i++) {
        const void *data = NULL;
        size_t len = 0;
        assert_conc_ok(conc_map_next(it, CONC_FOREVER, &data, &len));
        assert_int_equal(conc_map_index(it), i);
        assert_int_equal(len, sizeof(int));
        int v;
        memcpy(&v, data, sizeof v);
        assert_int_equal(v, i * i);
    }
    assert_conc(conc_map_next(it, CONC_FOREVER, NULL, NULL), CONC_ECLOSED);
    assert_conc(conc_map_next(it, CONC_FOREVER, NULL, NULL), CONC_ECLOSED);
}

static void
body_map_order(enum kind k)
{
    conc_executor *ex = open_exec(k, 3);
    enum { N = 200 };
    int in[N];
    for (int i = 0; i < N; i++)
        in[i] = i;
    size_t chunks[] = {0, 1, 7, N, 5 * N};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        conc_items items = CONC_ITEMS(in, N);
        conc_map_opts mo = {.chunksize = chunks[c]};
        conc_map_iter *it = NULL;
        assert_conc_ok(conc_executor_map(ex, square_task, &items, &mo, &it));
        check_square_map(it, N);
        conc_map_free(it);
    }
    /* NULL options, and an empty input. */
    conc_items items = CONC_ITEMS(in, N);
    conc_map_iter *it;
    assert_conc_ok(conc_executor_map(ex, square_task, &items, NULL, &it));
    check_square_map(it, N);
    conc_map_free(it);
    items.count = 0;
    assert_conc_ok(conc_executor_map(ex, square_task, &items, NULL, &it));
    assert_conc(conc_map_next(it, CONC_FOREVER, NULL, NULL), CONC_ECLOSED);
    conc_map_free(it);
    conc_map_free(NULL);

    /* Freeing a map before reading it all. */
    items.count = N;
    assert_conc_ok(conc_executor_map(ex, square_task, &items, NULL, &it));
    assert_conc_ok(conc_map_next(it, CONC_FOREVER, NULL, NULL));
    conc_map_free(it);
    close_exec(ex);
}

/* A failed item reports its code and message; the map goes on. */
static void
body_map_failure(enum kind k)
{
    conc_executor *ex = open_exec(k, 2);
    enum { N = 25 };
    int in[N];
    conc_items items = number_items(in, N);
    conc_map_opts mo = {.chunksize = 4};
    conc_map_iter *it;
    assert_conc_ok(
        conc_executor_map(ex, square_or_fail_task, &items, &mo, &it));
    for (int i = 0; i < N; i++) {
        const void *data;
        size_t len;
        int rc = conc_map_next(it, CONC_FOREVER, &data, &len);
        assert_int_equal(conc_map_index(it), i);
        if (i % 10 == 3) {
            char want[32];
            snprintf(want, sizeof want, "bad item %d", i);
            assert_conc(rc, CONC_EVALUE);
            assert_string_equal(conc_failure_message(), want);
        } else {
            assert_conc_ok(rc);
            assert_int_equal(len, sizeof(int));
            assert_int_equal(*(const int *)data, i * i);
        }
    }
    assert_conc(conc_map_next(it, CONC_FOREVER, NULL, NULL), CONC_ECLOSED);
    conc_map_free(it);
    close_exec(ex);
}

/* A generator input: counts how far it was consumed. */
struct gen {
    atomic_int calls;
    int n;
    int fail_at; /* >= 0: fail instead of yielding this item */
};

static int
gen_next(void *ctx, conc_buf *item)
{
    struct gen *g = ctx;
    int i = atomic_fetch_add(&g->calls, 1);
    if (i == g->fail_at)
        return conc_fail(CONC_EVALUE, "generator broke at %d", i);
    if (i >= g->n)
        return 0;
    return conc_buf_append(item, &i, sizeof i) == 0 ? 1 : CONC_ENOMEM;
}

static void
body_map_lazy(enum kind k)
{
    conc_executor *ex = open_exec(k, 2);
    enum { N = 60, IN_FLIGHT = 4, CHUNK = 2 };
    struct gen g = {.n = N, .fail_at = -1};
    conc_items items = {.next = gen_next, .ctx = &g};
    conc_map_opts mo = {.chunksize = CHUNK, .max_in_flight = IN_FLIGHT};
    conc_map_iter *it;
    assert_conc_ok(conc_executor_map(ex, held_task, &items, &mo, &it));
    /* Both workers hold the first item of a chunk: the map has read at
     * most IN_FLIGHT chunks (plus one look past them) and no more. */
    wait_started(2);
    int consumed = atomic_load(&g.calls);
    assert_true(consumed >= 2 * CHUNK);
    assert_true(consumed <= IN_FLIGHT * CHUNK + 1);
    release_gate();
    check_square_map(it, N);
    assert_true(atomic_load(&g.calls) >= N + 1);
    conc_map_free(it);

    /* A generator that fails: the items before it, then its failure. */
    struct gen bad = {.n = N, .fail_at = 5};
    items.ctx = &bad;
    assert_conc_ok(conc_executor_map(ex, square_task, &items, &mo, &it));
    for (int i = 0; i < 5; i++) {
        const void *data;
        size_t len;
        assert_conc_ok(conc_map_next(it, CONC_FOREVER, &data, &len));
        assert_int_equal(*(const int *)data, i * i);
    }
    assert_conc(conc_map_next(it, CONC_FOREVER, NULL, NULL), CONC_EVALUE);
    assert_string_equal(conc_failure_message(), "generator broke at 5");
    conc_map_free(it);
    assert_true(atomic_load(&bad.calls) <= 6);
    close_exec(ex);
}

static void
body_map_timeout(enum kind k)
{
    conc_executor *ex = open_exec(k, 2);
    int in[6] = {0, 1, 2, 3, 4, 5};
    conc_items items = CONC_ITEMS(in, 6);
    conc_map_opts mo = {.timed = 1, .timeout = SHORT_S};
    conc_map_iter *it;
    double t0 = conc_monotonic();
    assert_conc_ok(conc_executor_map(ex, held_task, &items, &mo, &it));
    assert_conc(conc_map_next(it, CONC_FOREVER, NULL, NULL), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    /* The map's time is spent: it times out again at once. */
    assert_conc(conc_map_next(it, CONC_FOREVER, NULL, NULL), CONC_ETIMEDOUT);
    wait_started(1);
    release_gate();
    conc_map_free(it); /* waits for what runs */
    close_exec(ex);
}

/* A map's timeout follows the rules of every timeout once `timed` is set:
 * NaN is refused, 0 and other negative values never wait. */
static void
body_map_timeout_rules(enum kind k)
{
    conc_executor *ex = open_exec(k, 2);
    int in[4] = {0, 1, 2, 3};
    conc_items items = CONC_ITEMS(in, 4);
    conc_map_iter *it = NULL;
    conc_map_opts nan = {.timed = 1, .timeout = 0.0 / 0.0};
    assert_conc(conc_executor_map(ex, held_task, &items, &nan, &it),
                CONC_EINVAL);
    assert_null(it);
    const double never[] = {0.0, -5.0};
    for (int i = 0; i < 2; i++) {
        conc_map_opts mo = {.timed = 1, .timeout = never[i]};
        double t0 = conc_monotonic();
        assert_conc_ok(conc_executor_map(ex, held_task, &items, &mo, &it));
        assert_conc(conc_map_next(it, WAIT_S, NULL, NULL), CONC_ETIMEDOUT);
        assert_true(conc_monotonic() - t0 < WAIT_S / 2);
        release_gate();
        conc_map_free(it);
        conc_event_clear(fx.gate);
        forget_started();
    }
    /* Untimed: the results come, however long they take. */
    conc_map_opts untimed = {.timeout = 0.0};
    assert_conc_ok(conc_executor_map(ex, square_task, &items, &untimed, &it));
    for (int i = 0; i < 4; i++) {
        const void *data;
        assert_conc_ok(conc_map_next(it, WAIT_S, &data, NULL));
        assert_int_equal(*(const int *)data, i * i);
    }
    conc_map_free(it);
    close_exec(ex);
}

struct progress_log {
    int calls;
    int bad; /* done went back, or total changed */
    size_t last_done, total;
};

static void
progress_fn(void *arg, size_t done, size_t total)
{
    struct progress_log *p = arg;
    if (p->calls > 0 && done <= p->last_done)
        p->bad++;
    if (p->calls > 0 && p->total && total != p->total)
        p->bad++;
    p->calls++;
    p->last_done = done;
    p->total = total;
}

static void
body_map_progress(enum kind k)
{
    conc_executor *ex = open_exec(k, 2);
    enum { N = 40 };
    int in[N];
    for (int i = 0; i < N; i++)
        in[i] = i;
    struct progress_log p = {0};
    conc_items items = CONC_ITEMS(in, N);
    conc_map_opts mo = {
        .chunksize = 3, .progress = progress_fn, .progress_arg = &p};
    conc_map_iter *it;
    assert_conc_ok(conc_executor_map(ex, square_task, &items, &mo, &it));
    check_square_map(it, N);
    conc_map_free(it);
    assert_true(p.calls > 0);
    assert_int_equal(p.bad, 0);
    assert_int_equal(p.last_done, N);
    assert_int_equal(p.total, N);

    /* A generator: the total is 0 until its end is known. */
    struct gen g = {.n = N, .fail_at = -1};
    conc_items gi = {.next = gen_next, .ctx = &g};
    struct progress_log pg = {0};
    mo.progress_arg = &pg;
    assert_conc_ok(conc_executor_map(ex, square_task, &gi, &mo, &it));
    check_square_map(it, N);
    conc_map_free(it);
    assert_true(pg.calls > 0);
    assert_int_equal(pg.bad, 0);
    assert_int_equal(pg.last_done, N);
    assert_true(pg.total == 0 || pg.total == N);
    close_exec(ex);
}

static void
body_map_invalid(enum kind k)
{
    conc_executor *ex = open_exec(k, 1);
    int in[3] = {1, 2, 3};
    conc_items items = CONC_ITEMS(in, 3);
    conc_map_iter *it = NULL;
    assert_conc(conc_executor_map(ex, NULL, &items, NULL, &it), CONC_EINVAL);
    assert_conc(conc_executor_map(ex, square_task, NULL, NULL, &it),
                CONC_EINVAL);
    assert_conc(conc_executor_map(ex, square_task, &items, NULL, NULL),
                CONC_EINVAL);
    conc_items nobase = {.base = NULL, .size = 4, .count = 3};
    assert_conc(conc_executor_map(ex, square_task, &nobase, NULL, &it),
                CONC_EINVAL);
    conc_items nosize = {.base = in, .size = 0, .count = 3};
    assert_conc(conc_executor_map(ex, square_task, &nosize, NULL, &it),
                CONC_EINVAL);
    assert_null(it);
    assert_conc_ok(conc_executor_shutdown(ex, 1, 0, CONC_FOREVER));
    assert_conc(conc_executor_map(ex, square_task, &items, NULL, &it),
                CONC_ECLOSED);
    assert_null(it);
    close_exec(ex);
}

/* shutdown(cancel_futures) during a map: what never started is cancelled. */
static void
body_map_cancel_futures(enum kind k)
{
    conc_executor *ex = open_exec(k, 1);
    enum { N = 10 };
    int in[N];
    conc_items items = number_items(in, N);
    conc_map_opts mo = {.max_in_flight = 4};
    conc_map_iter *it;
    assert_conc_ok(conc_executor_map(ex, held_task, &items, &mo, &it));
    wait_started(1);
    assert_conc_ok(conc_executor_shutdown(ex, 0, 1, CONC_FOREVER));
    release_gate();
    const void *data;
    size_t len;
    assert_conc_ok(conc_map_next(it, CONC_FOREVER, &data, &len));
    assert_int_equal(*(const int *)data, 0);
    int cancelled = 0, rc = 0;
    for (int i = 1; i < 3 * N; i++) {
        rc = conc_map_next(it, WAIT_S, NULL, NULL);
        if (rc == CONC_ECLOSED)
            break;
        if (rc == CONC_ECANCELED)
            cancelled++;
        else
            assert_conc_ok(rc);
    }
    assert_true(cancelled > 0);
    conc_map_free(it);
    assert_true(atomic_load(&fx.sh->started) < N);
    close_exec(ex);
}

/* ---- Shutdown ------------------------------------------------------------ */

struct shutdown_call {
    conc_executor *ex;
    int wait, cancel_futures;
    conc_event *done;
    int rc;
};

static int
shutdown_fn(void *arg)
{
    struct shutdown_call *s = arg;
    s->rc =
        conc_executor_shutdown(s->ex, s->wait, s->cancel_futures, CONC_FOREVER);
    conc_event_set(s->done);
    return 0;
}

static void
check_closed(conc_executor *ex)
{
    conc_future *f = NULL;
    int v = 1;
    conc_clear_failure();
    assert_conc(conc_executor_submit(ex, square_task, &v, sizeof v, &f),
                CONC_ECLOSED);
    assert_null(f);
    assert_non_null(strstr(conc_failure_message(), "after shutdown"));
}

static void
body_shutdown_wait(enum kind k)
{
    conc_executor *ex = open_exec(k, 2);
    conc_future *f = submit_int(ex, held_task, 3);
    wait_started(1);
    struct shutdown_call s = {.ex = ex, .wait = 1};
    assert_conc_ok(conc_event_new(NULL, &s.done));
    conc_thread *t = start_thread(shutdown_fn, &s);
    /* It waits for the running task. */
    assert_conc(conc_event_wait(s.done, SHORT_S), CONC_ETIMEDOUT);
    assert_int_equal(conc_future_running(f), 1);
    release_gate();
    join_thread(t);
    assert_conc_ok(s.rc);
    assert_int_equal(conc_future_done(f), 1);
    assert_int_equal(future_int(f), 9);
    check_closed(ex);
    assert_conc_ok(conc_executor_shutdown(ex, 1, 0, CONC_FOREVER));
    assert_conc_ok(conc_executor_shutdown(ex, 0, 1, CONC_FOREVER));
    conc_event_free(s.done);
    conc_future_free(f);
    close_exec(ex);
}

static void
body_shutdown_nowait(enum kind k)
{
    conc_executor *ex = open_exec(k, 1);
    conc_future *f = submit_int(ex, held_task, 4);
    conc_future *g = submit_int(ex, count_task, 5);
    wait_started(1);
    assert_conc_ok(conc_executor_shutdown(ex, 0, 0, CONC_FOREVER));
    assert_int_equal(conc_future_done(f), 0);
    check_closed(ex);
    release_gate();
    /* Without cancel_futures, pending work still runs. */
    assert_int_equal(future_int(f), 16);
    assert_int_equal(future_int(g), 5);
    conc_future_free(f);
    conc_future_free(g);
    close_exec(ex);
}

static void
body_shutdown_cancel(enum kind k)
{
    conc_executor *ex = open_exec(k, 1);
    conc_future *a = submit_int(ex, held_task, 2);
    wait_started(1);
    conc_future *pending[5];
    for (int i = 0; i < 5; i++)
        pending[i] = submit_int(ex, count_task, i);
    assert_conc_ok(conc_executor_shutdown(ex, 0, 1, CONC_FOREVER));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(conc_future_cancelled(pending[i]), 1);
        assert_conc(conc_future_result(pending[i], 0, NULL, NULL),
                    CONC_ECANCELED);
        conc_future_free(pending[i]);
    }
    check_closed(ex);
    release_gate();
    assert_int_equal(future_int(a), 4);
    assert_conc_ok(conc_executor_shutdown(ex, 1, 0, CONC_FOREVER));
    assert_int_equal(atomic_load(&fx.sh->finished), 0);
    conc_future_free(a);
    close_exec(ex);
}

/* The same once the executor has run many tiny tasks (a process executor
 * may then queue more work per worker): what has not started is still
 * pending, and cancelled. */
static void
body_shutdown_cancel_warm(enum kind k)
{
    conc_executor *ex = open_exec(k, 1);
    int in[300];
    conc_items items = number_items(in, 300);
    conc_map_iter *it;
    assert_conc_ok(conc_executor_map(ex, square_task, &items, NULL, &it));
    check_square_map(it, 300);
    conc_map_free(it);
    conc_future *a = submit_int(ex, held_task, 2);
    wait_started(1);
    conc_future *pending[5];
    for (int i = 0; i < 5; i++)
        pending[i] = submit_int(ex, count_task, i);
    for (int i = 0; i < 5; i++)
        assert_int_equal(conc_future_state_of(pending[i]), CONC_FUTURE_PENDING);
    assert_int_equal(conc_future_cancel(pending[0]), 1);
    assert_conc_ok(conc_executor_shutdown(ex, 0, 1, CONC_FOREVER));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(conc_future_cancelled(pending[i]), 1);
        conc_future_free(pending[i]);
    }
    release_gate();
    assert_int_equal(future_int(a), 4);
    conc_future_free(a);
    conc_executor_free(ex);
    assert_int_equal(atomic_load(&fx.sh->finished), 0);
    fixture_close();
}

static void
body_shutdown_runs_pending(enum kind k)
{
    conc_executor *ex = open_exec(k, 2);
    enum { N = 50 };
    conc_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = submit_int(ex, count_task, i);
    assert_conc_ok(conc_executor_shutdown(ex, 1, 0, CONC_FOREVER));
    assert_int_equal(atomic_load(&fx.sh->finished), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(conc_future_done(fs[i]), 1);
        assert_int_equal(future_int(fs[i]), i);
        conc_future_free(fs[i]);
    }
    close_exec(ex);
}

/* shutdown(wait) from one of the executor's own tasks would wait for
 * itself. Threads only: a process task cannot reach its executor. */
static conc_executor *self_ex;

static int
shutdown_self_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    (void)result;
    int rc = conc_executor_shutdown(self_ex, 1, 0, CONC_FOREVER);
    return rc < 0 ? rc : 0;
}

static void
test_shutdown_deadlock_threads(void **state)
{
    (void)state;
    fixture_open();
    self_ex = new_exec(THREADS, &(conc_executor_opts){.max_workers = 1});
    conc_future *f = submit_int(self_ex, shutdown_self_task, 0);
    assert_conc(conc_future_result(f, WAIT_S, NULL, NULL), CONC_EDEADLK);
    conc_future_free(f);
    conc_executor_free(self_ex);
    self_ex = NULL;
    fixture_close();
}

/* ---- Bounded submission -------------------------------------------------- */

struct submitter {
    conc_executor *ex;
    conc_event *done;
    conc_future *f;
    int rc;
};

static int
submitter_fn(void *arg)
{
    struct submitter *s = arg;
    int v = 6;
    s->rc = conc_executor_submit(s->ex, square_task, &v, sizeof v, &s->f);
    conc_event_set(s->done);
    return 0;
}

/* Fills the queue: one held task running, max_pending waiting. */
static conc_executor *
full_executor(enum kind k, conc_submit_mode mode, conc_future **fs)
{
    conc_executor_opts o = {.max_workers = 1,
                            .max_pending = 2,
                            .submit_mode = mode,
                            .submit_timeout = SHORT_S};
    conc_executor *ex = new_exec(k, &o);
    fs[0] = submit_int(ex, held_task, 1);
    wait_started(1);
    fs[1] = submit_int(ex, square_task, 2);
    fs[2] = submit_int(ex, square_task, 3);
    return ex;
}

static void
drain(conc_future **fs)
{
    release_gate();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(future_int(fs[i]), (i + 1) * (i + 1));
        conc_future_free(fs[i]);
    }
}

static void
body_bounded_fail(enum kind k)
{
    fixture_open();
    conc_future *fs[3];
    conc_executor *ex = full_executor(k, CONC_SUBMIT_FAIL, fs);
    conc_future *f = NULL;
    int v = 4;
    assert_conc(conc_executor_submit(ex, square_task, &v, sizeof v, &f),
                CONC_EFULL);
    assert_null(f);
    drain(fs);
    /* Room again. */
    f = submit_int(ex, square_task, 4);
    assert_int_equal(future_int(f), 16);
    conc_future_free(f);
    close_exec(ex);
}

static void
body_bounded_timeout(enum kind k)
{
    fixture_open();
    conc_future *fs[3];
    conc_executor *ex = full_executor(k, CONC_SUBMIT_TIMEOUT, fs);
    conc_future *f = NULL;
    int v = 4;
    double t0 = conc_monotonic();
    assert_conc(conc_executor_submit(ex, square_task, &v, sizeof v, &f),
                CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    assert_null(f);
    drain(fs);
    close_exec(ex);
}

/* A per-call timeout bounds the wait for room whatever the executor's
 * mode: a blocking executor's submit gives up in time, a failing one's
 * waits; 0 never waits; NaN is refused. */
static void
body_bounded_call_timeout(enum kind k)
{
    static const conc_submit_mode modes[] = {CONC_SUBMIT_BLOCK,
                                             CONC_SUBMIT_FAIL};
    for (size_t m = 0; m < 2; m++) {
        fixture_open();
        conc_future *fs[3];
        conc_executor *ex = full_executor(k, modes[m], fs);
        conc_future *f = NULL;
        int v = 4;
        conc_submit_opts so = {.timed = 1, .timeout = SHORT_S};
        double t0 = conc_monotonic();
        assert_conc(
            conc_executor_submit_with(ex, square_task, &v, sizeof v, &so, &f),
            CONC_ETIMEDOUT);
        assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
        assert_null(f);
        so.timeout = 0;
        assert_conc(
            conc_executor_submit_with(ex, square_task, &v, sizeof v, &so, &f),
            CONC_ETIMEDOUT);
        so.timeout = NAN;
        assert_conc(
            conc_executor_submit_with(ex, square_task, &v, sizeof v, &so, &f),
            CONC_EINVAL);
        assert_null(f);
        drain(fs);
        /* Room again: the timed submit goes through at once. */
        so.timeout = SHORT_S;
        assert_conc_ok(
            conc_executor_submit_with(ex, square_task, &v, sizeof v, &so, &f));
        assert_int_equal(future_int(f), 16);
        conc_future_free(f);
        conc_executor_free(ex);
        fixture_close();
    }
}

static void
body_bounded_block(enum kind k)
{
    fixture_open();
    conc_future *fs[3];
    conc_executor *ex = full_executor(k, CONC_SUBMIT_BLOCK, fs);
    struct submitter s = {.ex = ex, .rc = 1};
    assert_conc_ok(conc_event_new(NULL, &s.done));
    conc_thread *t = start_thread(submitter_fn, &s);
    assert_conc(conc_event_wait(s.done, SHORT_S), CONC_ETIMEDOUT);
    drain(fs);
    join_thread(t);
    assert_conc_ok(s.rc);
    assert_int_equal(future_int(s.f), 36);
    conc_future_free(s.f);
    conc_event_free(s.done);

    /* A submitter blocked at shutdown is told the executor closed. */
    conc_event_clear(fx.gate);
    fs[0] = submit_int(ex, held_task, 1);
    wait_started(1);
    fs[1] = submit_int(ex, square_task, 2);
    fs[2] = submit_int(ex, square_task, 3);
    s = (struct submitter){.ex = ex, .rc = 1};
    assert_conc_ok(conc_event_new(NULL, &s.done));
    t = start_thread(submitter_fn, &s);
    assert_conc(conc_event_wait(s.done, SHORT_S), CONC_ETIMEDOUT);
    assert_conc_ok(conc_executor_shutdown(ex, 0, 0, CONC_FOREVER));
    assert_conc_ok(conc_event_wait(s.done, WAIT_S));
    join_thread(t);
    assert_conc(s.rc, CONC_ECLOSED);
    conc_event_free(s.done);
    drain(fs);
    close_exec(ex);
}

/* shutdown(cancel_futures) with a submitter blocked for room and the only
 * worker busy: shutdown returns, the submitter is refused, the queued
 * tasks are cancelled, the running one finishes. */
static void
body_bounded_shutdown_cancel(enum kind k)
{
    fixture_open();
    conc_future *fs[3];
    conc_executor *ex = full_executor(k, CONC_SUBMIT_BLOCK, fs);
    struct submitter s = {.ex = ex, .rc = 1};
    assert_conc_ok(conc_event_new(NULL, &s.done));
    conc_thread *t = start_thread(submitter_fn, &s);
    assert_conc(conc_event_wait(s.done, SHORT_S), CONC_ETIMEDOUT);
    assert_conc_ok(conc_executor_shutdown(ex, 0, 1, CONC_FOREVER));
    assert_conc_ok(conc_event_wait(s.done, WAIT_S));
    join_thread(t);
    assert_conc(s.rc, CONC_ECLOSED);
    assert_int_equal(conc_future_cancelled(fs[1]), 1);
    assert_int_equal(conc_future_cancelled(fs[2]), 1);
    release_gate();
    assert_int_equal(future_int(fs[0]), 1);
    for (int i = 0; i < 3; i++)
        conc_future_free(fs[i]);
    conc_event_free(s.done);
    close_exec(ex);
}

/* ---- Initializer --------------------------------------------------------- */

static void
body_initializer(enum kind k)
{
    fixture_open();
    int tag = 1234;
    conc_executor_opts o = {.max_workers = 2,
                            .initializer = init_fn,
                            .initarg = &tag,
                            .initarg_len = sizeof tag};
    conc_executor *ex = new_exec(k, &o);
    tag = 0; /* the executor copied it */
    conc_future *fs[20];
    for (int i = 0; i < 20; i++)
        fs[i] = submit_int(ex, tag_task, 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(future_int(fs[i]), 1234);
        conc_future_free(fs[i]);
    }
    conc_executor_free(ex);
    int runs = atomic_load(&fx.sh->init_runs);
    assert_true(runs >= 1 && runs <= 2);
    fixture_close();
}

static void
body_initializer_fails(enum kind k)
{
    fixture_open();
    conc_executor_opts o = {.max_workers = 2, .initializer = failing_init_fn};
    conc_executor *ex = NULL;
    int rc = k == THREADS ? conc_thread_executor_new(&o, &ex)
                          : conc_process_executor_new(&o, &ex);
    if (rc == CONC_EBROKEN) {
        /* Process workers start at creation: the failure may show here. */
        assert_true(k == PROCESSES);
        assert_null(ex);
        fixture_close();
        return;
    }
    assert_conc_ok(rc);
    conc_future *f = NULL;
    int v = 2;
    rc = conc_executor_submit(ex, square_task, &v, sizeof v, &f);
    if (rc == 0) {
        assert_conc(conc_future_result(f, WAIT_S, NULL, NULL), CONC_EBROKEN);
        conc_future_free(f);
        f = NULL;
    } else {
        assert_conc(rc, CONC_EBROKEN);
    }
    /* Once broken, always broken. */
    assert_conc(conc_executor_submit(ex, square_task, &v, sizeof v, &f),
                CONC_EBROKEN);
    assert_null(f);
    assert_true(atomic_load(&fx.sh->init_runs) >= 1);
    close_exec(ex);
}

/* ---- Descriptor passing -------------------------------------------------- */

/* Reads exactly n bytes within WAIT_S. */
static void
read_full(int fd, char *buf, size_t n)
{
    while (n) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&pf, 1, (int)(WAIT_S * 1000)), 1);
        ssize_t r = read(fd, buf, n);
        assert_true(r > 0);
        buf += r;
        n -= (size_t)r;
    }
}

/* Whether the other end is closed everywhere within WAIT_S. */
static int
wait_eof(int fd)
{
    char c;
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, (int)(WAIT_S * 1000)) != 1)
        return 0;
    return read(fd, &c, 1) == 0;
}

static void
body_fd_passing(enum kind k)
{
    conc_executor *ex = open_exec(k, 2);
    assert_int_equal(conc_task_fd(), -1);
    for (int take = 0; take < 2; take++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                         0);
        conc_submit_opts so = {.has_fd = 1, .fd = sv[1]};
        conc_future *f = NULL;
        assert_conc_ok(conc_executor_submit_with(
            ex, take ? fd_take_task : fd_write_task, "hello", 5, &so, &f));
        /* The executor has its own copy. */
        close(sv[1]);
        char buf[6] = {0};
        read_full(sv[0], buf, 5);
        assert_string_equal(buf, "hello");
        assert_conc_ok(conc_future_result(f, WAIT_S, NULL, NULL));
        conc_future_free(f);
        /* Every copy is closed once the task is done. */
        assert_true(wait_eof(sv[0]));
        close(sv[0]);
    }
    /* A task with no descriptor. */
    conc_future *f = NULL;
    assert_conc_ok(conc_executor_submit_with(
        ex, no_fd_task, NULL, 0, &(conc_submit_opts){.fd = -1}, &f));
    const void *data;
    size_t len;
    assert_conc_ok(conc_future_result(f, WAIT_S, &data, &len));
    assert_int_equal(len, 2 * sizeof(int));
    assert_int_equal(((const int *)data)[0], -1);
    assert_int_equal(((const int *)data)[1], -1);
    conc_future_free(f);
    assert_conc_ok(
        conc_executor_submit_with(ex, no_fd_task, NULL, 0, NULL, &f));
    assert_conc_ok(conc_future_result(f, WAIT_S, &data, &len));
    assert_int_equal(((const int *)data)[0], -1);
    conc_future_free(f);
    close_exec(ex);
}

/* ---- Scoped form --------------------------------------------------------- */

static void
body_scoped(enum kind k)
{
    fixture_open();
    conc_future *fs[10];
    {
        CONC_EXECUTOR_SCOPED conc_executor *ex =
            new_exec(k, &(conc_executor_opts){.max_workers = 2});
        for (int i = 0; i < 10; i++)
            fs[i] = submit_int(ex, count_task, i);
    }
    /* Leaving the scope waited for every task. */
    assert_int_equal(atomic_load(&fx.sh->finished), 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(conc_future_done(fs[i]), 1);
        assert_int_equal(future_int(fs[i]), i);
        conc_future_free(fs[i]);
    }
    {
        CONC_EXECUTOR_SCOPED conc_executor *none = NULL;
        (void)none;
    }
    fixture_close();
}

/* ---- Many submitting threads --------------------------------------------- */

struct client {
    conc_executor *ex;
    int base;
    int bad;
};

static int
client_fn(void *arg)
{
    struct client *c = arg;
    enum { M = 150 };
    conc_future *fs[M];
    for (int i = 0; i < M; i++) {
        int v = c->base + i;
        if (conc_executor_submit(c->ex, square_task, &v, sizeof v, &fs[i]))
            return -1;
    }
    for (int i = 0; i < M; i++) {
        const void *data;
        size_t len;
        int v = c->base + i;
        if (conc_future_result(fs[i], WAIT_S, &data, &len) != 0 ||
            len != sizeof v || *(const int *)data != v * v)
            c->bad++;
        conc_future_free(fs[i]);
    }
    return 0;
}

static void
body_many_clients(enum kind k)
{
    conc_executor *ex = open_exec(k, 3);
    enum { C = 4 };
    struct client c[C];
    conc_thread *t[C];
    for (int i = 0; i < C; i++) {
        c[i] = (struct client){.ex = ex, .base = i * 1000};
        t[i] = start_thread(client_fn, &c[i]);
    }
    for (int i = 0; i < C; i++) {
        join_thread(t[i]);
        assert_int_equal(c[i].bad, 0);
    }
    close_exec(ex);
}

int
main(void)
{
    warm_up_threads();
    const struct CMUnitTest tests[] = {
        conc_unit_test(test_cancel_token_threads),
        conc_unit_test(test_wait_for_later_task_threads),
        conc_unit_test(test_shutdown_deadlock_threads),
    };
    const struct scenario scenarios[] = {
        SCENARIO(body_defaults),
        SCENARIO(body_invalid_options),
        SCENARIO(body_submit_result),
        SCENARIO(body_submit_invalid),
        SCENARIO(body_task_failure),
        SCENARIO(body_drop_futures),
        SCENARIO(body_futures_outlive),
        SCENARIO(body_cancel),
        SCENARIO(body_map_order),
        SCENARIO(body_map_failure),
        SCENARIO(body_map_lazy),
        SCENARIO(body_map_timeout),
        SCENARIO(body_map_timeout_rules),
        SCENARIO(body_map_progress),
        SCENARIO(body_map_invalid),
        SCENARIO(body_map_cancel_futures),
        SCENARIO(body_shutdown_wait),
        SCENARIO(body_shutdown_nowait),
        SCENARIO(body_shutdown_cancel),
        SCENARIO(body_shutdown_cancel_warm),
        SCENARIO(body_shutdown_runs_pending),
        SCENARIO(body_bounded_fail),
        SCENARIO(body_bounded_timeout),
        SCENARIO(body_bounded_block),
        SCENARIO(body_bounded_call_timeout),
        SCENARIO(body_bounded_shutdown_cancel),
        SCENARIO(body_initializer),
        SCENARIO(body_initializer_fails),
        SCENARIO(body_fd_passing),
        SCENARIO(body_scoped),
        SCENARIO(body_many_clients),
    };
    return conc_run_per_engine(tests, scenarios);
}
