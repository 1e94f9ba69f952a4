/* Pool and ThreadPool (multiprocessing.pool), the shared API: both run
 * the same tasks through the same test bodies. apply, apply_async with
 * callback and error_callback (in completion order, one at a time, in the
 * documented thread), map over a C array with chunks and fixed-size
 * results, map's first failure in input order, map_async and AsyncResult
 * (get, wait, ready, successful), imap and imap_unordered with
 * next(timeout), starmap, close/terminate/join and their misuse, the
 * initializer, descriptor passing (a socket served by a pool task), and
 * many calling threads: every scenario once on each engine of the table
 * (tasks.h). What only process pools do (maxtasksperchild, deaths,
 * task_timeout) is in test_pool_procs.c.
 *
 * Tasks that must stay running wait on the shared gate or on their own
 * semaphore (tasks.h), so the test knows exactly which tasks run. Nothing
 * sleeps to synchronize and every wait is bounded. */
#include <math.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tasks.h"

/* ---- Tasks of this program (more in tasks.h) ----------------------------- */

/* Item v starts, then waits until the test releases item_gate[v]. */
static int
gated_task(const void *arg, size_t len, conc_buf *result)
{
    int v = arg_int(arg, len);
    conc_sem_release(fx.started, 1);
    if (conc_sem_acquire(fx.item_gate[v % GATES], WAIT_S) != 0)
        return conc_fail(CONC_ETIMEDOUT, "item %d was never released", v);
    return put_tagged(result, v);
}

/* Item 0 waits for its gate; the others run at once. */
static int
first_held_task(const void *arg, size_t len, conc_buf *result)
{
    int v = arg_int(arg, len);
    if (v == 0 && conc_sem_acquire(fx.item_gate[0], WAIT_S) != 0)
        return conc_fail(CONC_ETIMEDOUT, "item 0 was never released");
    return put_int(result, v * v);
}

/* Item 5's result is too long for a map's fixed-size slots. */
static int
wrong_size_task(const void *arg, size_t len, conc_buf *result)
{
    int v = arg_int(arg, len);
    int r = put_int(result, v * v);
    if (v == 5)
        r = put_int(result, 0);
    return r;
}

/* Items 3 and 7 fail; item 3 only after item 7 has. */
static int
first_failure_task(const void *arg, size_t len, conc_buf *result)
{
    int v = arg_int(arg, len);
    if (v == 7) {
        conc_event_set(fx.seven_done);
        return conc_fail(CONC_EVALUE, "item 7");
    }
    if (v == 3) {
        /* Item 7 runs in another worker meanwhile, as in Python. */
        if (conc_event_wait(fx.seven_done, WAIT_S) != 0)
            return conc_fail(CONC_ETIMEDOUT, "item 7 never ran while "
                                             "item 3 waited");
        return conc_fail(CONC_EPERM, "item 3");
    }
    return put_int(result, v * v);
}

/* Results of varying sizes: "item-N" repeated N % 4 + 1 times. */
static int
text_task(const void *arg, size_t len, conc_buf *result)
{
    int v = arg_int(arg, len);
    for (int i = 0; i <= v % 4; i++)
        if (conc_buf_appendf(result, "item-%d;", v) < 0)
            return CONC_ENOMEM;
    return 0;
}

static void
text_of(int v, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i <= v % 4; i++)
        n += (size_t)snprintf(buf + n, cap - n, "item-%d;", v);
}

struct pair {
    int a, b;
};

static int
product_task(const void *arg, size_t len, conc_buf *result)
{
    struct pair p;
    if (len != sizeof p)
        return conc_fail(CONC_EINVAL, "want a pair");
    memcpy(&p, arg, sizeof p);
    return put_int(result, p.a * p.b);
}

/* Reads what its descriptor brings and sends it back upper-cased. */
static int
echo_fd_task(const void *arg, size_t len, conc_buf *result)
{
    (void)result;
    size_t want = (size_t)arg_int(arg, len);
    int fd = conc_task_fd();
    if (fd < 0)
        return conc_fail(CONC_EBADF, "no descriptor");
    char buf[64];
    size_t got = 0;
    while (got < want && got < sizeof buf) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, (int)(WAIT_S * 1000)) != 1)
            return conc_fail(CONC_ETIMEDOUT, "nothing to read");
        ssize_t n = read(fd, buf + got, sizeof buf - got);
        if (n <= 0)
            return conc_fail(CONC_EPIPE, "peer closed");
        got += (size_t)n;
    }
    for (size_t i = 0; i < got; i++)
        if (buf[i] >= 'a' && buf[i] <= 'z')
            buf[i] = (char)(buf[i] - 'a' + 'A');
    return write(fd, buf, got) == (ssize_t)got ? 0
                                               : conc_fail(CONC_EPIPE, "short");
}

/* ---- Creation ------------------------------------------------------------ */

static void
body_create(enum kind k)
{
    fixture_open();
    conc_pool *p = new_pool(k, NULL);
    assert_int_equal(conc_pool_processes(p), cpu_count());
    close_join(p);
    p = pool_of(k, 3);
    assert_int_equal(conc_pool_processes(p), 3);
    conc_pool_free(p); /* without close: terminated */
    conc_pool_free(NULL);

    int (*make)(const conc_pool_opts *, conc_pool **) = engines[k].pool_new;
    assert_conc(make(NULL, NULL), CONC_EINVAL);
    conc_pool_opts bad = {.processes = 1, .task_timeout = NAN};
    p = NULL;
    assert_conc(make(&bad, &p), CONC_EINVAL);
    assert_null(p);
    conc_test_fail_alloc_after(1);
    assert_conc(make(NULL, &p), CONC_ENOMEM);
    conc_test_fail_alloc_after(0);
    fixture_close();
}

/* ---- apply and apply_async ----------------------------------------------- */

static void
body_apply(enum kind k)
{
    conc_pool *p = open_pool(k, 2);
    conc_buf out = CONC_BUF_INIT;
    int v = 7;
    assert_conc_ok(
        conc_pool_apply(p, square_task, &v, sizeof v, CONC_FOREVER, &out));
    assert_int_equal(out.len, sizeof(int));
    assert_int_equal(*(int *)out.data, 49);
    /* Replaces what the buffer holds. */
    v = 3;
    assert_conc_ok(
        conc_pool_apply(p, square_task, &v, sizeof v, CONC_FOREVER, &out));
    assert_int_equal(out.len, sizeof(int));
    assert_int_equal(*(int *)out.data, 9);
    conc_buf_free(&out);
    assert_conc_ok(
        conc_pool_apply(p, square_task, &v, sizeof v, CONC_FOREVER, NULL));

    conc_clear_failure();
    v = 4;
    assert_conc(conc_pool_apply(p, fail_task, &v, sizeof v, CONC_FOREVER, &out),
                CONC_EVALUE);
    assert_string_equal(conc_failure_message(), "bad item 4");
    conc_buf_free(&out);

    assert_conc(conc_pool_apply(p, NULL, &v, sizeof v, CONC_FOREVER, NULL),
                CONC_EINVAL);
    assert_conc(conc_pool_apply(p, square_task, NULL, 4, CONC_FOREVER, NULL),
                CONC_EINVAL);
    conc_async_result *r = NULL;
    assert_conc(conc_pool_apply_async(p, NULL, &v, sizeof v, NULL, &r),
                CONC_EINVAL);
    assert_null(r);
    close_pool(p);
}

static void
body_async_result(enum kind k)
{
    conc_pool *p = open_pool(k, 2);
    conc_async_result *r = apply_int(p, held_task, 5, NULL);
    wait_started(1);
    /* Not ready: wait and get time out, successful is an error. */
    double t0 = conc_monotonic();
    assert_conc(conc_async_result_wait(r, SHORT_S), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    t0 = conc_monotonic();
    assert_conc(conc_async_result_get(r, SHORT_S, NULL, NULL), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    assert_int_equal(conc_async_result_ready(r), 0);
    assert_conc(conc_async_result_successful(r), CONC_ESTATE);
    release_gate();
    assert_conc_ok(conc_async_result_wait(r, WAIT_S));
    assert_int_equal(conc_async_result_ready(r), 1);
    assert_int_equal(conc_async_result_successful(r), 1);
    assert_int_equal(result_int(r), 25);
    conc_async_result_free(r);

    /* A failure: ready, not successful, get gives code and message. */
    r = apply_int(p, fail_task, 8, NULL);
    assert_conc_ok(conc_async_result_wait(r, WAIT_S));
    assert_int_equal(conc_async_result_ready(r), 1);
    assert_int_equal(conc_async_result_successful(r), 0);
    conc_clear_failure();
    assert_conc(conc_async_result_get(r, 0, NULL, NULL), CONC_EVALUE);
    assert_string_equal(conc_failure_message(), "bad item 8");
    conc_async_result_free(r);
    conc_async_result_free(NULL);

    /* Dropped at once: the pool keeps it until done. */
    for (int i = 0; i < 10; i++)
        conc_async_result_free(apply_int(p, count_task, i, NULL));
    close_join(p);
    assert_int_equal(atomic_load(&fx.sh->finished), 10);
    fixture_close();
}

/* Callbacks run in completion order, where pool.h says. */
static void
body_callbacks_order(enum kind k)
{
    fixture_open();
    static struct cb_log log;
    cb_log_init(&log);
    conc_pool *p = pool_of(k, 3);
    conc_apply_opts o = {
        .callback = ok_cb, .error_callback = err_cb, .arg = &log};
    conc_async_result *r[3];
    for (int i = 0; i < 3; i++)
        r[i] = apply_int(p, gated_task, i, &o);
    wait_started(3);
    int order[3] = {2, 0, 1};
    for (int i = 0; i < 3; i++) {
        assert_conc_ok(conc_sem_release(fx.item_gate[order[i]], 1));
        wait_callbacks(&log, 1);
        assert_int_equal(log.value[i], order[i]);
    }
    long main_tid = (long)gettid();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(log.len[i], sizeof(struct tagged));
        assert_int_equal(log.cb_pid[i], (int)getpid());
        assert_int_not_equal(log.cb_tid[i], main_tid);
        if (k == THREADS) /* in the worker that ran the task */
            assert_int_equal(log.cb_tid[i], log.task_tid[i]);
        else /* in the pool's one result thread */
            assert_int_equal(log.cb_tid[i], log.cb_tid[0]);
        conc_async_result_free(r[i]);
    }
    assert_int_equal(atomic_load(&log.n_err), 0);

    /* The callback has run by the time get returns (as in Python). */
    conc_async_result *q = apply_int(p, tagged_task, 11, &o);
    assert_conc_ok(conc_async_result_get(q, WAIT_S, NULL, NULL));
    assert_int_equal(atomic_load(&log.n_ok), 4);
    assert_int_equal(log.value[3], 11);
    conc_async_result_free(q);
    wait_callbacks(&log, 1);

    /* No AsyncResult wanted: only the callback sees the result. */
    int v = 12;
    assert_conc_ok(
        conc_pool_apply_async(p, tagged_task, &v, sizeof v, &o, NULL));
    wait_callbacks(&log, 1);
    assert_int_equal(log.value[4], 12);
    close_join(p);
    cb_log_fini(&log);
    fixture_close();
}

/* Failures go to error_callback only; callbacks never overlap. */
static void
body_callbacks_errors(enum kind k)
{
    fixture_open();
    static struct cb_log log;
    cb_log_init(&log);
    conc_pool *p = pool_of(k, 4);
    conc_apply_opts o = {
        .callback = ok_cb, .error_callback = err_cb, .arg = &log};
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        int v = i;
        assert_conc_ok(conc_pool_apply_async(p, square_or_fail_task, &v,
                                             sizeof v, &o, NULL));
    }
    wait_callbacks(&log, N);
    assert_int_equal(atomic_load(&log.overlaps), 0);
    assert_int_equal(atomic_load(&log.n_err), N / 10);
    assert_int_equal(atomic_load(&log.n_ok), N - N / 10);
    for (int i = 0; i < N / 10; i++) {
        assert_int_equal(log.code[i], CONC_EVALUE);
        assert_memory_equal(log.msg[i], "bad item ", 9);
        int item = atoi(log.msg[i] + 9);
        assert_int_equal(item % 10, 3);
    }
    /* Only an error callback: successes are dropped quietly. */
    conc_apply_opts only_err = {.error_callback = err_cb, .arg = &log};
    conc_async_result *r = apply_int(p, fail_task, 1, &only_err);
    wait_callbacks(&log, 1);
    assert_int_equal(atomic_load(&log.n_err), N / 10 + 1);
    conc_async_result_free(r);
    r = apply_int(p, square_task, 2, &only_err);
    assert_int_equal(result_int(r), 4);
    conc_async_result_free(r);
    close_join(p);
    assert_int_equal(atomic_load(&log.n_ok), N - N / 10);
    cb_log_fini(&log);
    fixture_close();
}

/* ---- map over a C array -------------------------------------------------- */

static void
body_map(enum kind k)
{
    conc_pool *p = open_pool(k, 3);
    enum { N = 1000 };
    static int in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i;
    size_t chunks[] = {0, 1, 7, N, 3 * N};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        memset(out, 0xff, sizeof out);
        conc_items items = CONC_ITEMS(in, N);
        conc_map_opts mo = {.chunksize = chunks[c]};
        assert_conc_ok(conc_pool_map(p, square_task, &items, out, sizeof *out,
                                     &mo, CONC_FOREVER));
        for (int i = 0; i < N; i++)
            assert_int_equal(out[i], i * i);
    }
    /* NULL options; results dropped; an empty input. */
    conc_items items = CONC_ITEMS(in, N);
    memset(out, 0, sizeof out);
    assert_conc_ok(conc_pool_map(p, square_task, &items, out, sizeof *out, NULL,
                                 CONC_FOREVER));
    assert_int_equal(out[N - 1], (N - 1) * (N - 1));
    assert_conc_ok(
        conc_pool_map(p, square_task, &items, NULL, 0, NULL, CONC_FOREVER));
    items.count = 0;
    assert_conc_ok(conc_pool_map(p, square_task, &items, out, sizeof *out, NULL,
                                 CONC_FOREVER));
    close_pool(p);
}

/* Each chunk runs whole in one worker. */
static void
check_chunks(const struct tagged *who, int n, int chunk)
{
    for (int i = 0; i < n; i++) {
        int first = i / chunk * chunk;
        assert_int_equal(who[i].pid, who[first].pid);
        assert_int_equal(who[i].tid, who[first].tid);
    }
}

static void
body_map_chunks(enum kind k)
{
    conc_pool *p = open_pool(k, 4);
    enum { N = 160 };
    static int in[N];
    static struct tagged who[N];
    conc_items items = number_items(in, N);
    conc_map_opts mo = {.chunksize = 25};
    assert_conc_ok(conc_pool_map(p, tagged_task, &items, who, sizeof *who, &mo,
                                 CONC_FOREVER));
    for (int i = 0; i < N; i++)
        assert_int_equal(who[i].value, i);
    check_chunks(who, N, 25);
    /* Python's default: ceil(160 / (4 * 4)) = 10 per chunk. */
    memset(who, 0, sizeof who);
    assert_conc_ok(conc_pool_map(p, tagged_task, &items, who, sizeof *who, NULL,
                                 CONC_FOREVER));
    check_chunks(who, N, 10);
    assert_int_equal(who[N - 1].value, N - 1);
    close_pool(p);
}

static void
body_map_failures(enum kind k)
{
    conc_pool *p = open_pool(k, 4);
    enum { N = 10 };
    int in[N], out[N];
    conc_items items = number_items(in, N);
    conc_map_opts one = {.chunksize = 1};

    /* A result of the wrong size fails its item; the others are stored. */
    memset(out, 0xff, sizeof out);
    assert_conc(conc_pool_map(p, wrong_size_task, &items, out, sizeof *out,
                              &one, CONC_FOREVER),
                CONC_EVALUE);
    for (int i = 0; i < N; i++)
        if (i != 5)
            assert_int_equal(out[i], i * i);

    /* The first failure in input order wins, though item 7 failed first. */
    conc_clear_failure();
    memset(out, 0xff, sizeof out);
    assert_conc(conc_pool_map(p, first_failure_task, &items, out, sizeof *out,
                              &one, CONC_FOREVER),
                CONC_EPERM);
    assert_string_equal(conc_failure_message(), "item 3");
    assert_int_equal(out[9], 81);
    assert_int_equal(out[0], 0);

    /* With chunks, too. */
    assert_conc(conc_pool_map(p, square_or_fail_task, &items, out, sizeof *out,
                              &(conc_map_opts){.chunksize = 4}, CONC_FOREVER),
                CONC_EVALUE);
    assert_string_equal(conc_failure_message(), "bad item 3");
    assert_int_equal(out[9], 81);
    close_pool(p);
}

static int
gen_never(void *ctx, conc_buf *item)
{
    (void)ctx;
    (void)item;
    return 0;
}

static void
body_map_invalid(enum kind k)
{
    conc_pool *p = open_pool(k, 1);
    int in[3] = {1, 2, 3}, out[3];
    conc_items items = CONC_ITEMS(in, 3);
    conc_items gen = {.next = gen_never};
    conc_items nobase = {.size = 4, .count = 3};
    conc_items nosize = {.base = in, .count = 3};
    assert_conc(conc_pool_map(p, square_task, &gen, out, sizeof *out, NULL,
                              CONC_FOREVER),
                CONC_EINVAL);
    assert_conc(
        conc_pool_map(p, NULL, &items, out, sizeof *out, NULL, CONC_FOREVER),
        CONC_EINVAL);
    assert_conc(conc_pool_map(p, square_task, NULL, out, sizeof *out, NULL,
                              CONC_FOREVER),
                CONC_EINVAL);
    assert_conc(conc_pool_map(p, square_task, &items, NULL, sizeof *out, NULL,
                              CONC_FOREVER),
                CONC_EINVAL);
    assert_conc(conc_pool_map(p, square_task, &nobase, out, sizeof *out, NULL,
                              CONC_FOREVER),
                CONC_EINVAL);
    assert_conc(conc_pool_map(p, square_task, &nosize, out, sizeof *out, NULL,
                              CONC_FOREVER),
                CONC_EINVAL);
    conc_async_result *r = NULL;
    assert_conc(conc_pool_map_async(p, square_task, &gen, out, sizeof *out,
                                    NULL, NULL, &r),
                CONC_EINVAL);
    assert_null(r);
    conc_map_iter *it = NULL;
    assert_conc(conc_pool_imap(p, NULL, &items, NULL, &it), CONC_EINVAL);
    assert_conc(conc_pool_imap(p, square_task, &items, NULL, NULL),
                CONC_EINVAL);
    assert_conc(conc_pool_imap_unordered(p, square_task, NULL, NULL, &it),
                CONC_EINVAL);
    assert_null(it);
    close_pool(p);
}

struct progress_log {
    int calls, bad;
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
    conc_pool *p = open_pool(k, 2);
    enum { N = 300 };
    static int in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i;
    struct progress_log pl = {0};
    conc_items items = CONC_ITEMS(in, N);
    conc_map_opts mo = {
        .chunksize = 7, .progress = progress_fn, .progress_arg = &pl};
    assert_conc_ok(conc_pool_map(p, square_task, &items, out, sizeof *out, &mo,
                                 CONC_FOREVER));
    assert_true(pl.calls > 0);
    assert_int_equal(pl.bad, 0);
    assert_int_equal(pl.last_done, N);
    assert_int_equal(pl.total, N);

    /* imap reports too. */
    struct progress_log pi = {0};
    mo.progress_arg = &pi;
    conc_map_iter *it;
    assert_conc_ok(conc_pool_imap(p, square_task, &items, &mo, &it));
    while (conc_map_next(it, WAIT_S, NULL, NULL) == 0)
        ;
    conc_map_free(it);
    assert_int_equal(pi.bad, 0);
    assert_int_equal(pi.last_done, N);
    assert_int_equal(pi.total, N);
    close_pool(p);
}

/* ---- map_async ----------------------------------------------------------- */

static void
body_map_async(enum kind k)
{
    fixture_open();
    static struct cb_log log;
    cb_log_init(&log);
    conc_pool *p = pool_of(k, 2);
    enum { N = 20 };
    int in[N], out[N];
    conc_items items = number_items(in, N);
    conc_apply_opts cb = {
        .callback = ok_cb, .error_callback = err_cb, .arg = &log};
    conc_async_result *r = NULL;
    assert_conc_ok(conc_pool_map_async(p, held_task, &items, out, sizeof *out,
                                       &(conc_map_opts){.chunksize = 2}, &cb,
                                       &r));
    wait_started(1);
    assert_conc(conc_async_result_wait(r, SHORT_S), CONC_ETIMEDOUT);
    assert_int_equal(conc_async_result_ready(r), 0);
    assert_conc(conc_async_result_successful(r), CONC_ESTATE);
    release_gate();
    assert_conc_ok(conc_async_result_wait(r, WAIT_S));
    assert_int_equal(conc_async_result_ready(r), 1);
    assert_int_equal(conc_async_result_successful(r), 1);
    const void *data;
    size_t len;
    assert_conc_ok(conc_async_result_get(r, 0, &data, &len));
    assert_int_equal(len, sizeof out);
    for (int i = 0; i < N; i++)
        assert_int_equal(out[i], i * i);
    assert_memory_equal(data, out, sizeof out);
    const void *got_data = data; /* pool.h: the output array itself */
    /* An AsyncResult is a future: both calls give the same answer. */
    const void *fdata = NULL;
    size_t flen = 0;
    assert_conc_ok(conc_future_result(r, 0, &fdata, &flen));
    assert_ptr_equal(fdata, data);
    assert_int_equal(flen, len);
    conc_async_result_free(r);
    /* One callback for the whole map, with the output array's bytes. */
    wait_callbacks(&log, 1);
    assert_int_equal(atomic_load(&log.n_ok), 1);
    assert_int_equal(log.len[0], sizeof out);
    assert_memory_equal(log.bytes[0], out, sizeof out);

    /* A failing map: its first failure in input order. */
    assert_conc_ok(conc_pool_map_async(p, square_or_fail_task, &items, out,
                                       sizeof *out, NULL, &cb, &r));
    assert_conc_ok(conc_async_result_wait(r, WAIT_S));
    assert_int_equal(conc_async_result_successful(r), 0);
    conc_clear_failure();
    assert_conc(conc_async_result_get(r, 0, NULL, NULL), CONC_EVALUE);
    assert_string_equal(conc_failure_message(), "bad item 3");
    conc_clear_failure();
    assert_conc(conc_future_result(r, 0, NULL, NULL), CONC_EVALUE);
    assert_string_equal(conc_failure_message(), "bad item 3");
    conc_async_result_free(r);
    wait_callbacks(&log, 1);
    assert_int_equal(atomic_load(&log.n_err), 1);
    assert_int_equal(log.code[0], CONC_EVALUE);
    assert_string_equal(log.msg[0], "bad item 3");

    /* No AsyncResult wanted. */
    assert_conc_ok(conc_pool_map_async(p, square_task, &items, out, sizeof *out,
                                       NULL, &cb, NULL));
    wait_callbacks(&log, 1);
    assert_int_equal(atomic_load(&log.n_ok), 2);
    close_join(p);
    cb_log_fini(&log);
    fixture_close();
    assert_ptr_equal(got_data, out);
}

/* ---- starmap ------------------------------------------------------------- */

static void
body_starmap(enum kind k)
{
    conc_pool *p = open_pool(k, 2);
    enum { N = 50 };
    struct pair in[N];
    int out[N];
    for (int i = 0; i < N; i++)
        in[i] = (struct pair){i, i + 1};
    conc_items items = CONC_ITEMS(in, N);
    assert_conc_ok(conc_pool_starmap(p, product_task, &items, out, sizeof *out,
                                     &(conc_map_opts){.chunksize = 3},
                                     CONC_FOREVER));
    for (int i = 0; i < N; i++)
        assert_int_equal(out[i], i * (i + 1));
    memset(out, 0, sizeof out);
    conc_async_result *r;
    assert_conc_ok(conc_pool_starmap_async(p, product_task, &items, out,
                                           sizeof *out, NULL, NULL, &r));
    assert_conc_ok(conc_async_result_wait(r, WAIT_S));
    assert_int_equal(conc_async_result_successful(r), 1);
    assert_int_equal(out[N - 1], (N - 1) * N);
    conc_async_result_free(r);
    close_pool(p);
}

/* ---- imap and imap_unordered --------------------------------------------- */

static void
body_imap(enum kind k)
{
    conc_pool *p = open_pool(k, 3);
    enum { N = 100 };
    int in[N];
    conc_items items = number_items(in, N);
    size_t chunks[] = {1, 3, N};
    for (size_t c = 0; c < 3; c++) {
        conc_map_iter *it;
        conc_map_opts mo = {.chunksize = chunks[c]};
        assert_conc_ok(conc_pool_imap(p, text_task, &items, &mo, &it));
        for (int i = 0; i < N; i++) {
            const void *data;
            size_t len;
            char want[64];
            assert_conc_ok(conc_map_next(it, WAIT_S, &data, &len));
            assert_int_equal(conc_map_index(it), i);
            text_of(i, want, sizeof want);
            assert_int_equal(len, strlen(want));
            assert_memory_equal(data, want, len);
        }
        assert_conc(conc_map_next(it, WAIT_S, NULL, NULL), CONC_ECLOSED);
        assert_conc(conc_map_next(it, 0, NULL, NULL), CONC_ECLOSED);
        conc_map_free(it);
    }
    /* A failed item reports itself and the iteration goes on. */
    conc_map_iter *it;
    assert_conc_ok(conc_pool_imap(p, square_or_fail_task, &items, NULL, &it));
    for (int i = 0; i < 20; i++) {
        int rc = conc_map_next(it, WAIT_S, NULL, NULL);
        assert_int_equal(conc_map_index(it), i);
        assert_conc(rc, i % 10 == 3 ? CONC_EVALUE : 0);
    }
    conc_map_free(it); /* before the end */
    close_pool(p);
}

static void
body_imap_timeout(enum kind k)
{
    conc_pool *p = open_pool(k, 2);
    int in[6] = {0, 1, 2, 3, 4, 5};
    conc_items items = CONC_ITEMS(in, 6);
    conc_map_iter *it;
    assert_conc_ok(conc_pool_imap(p, held_task, &items, NULL, &it));
    wait_started(1);
    double t0 = conc_monotonic();
    assert_conc(conc_map_next(it, SHORT_S, NULL, NULL), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    assert_conc(conc_map_next(it, 0, NULL, NULL), CONC_ETIMEDOUT);
    release_gate();
    /* next(timeout) only bounds one call: the map goes on. */
    for (int i = 0; i < 6; i++) {
        const void *data;
        size_t len;
        assert_conc_ok(conc_map_next(it, WAIT_S, &data, &len));
        assert_int_equal(conc_map_index(it), i);
        assert_int_equal(*(const int *)data, i * i);
    }
    assert_conc(conc_map_next(it, WAIT_S, NULL, NULL), CONC_ECLOSED);
    conc_map_free(it);
    close_pool(p);
}

struct gen {
    atomic_int calls;
    int n;
};

static int
gen_next(void *ctx, conc_buf *item)
{
    struct gen *g = ctx;
    int i = atomic_fetch_add(&g->calls, 1);
    if (i >= g->n)
        return 0;
    return conc_buf_append(item, &i, sizeof i) == 0 ? 1 : CONC_ENOMEM;
}

/* imap reads its input lazily, with a bounded number of chunks queued. */
static void
body_imap_lazy(enum kind k)
{
    conc_pool *p = open_pool(k, 2);
    enum { N = 60, IN_FLIGHT = 4, CHUNK = 3 };
    struct gen g = {.n = N};
    conc_items items = {.next = gen_next, .ctx = &g};
    conc_map_opts mo = {.chunksize = CHUNK, .max_in_flight = IN_FLIGHT};
    conc_map_iter *it;
    assert_conc_ok(conc_pool_imap(p, held_task, &items, &mo, &it));
    wait_started(2);
    int consumed = atomic_load(&g.calls);
    assert_true(consumed >= 2 * CHUNK);
    assert_true(consumed <= IN_FLIGHT * CHUNK + 1);
    release_gate();
    for (int i = 0; i < N; i++) {
        const void *data;
        size_t len;
        assert_conc_ok(conc_map_next(it, WAIT_S, &data, &len));
        assert_int_equal(*(const int *)data, i * i);
    }
    assert_conc(conc_map_next(it, WAIT_S, NULL, NULL), CONC_ECLOSED);
    conc_map_free(it);

    /* imap_unordered is lazy too. */
    struct gen gu = {.n = N};
    items.ctx = &gu;
    conc_event_clear(fx.gate);
    forget_started();
    assert_conc_ok(conc_pool_imap_unordered(p, held_task, &items, &mo, &it));
    wait_started(2);
    consumed = atomic_load(&gu.calls);
    assert_true(consumed <= IN_FLIGHT * CHUNK + 1);
    release_gate();
    int n = 0;
    while (conc_map_next(it, WAIT_S, NULL, NULL) == 0)
        n++;
    assert_int_equal(n, N);
    conc_map_free(it);
    close_pool(p);
}

static void
body_imap_unordered(enum kind k)
{
    conc_pool *p = open_pool(k, 2);
    enum { N = 10 };
    int in[N];
    conc_items items = number_items(in, N);
    conc_map_iter *it;
    assert_conc_ok(conc_pool_imap_unordered(
        p, first_held_task, &items, &(conc_map_opts){.chunksize = 1}, &it));
    /* Item 0 is held: every other comes first, each once, tagged with its
     * input index. */
    unsigned seen = 0;
    for (int n = 0; n < N - 1; n++) {
        const void *data;
        size_t len;
        assert_conc_ok(conc_map_next(it, WAIT_S, &data, &len));
        size_t i = conc_map_index(it);
        assert_true(i > 0 && i < N);
        assert_int_equal(*(const int *)data, (int)(i * i));
        assert_false(seen & (1u << i));
        seen |= 1u << i;
    }
    assert_conc(conc_map_next(it, SHORT_S, NULL, NULL), CONC_ETIMEDOUT);
    assert_conc_ok(conc_sem_release(fx.item_gate[0], 1));
    assert_conc_ok(conc_map_next(it, WAIT_S, NULL, NULL));
    assert_int_equal(conc_map_index(it), 0);
    assert_conc(conc_map_next(it, WAIT_S, NULL, NULL), CONC_ECLOSED);
    conc_map_free(it);
    close_pool(p);
}

/* Many short imap_unordered runs: chunks complete in the workers while the
 * caller takes, resubmits and frees, and each iterator is freed after a
 * different number of results, often with chunks still finishing. Every
 * result comes once, right; under TSan and ASan this also checks that a
 * completing chunk never touches an iterator being changed or freed. */
static void
body_imap_unordered_churn(enum kind k)
{
    conc_pool *p = open_pool(k, 4);
    enum { N = 48, ROUNDS = 120 };
    int in[N];
    conc_items items = number_items(in, N);
    conc_map_opts mo = {.chunksize = 1, .max_in_flight = 12};
    for (int round = 0; round < ROUNDS; round++) {
        conc_map_iter *it;
        assert_conc_ok(
            conc_pool_imap_unordered(p, square_task, &items, &mo, &it));
        int want = round % (N + 1);
        unsigned char seen[N] = {0};
        for (int n = 0; n < want; n++) {
            const void *data;
            size_t len;
            assert_conc_ok(conc_map_next(it, WAIT_S, &data, &len));
            size_t i = conc_map_index(it);
            assert_true(i < N);
            assert_false(seen[i]);
            seen[i] = 1;
            assert_int_equal(len, sizeof(int));
            assert_int_equal(*(const int *)data, (int)(i * i));
        }
        if (want == N)
            assert_conc(conc_map_next(it, WAIT_S, NULL, NULL), CONC_ECLOSED);
        conc_map_free(it);
    }
    close_pool(p);
}

/* Starts an imap (or imap_unordered) whose n-th allocation in this thread
 * fails. */
static int
imap_failing_at(conc_pool *p, int ordered, const conc_items *in, long n,
                conc_map_iter **it)
{
    conc_map_opts mo = {.chunksize = 2, .max_in_flight = 4};
    *it = NULL;
    conc_test_fail_alloc_after(n);
    int rc = ordered ? conc_pool_imap(p, square_task, in, &mo, it)
                     : conc_pool_imap_unordered(p, square_task, in, &mo, it);
    conc_test_fail_alloc_after(0);
    if (rc == CONC_ENOMEM)
        assert_null(*it);
    else
        assert_conc_ok(rc);
    return rc;
}

/* Reads the squares of 0 .. n - 1, each once (in order if ordered), then
 * the end. */
static void
check_squares(conc_map_iter *it, int ordered, int n)
{
    unsigned seen = 0;
    for (int j = 0; j < n; j++) {
        const void *data;
        size_t len;
        assert_conc_ok(conc_map_next(it, WAIT_S, &data, &len));
        size_t i = conc_map_index(it);
        if (ordered)
            assert_int_equal(i, j);
        assert_false(seen & (1u << i));
        seen |= 1u << i;
        assert_int_equal(*(const int *)data, (int)(i * i));
    }
    assert_conc(conc_map_next(it, WAIT_S, NULL, NULL), CONC_ECLOSED);
}

/* An allocation failing anywhere while imap starts: CONC_ENOMEM with
 * nothing left behind, or (once the failure falls after the call's own
 * allocations) a map that yields every result. A generator's item that
 * cannot be queued ends the map with CONC_ENOMEM after the items before
 * it, in order. */
static void
body_imap_enomem(enum kind k)
{
    conc_pool *p = open_pool(k, 2);
    enum { N = 12 };
    int in[N];
    conc_items items = number_items(in, N);
    conc_map_iter *it;
    int failed = 0, ended_early = 0;
    for (int ordered = 0; ordered < 2; ordered++) {
        for (long n = 1; n <= 16; n++) {
            if (imap_failing_at(p, ordered, &items, n, &it) == CONC_ENOMEM) {
                failed++;
                continue;
            }
            check_squares(it, ordered, N);
            conc_map_free(it);
        }
    }
    assert_true(failed >= 2 * 3); /* at least the iterator's own three */
    for (long n = 1; n <= 16; n++) {
        struct gen g = {.n = N};
        conc_items gi = {.next = gen_next, .ctx = &g};
        if (imap_failing_at(p, 1, &gi, n, &it) == CONC_ENOMEM)
            continue;
        int j = 0, rc;
        const void *data;
        while ((rc = conc_map_next(it, WAIT_S, &data, NULL)) == 0) {
            assert_int_equal(*(const int *)data, j * j);
            j++;
        }
        assert_conc(rc, j < N ? CONC_ENOMEM : CONC_ECLOSED);
        ended_early += j < N;
        conc_map_free(it);
    }
    assert_true(ended_early > 0);
    close_pool(p);
}

/* ---- close, terminate, join ---------------------------------------------- */

static void
check_not_running(conc_pool *p)
{
    int v = 1, out[1];
    conc_items items = CONC_ITEMS(&v, 1);
    conc_async_result *r = NULL;
    conc_map_iter *it = NULL;
    assert_conc(
        conc_pool_apply(p, square_task, &v, sizeof v, CONC_FOREVER, NULL),
        CONC_ECLOSED);
    assert_conc(conc_pool_apply_async(p, square_task, &v, sizeof v, NULL, &r),
                CONC_ECLOSED);
    assert_conc(conc_pool_map(p, square_task, &items, out, sizeof *out, NULL,
                              CONC_FOREVER),
                CONC_ECLOSED);
    assert_conc(conc_pool_map_async(p, square_task, &items, out, sizeof *out,
                                    NULL, NULL, &r),
                CONC_ECLOSED);
    assert_conc(conc_pool_imap(p, square_task, &items, NULL, &it),
                CONC_ECLOSED);
    assert_null(r);
    assert_null(it);
}

static void
body_close_join(enum kind k)
{
    conc_pool *p = open_pool(k, 2);
    /* Join before close is an error, as in Python. */
    assert_conc(conc_pool_join(p, 0), CONC_ESTATE);
    conc_async_result *held = apply_int(p, held_task, 3, NULL);
    conc_async_result *r[10];
    for (int i = 0; i < 10; i++)
        r[i] = apply_int(p, count_task, i, NULL);
    wait_started(1);
    assert_conc_ok(conc_pool_close(p));
    assert_conc_ok(conc_pool_close(p));
    check_not_running(p);
    /* Join waits for the queued work. */
    double t0 = conc_monotonic();
    assert_conc(conc_pool_join(p, SHORT_S), CONC_ETIMEDOUT);
    assert_true(conc_monotonic() - t0 >= SHORT_S - SLACK_S);
    release_gate();
    assert_conc_ok(conc_pool_join(p, WAIT_S));
    assert_conc_ok(conc_pool_join(p, 0));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(conc_async_result_ready(r[i]), 1);
        assert_int_equal(result_int(r[i]), i);
        conc_async_result_free(r[i]);
    }
    assert_int_equal(result_int(held), 9);
    conc_async_result_free(held);
    assert_int_equal(atomic_load(&fx.sh->finished), 10);
    conc_pool_free(p);
    fixture_close();
}

static void
body_terminate(enum kind k)
{
    conc_pool *p = open_pool(k, 1);
    conc_async_result *running = apply_int(p, held_task, 2, NULL);
    wait_started(1);
    conc_async_result *queued[5];
    for (int i = 0; i < 5; i++)
        queued[i] = apply_int(p, count_task, i, NULL);
    assert_conc_ok(conc_pool_terminate(p));
    check_not_running(p);
    for (int i = 0; i < 5; i++) {
        assert_conc(conc_async_result_get(queued[i], WAIT_S, NULL, NULL),
                    CONC_ECLOSED);
        conc_async_result_free(queued[i]);
    }
    if (k == PROCESSES) {
        /* The running worker is killed: join needs no release. */
        assert_conc_ok(conc_pool_join(p, WAIT_S));
        assert_conc(conc_async_result_get(running, 0, NULL, NULL),
                    CONC_ECLOSED);
        release_gate();
    } else {
        /* A thread cannot be killed: it finishes, its result is lost. */
        release_gate();
        assert_conc_ok(conc_pool_join(p, WAIT_S));
        int rc = conc_async_result_get(running, 0, NULL, NULL);
        assert_true(rc == 0 || rc == CONC_ECLOSED);
    }
    conc_async_result_free(running);
    assert_int_equal(atomic_load(&fx.sh->finished), 0);
    assert_conc_ok(conc_pool_close(p));
    assert_conc_ok(conc_pool_terminate(p));
    conc_pool_free(p);
    fixture_close();
}

/* Freeing a running pool terminates it; results held stay valid. */
static void
body_free_running(enum kind k)
{
    conc_pool *p = open_pool(k, 1);
    conc_async_result *done = apply_int(p, square_task, 6, NULL);
    assert_int_equal(result_int(done), 36);
    conc_async_result *queued = NULL;
    if (k == PROCESSES) {
        conc_async_result_free(apply_int(p, held_task, 1, NULL));
        wait_started(1);
        queued = apply_int(p, count_task, 1, NULL);
    }
    conc_pool_free(p);
    assert_int_equal(conc_async_result_ready(done), 1);
    assert_int_equal(result_int(done), 36);
    conc_async_result_free(done);
    if (queued) {
        assert_conc(conc_async_result_get(queued, 0, NULL, NULL), CONC_ECLOSED);
        conc_async_result_free(queued);
    }
    fixture_close();
}

/* join from the pool's own task (threads) or callback would wait for
 * itself. */
static conc_pool *self_pool;

static int
join_self_task(const void *arg, size_t len, conc_buf *result)
{
    (void)arg;
    (void)len;
    (void)result;
    if (conc_event_wait(fx.gate, WAIT_S) != 0)
        return CONC_ETIMEDOUT;
    int rc = conc_pool_join(self_pool, 1.0);
    return rc < 0 ? rc : 0;
}

static atomic_int join_cb_rc;

static void
join_cb(void *arg, const void *data, size_t len)
{
    (void)data;
    (void)len;
    atomic_store(&join_cb_rc, conc_pool_join(self_pool, 1.0));
    conc_sem_release(arg, 1);
}

static void
body_join_deadlock(enum kind k)
{
    fixture_open();
    self_pool = pool_of(k, 2);
    conc_sem *called;
    assert_conc_ok(conc_sem_new(0, NULL, &called));
    atomic_store(&join_cb_rc, 1);
    conc_apply_opts o = {.callback = join_cb, .arg = called};
    conc_async_result *r = apply_int(self_pool, held_task, 1, &o);
    conc_async_result *t = NULL;
    if (k == THREADS)
        t = apply_int(self_pool, join_self_task, 0, NULL);
    wait_started(1);
    assert_conc_ok(conc_pool_close(self_pool));
    release_gate();
    assert_conc_ok(conc_sem_acquire(called, WAIT_S));
    assert_conc(atomic_load(&join_cb_rc), CONC_EDEADLK);
    if (t) {
        assert_conc(conc_async_result_get(t, WAIT_S, NULL, NULL), CONC_EDEADLK);
        conc_async_result_free(t);
    }
    assert_conc_ok(conc_pool_join(self_pool, WAIT_S));
    assert_int_equal(result_int(r), 1);
    conc_async_result_free(r);
    conc_pool_free(self_pool);
    self_pool = NULL;
    conc_sem_free(called);
    fixture_close();
}

/* A callback may submit to its own pool (it must only not wait on it),
 * also the error callback of a task cancelled while it waited behind a
 * busy worker: the engine runs the callbacks with none of its locks held,
 * whichever thread ends the task. */
struct resubmit {
    conc_pool *pool;
    struct cb_log *log;
    int rc;
};

static void
resubmit_cb(void *arg, int code, const char *message)
{
    struct resubmit *r = arg;
    int v = 5;
    conc_apply_opts o = {.callback = ok_cb, .arg = r->log};
    r->rc = conc_pool_apply_async(r->pool, square_task, &v, sizeof v, &o, NULL);
    err_cb(r->log, code, message);
}

static void
body_cancelled_callback_submits(enum kind k)
{
    fixture_open();
    static struct cb_log log;
    cb_log_init(&log);
    conc_pool *p = pool_of(k, 1);
    conc_async_result *h = apply_int(p, held_task, 2, NULL);
    wait_started(1);
    struct resubmit rs = {.pool = p, .log = &log, .rc = 1};
    conc_apply_opts o = {.error_callback = resubmit_cb, .arg = &rs};
    conc_async_result *c = apply_int(p, square_task, 3, &o);
    assert_int_equal(conc_future_cancel(c), 1);
    release_gate();
    assert_int_equal(result_int(h), 4);
    /* The error callback, then the callback of the task it submitted. */
    wait_callbacks(&log, 2);
    assert_conc_ok(rs.rc);
    assert_int_equal(atomic_load(&log.n_err), 1);
    assert_int_equal(log.code[0], CONC_ECANCELED);
    assert_int_equal(atomic_load(&log.n_ok), 1);
    assert_int_equal(log.value[0], 25);
    assert_conc(conc_async_result_get(c, 0, NULL, NULL), CONC_ECANCELED);
    conc_async_result_free(c);
    conc_async_result_free(h);
    close_join(p);
    cb_log_fini(&log);
    fixture_close();
}

/* ---- Initializer --------------------------------------------------------- */

static void
body_initializer(enum kind k)
{
    fixture_open();
    int tag = 4321;
    conc_pool_opts o = {.processes = 2,
                        .initializer = init_fn,
                        .initarg = &tag,
                        .initarg_len = sizeof tag};
    conc_pool *p = new_pool(k, &o);
    tag = 0; /* the pool copied it */
    conc_async_result *r[20];
    for (int i = 0; i < 20; i++)
        r[i] = apply_int(p, tag_task, 0, NULL);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(result_int(r[i]), 4321);
        conc_async_result_free(r[i]);
    }
    close_join(p);
    int runs = atomic_load(&fx.sh->init_runs);
    if (k == PROCESSES) /* every worker starts with the pool */
        assert_int_equal(runs, 2);
    else
        assert_true(runs >= 1 && runs <= 2);
    fixture_close();
}

/* ---- Descriptor passing -------------------------------------------------- */

static void
body_fd_echo(enum kind k)
{
    conc_pool *p = open_pool(k, 4);
    enum { C = 6 };
    int sv[C][2];
    conc_async_result *r[C];
    for (int i = 0; i < C; i++) {
        assert_int_equal(
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]), 0);
        int want = 6;
        conc_apply_opts o = {.has_fd = 1, .fd = sv[i][1]};
        assert_conc_ok(conc_pool_apply_async(p, echo_fd_task, &want,
                                             sizeof want, &o, &r[i]));
        close(sv[i][1]); /* the pool has its own copy */
    }
    for (int i = 0; i < C; i++) {
        char msg[8], back[8] = {0};
        snprintf(msg, sizeof msg, "ping%02d", i);
        assert_int_equal(write(sv[i][0], msg, 6), 6);
        size_t got = 0;
        while (got < 6) {
            struct pollfd pf = {.fd = sv[i][0], .events = POLLIN};
            assert_int_equal(poll(&pf, 1, (int)(WAIT_S * 1000)), 1);
            ssize_t n = read(sv[i][0], back + got, 6 - got);
            assert_true(n > 0);
            got += (size_t)n;
        }
        snprintf(msg, sizeof msg, "PING%02d", i);
        assert_string_equal(back, msg);
    }
    for (int i = 0; i < C; i++) {
        assert_conc_ok(conc_async_result_get(r[i], WAIT_S, NULL, NULL));
        conc_async_result_free(r[i]);
        /* Every copy of the descriptor is closed after the task. */
        char c;
        struct pollfd pf = {.fd = sv[i][0], .events = POLLIN};
        assert_int_equal(poll(&pf, 1, (int)(WAIT_S * 1000)), 1);
        assert_int_equal(read(sv[i][0], &c, 1), 0);
        close(sv[i][0]);
    }
    conc_async_result *bad = NULL;
    int v = 1;
    conc_apply_opts o = {.has_fd = 1, .fd = 1000};
    assert_conc(conc_pool_apply_async(p, echo_fd_task, &v, sizeof v, &o, &bad),
                CONC_EBADF);
    assert_null(bad);
    close_pool(p);
}

/* ---- Many calling threads ------------------------------------------------ */

struct caller {
    conc_pool *p;
    int base, bad;
};

static int
caller_fn(void *arg)
{
    struct caller *c = arg;
    for (int i = 0; i < 50; i++) {
        int v = c->base + i;
        conc_buf out = CONC_BUF_INIT;
        if (conc_pool_apply(c->p, square_task, &v, sizeof v, CONC_FOREVER,
                            &out) != 0 ||
            out.len != sizeof v || *(int *)out.data != v * v)
            c->bad++;
        conc_buf_free(&out);
    }
    int in[64], out[64];
    for (int i = 0; i < 64; i++)
        in[i] = c->base + i;
    conc_items items = CONC_ITEMS(in, 64);
    if (conc_pool_map(c->p, square_task, &items, out, sizeof *out, NULL,
                      CONC_FOREVER) != 0)
        c->bad++;
    for (int i = 0; i < 64; i++)
        if (out[i] != in[i] * in[i])
            c->bad++;
    return 0;
}

static void
body_many_callers(enum kind k)
{
    conc_pool *p = open_pool(k, 3);
    enum { C = 4 };
    struct caller c[C];
    conc_thread *t[C];
    for (int i = 0; i < C; i++) {
        c[i] = (struct caller){.p = p, .base = i * 100};
        t[i] = start_thread(caller_fn, &c[i]);
    }
    for (int i = 0; i < C; i++) {
        join_thread(t[i]);
        assert_int_equal(c[i].bad, 0);
    }
    close_pool(p);
}

int
main(void)
{
    warm_up_threads();
    const struct scenario scenarios[] = {
        SCENARIO(body_create),
        SCENARIO(body_apply),
        SCENARIO(body_async_result),
        SCENARIO(body_callbacks_order),
        SCENARIO(body_callbacks_errors),
        SCENARIO(body_map),
        SCENARIO(body_map_chunks),
        SCENARIO(body_map_failures),
        SCENARIO(body_map_invalid),
        SCENARIO(body_map_progress),
        SCENARIO(body_map_async),
        SCENARIO(body_starmap),
        SCENARIO(body_imap),
        SCENARIO(body_imap_timeout),
        SCENARIO(body_imap_lazy),
        SCENARIO(body_imap_unordered),
        SCENARIO(body_imap_unordered_churn),
        SCENARIO(body_imap_enomem),
        SCENARIO(body_close_join),
        SCENARIO(body_terminate),
        SCENARIO(body_free_running),
        SCENARIO(body_join_deadlock),
        SCENARIO(body_cancelled_callback_submits),
        SCENARIO(body_initializer),
        SCENARIO(body_fd_echo),
        SCENARIO(body_many_callers),
    };
    return run_per_engine(NULL, 0, scenarios,
                          sizeof scenarios / sizeof *scenarios);
}
