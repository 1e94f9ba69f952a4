/* The thread engine: ThreadPoolExecutor and ThreadPool.
 *
 * Design. Submitted futures form an intrusive FIFO (job.next) under one
 * lock word; a future is its own queue node, so a submit allocates exactly
 * once. Workers start on demand, as in Python: a submit that finds no idle
 * worker starts one until max_workers run. An idle worker spins for a few
 * microseconds watching `work` before it sleeps on it, so a stream of
 * submits costs no system call while workers keep up; a submit wakes a
 * sleeper only when one is asleep. */
#include <stdio.h>
#include <string.h>

#include "executor/executor_internal.h"
#include "unix/futex.h"

#define SPIN_NS 20000 /* how long an idle worker watches before sleeping */

struct engine {
    struct conc_executor ex;
    conc__lockword lock;      /* guards everything below but the atomics */
    conc_future *head, *tail; /* pending jobs */
    size_t pending;
    size_t nthreads;
    _Atomic size_t idle;       /* workers waiting for work */
    conc_thread **threads;     /* max_workers slots */
    _Atomic uint32_t work;     /* bumped per submit and at shutdown; futex */
    _Atomic uint32_t sleepers; /* workers asleep on work */
    _Atomic uint32_t spinning; /* 1 while an idle worker watches work */
    unsigned serial;           /* the executor's number, for thread names */
};

static _Atomic unsigned executor_serial;

static void
lock(struct engine *e)
{
    conc__lockword_acquire(&e->lock, CONC__FOREVER, 0);
}

static void
unlock(struct engine *e)
{
    conc__lockword_release(&e->lock, 0);
}

/* ---- Workers ------------------------------------------------------------ */

/* Takes the oldest pending job (lock held), or NULL. One at a time: a
 * job a worker held back while it runs another would wait behind a long
 * task while other workers idle, and would escape shutdown's cancel. */
static conc_future *
pop_locked(struct engine *e)
{
    conc_future *f = e->head;
    if (!f)
        return NULL;
    e->head = f->job.next;
    if (!e->head)
        e->tail = NULL;
    f->job.next = NULL;
    e->pending--;
    return f;
}

/* Idle workers and wake-ups. At most one idle worker watches for work at
 * a time: it holds the `spinning` token. A submit wakes a sleeper only if
 * no one holds the token, and hands the token to the one it wakes, so
 * that the submits that follow, before the woken worker runs, make no
 * system call. A worker that takes a job gives the token up and, if more
 * jobs wait, wakes the next sleeper: parallelism grows with the queue.
 * Idle workers that all spun would take the CPUs the busy ones need. */
static void
wake_one(struct engine *e)
{
    if (atomic_load_explicit(&e->sleepers, memory_order_seq_cst) == 0)
        return;
    uint32_t none = 0;
    if (!atomic_compare_exchange_strong(&e->spinning, &none, 1))
        return; /* its holder takes the job, or wakes the next sleeper */
    if (conc__futex_wake(&e->work, 1, 0) == 0) /* it woke by itself */
        atomic_store_explicit(&e->spinning, 0, memory_order_seq_cst);
}

/* Watches `work` for a while if this worker holds the token or can take
 * it. Returns 1 if work came, with the token kept; 0 with it given up. */
static int
spin_for_work(struct engine *e, uint32_t seen, int *token)
{
    uint32_t none = 0;
    if (!*token && !atomic_compare_exchange_strong(&e->spinning, &none, 1))
        return 0;
    *token = 1;
    int64_t until = conc__now_ns() + SPIN_NS;
    while (atomic_load_explicit(&e->work, memory_order_acquire) == seen &&
           conc__now_ns() < until)
        for (int i = 0; i < 16; i++)
            conc__cpu_relax();
    if (atomic_load_explicit(&e->work, memory_order_acquire) != seen)
        return 1;
    *token = 0;
    atomic_store_explicit(&e->spinning, 0, memory_order_seq_cst);
    return 0;
}

/* Sleeps until `work` moves from `seen`. Returns 1 if a waker handed this
 * worker the token. */
static int
sleep_for_work(struct engine *e, uint32_t seen)
{
    atomic_fetch_add_explicit(&e->sleepers, 1, memory_order_seq_cst);
    int r = -EAGAIN;
    if (atomic_load_explicit(&e->work, memory_order_seq_cst) == seen)
        r = conc__futex_wait(&e->work, seen, CONC__FOREVER, 0);
    atomic_fetch_sub_explicit(&e->sleepers, 1, memory_order_seq_cst);
    return r == 0;
}

/* Waits for work: returns the next job, or NULL when the worker should
 * leave (shutdown with an empty queue). */
static conc_future *
next_job(struct engine *e)
{
    int token = 0; /* this worker holds `spinning` */
    for (;;) {
        uint32_t seen = atomic_load_explicit(&e->work, memory_order_acquire);
        lock(e);
        conc_future *f = pop_locked(e);
        int leave = !f && e->ex.stopping;
        int more = e->pending > 0;
        unlock(e);
        if (f || leave) {
            if (token)
                atomic_store_explicit(&e->spinning, 0, memory_order_seq_cst);
            if (f && more)
                wake_one(e);
            if (f)
                conc__executor_signal_room(&e->ex, 0);
            return f;
        }
        atomic_fetch_add_explicit(&e->idle, 1, memory_order_relaxed);
        if (!spin_for_work(e, seen, &token))
            token = sleep_for_work(e, seen);
        atomic_fetch_sub_explicit(&e->idle, 1, memory_order_relaxed);
    }
}

/* Fails every pending job with `code` (lock not held). */
static void
fail_pending(struct engine *e, int code, const char *msg)
{
    lock(e);
    conc_future *f = e->head;
    e->head = e->tail = NULL;
    e->pending = 0;
    unlock(e);
    while (f) {
        conc_future *next = f->job.next;
        if (conc_future_set_running(f) == 1) {
            if (e->ex.on_done)
                e->ex.on_done(f, code, msg);
            conc__future_finish(f, code, msg);
        }
        conc_future_free(f);
        f = next;
    }
    conc__executor_signal_room(&e->ex, 0);
}

/* Runs the initializer; on failure breaks the engine. Returns 0 or the
 * initializer's code. */
static int
run_initializer(struct engine *e)
{
    if (!e->ex.opts.initializer)
        return 0;
    conc_buf out = CONC_BUF_INIT;
    conc_clear_failure();
    int r = e->ex.opts.initializer(e->ex.initarg, e->ex.opts.initarg_len, &out);
    conc_buf_free(&out);
    if (r >= 0)
        return 0;
    lock(e);
    e->ex.broken = 1;
    snprintf(e->ex.broken_msg, sizeof e->ex.broken_msg,
             "a thread initializer failed (%s%s%s): the pool is broken",
             conc_err_name(r), *conc_failure_message() ? ": " : "",
             conc_failure_message());
    unlock(e);
    fail_pending(e, CONC_EBROKEN, e->ex.broken_msg);
    return r;
}

static int
worker_main(void *arg)
{
    struct engine *e = arg;
    conc__executor_set_current(&e->ex);
    if (run_initializer(e) < 0)
        return 0;
    conc_future *f;
    while ((f = next_job(e)) != NULL) {
        conc__run_job(f);
        conc_future_free(f);
    }
    return 0;
}

/* Starts one more worker (lock held). Failing to start one is not an
 * error while another worker runs: the job waits for it. */
static int
start_worker_locked(struct engine *e)
{
    char name[96];
    snprintf(name, sizeof name, "%s_%zu", e->ex.prefix, e->nthreads);
    conc_thread_opts o = {.name = name, .daemon = CONC_DAEMON_YES};
    int r = conc_thread_start(worker_main, e, &o, &e->threads[e->nthreads]);
    if (r < 0)
        return e->nthreads ? 0 : r;
    e->nthreads++;
    return 0;
}

/* ---- Submit ------------------------------------------------------------- */

static int
engine_submit(struct conc_executor *ex, conc_future *f)
{
    struct engine *e = (struct engine *)ex;
    int64_t deadline = conc__executor_submit_deadline(ex);
    lock(e);
    int r = ex->opts.max_pending ? conc__executor_wait_room_locked(
                                       ex, &e->lock, &e->pending, deadline)
                                 : conc__executor_refuse_locked(ex);
    if (!r && atomic_load_explicit(&e->idle, memory_order_relaxed) == 0 &&
        e->nthreads < ex->workers)
        r = start_worker_locked(e);
    if (r < 0) {
        unlock(e);
        return r;
    }
    if (e->tail)
        e->tail->job.next = f;
    else
        e->head = f;
    e->tail = f;
    e->pending++;
    unlock(e);
    atomic_fetch_add_explicit(&e->work, 1, memory_order_seq_cst);
    wake_one(e);
    return 0;
}

/* ---- Shutdown ----------------------------------------------------------- */

static int
engine_shutdown(struct conc_executor *ex, int wait, int cancel)
{
    struct engine *e = (struct engine *)ex;
    if (wait && conc__executor_in_task(ex))
        return conc_fail(CONC_EDEADLK, "shutdown(wait) from the executor's "
                                       "own task would wait for itself");
    lock(e);
    e->ex.stopping = 1;
    conc_future *f = NULL;
    if (cancel) {
        f = e->head;
        e->head = e->tail = NULL;
        e->pending = 0;
    }
    unlock(e);
    while (f) {
        conc_future *next = f->job.next;
        if (conc__future_cancel_pending(f) && ex->on_done)
            ex->on_done(f, CONC_ECANCELED, "cancelled");
        conc_future_free(f);
        f = next;
    }
    atomic_fetch_add_explicit(&e->work, 1, memory_order_seq_cst);
    conc__futex_wake(&e->work, INT32_MAX, 0);
    conc__executor_signal_room(ex, 1);
    if (!wait)
        return 0;
    lock(e);
    size_t n = e->nthreads;
    unlock(e);
    for (size_t i = 0; i < n; i++)
        conc_thread_join(e->threads[i], CONC_FOREVER, NULL);
    return 0;
}

static int
engine_terminate(struct conc_executor *ex)
{
    struct engine *e = (struct engine *)ex;
    lock(e);
    e->ex.stopping = 1;
    unlock(e);
    fail_pending(e, CONC_ECLOSED, "the pool was terminated");
    atomic_fetch_add_explicit(&e->work, 1, memory_order_seq_cst);
    conc__futex_wake(&e->work, INT32_MAX, 0);
    return 0;
}

static int
engine_join(struct conc_executor *ex, double timeout)
{
    struct engine *e = (struct engine *)ex;
    int64_t deadline;
    conc__deadline(timeout, &deadline);
    lock(e);
    size_t n = e->nthreads;
    unlock(e);
    for (size_t i = 0; i < n; i++) {
        double left = CONC_FOREVER;
        if (deadline != CONC__FOREVER) {
            left = (double)(deadline - conc__now_ns()) / 1e9;
            left = left < 0 ? 0 : left;
        }
        if (conc_thread_join(e->threads[i], left, NULL) < 0)
            return CONC_ETIMEDOUT;
    }
    return 0;
}

static void
engine_destroy(struct conc_executor *ex)
{
    struct engine *e = (struct engine *)ex;
    for (size_t i = 0; i < e->nthreads; i++)
        conc_thread_free(e->threads[i]);
    conc__free(e->threads);
    conc__executor_fini(ex);
    conc__free(e);
}

static const struct conc__engine_ops thread_ops = {
    .submit = engine_submit,
    .shutdown = engine_shutdown,
    .terminate = engine_terminate,
    .join = engine_join,
    .destroy = engine_destroy,
};

int
conc__thread_engine_new(const conc_executor_opts *opts,
                        conc__job_done_fn on_done, conc_executor **out)
{
    struct engine *e = conc__calloc(1, sizeof *e);
    if (!e)
        return CONC_ENOMEM;
    int r = conc__executor_init(&e->ex, opts, 0);
    if (r < 0) {
        conc__free(e);
        return r;
    }
    e->threads = conc__calloc(e->ex.workers, sizeof *e->threads);
    if (!e->threads) {
        conc__executor_fini(&e->ex);
        conc__free(e);
        return CONC_ENOMEM;
    }
    e->serial = atomic_fetch_add(&executor_serial, 1);
    if (!e->ex.prefix) {
        char name[64];
        snprintf(name, sizeof name, "ThreadPoolExecutor-%u", e->serial);
        e->ex.prefix = conc__strdup(name);
        if (!e->ex.prefix) {
            engine_destroy(&e->ex);
            return CONC_ENOMEM;
        }
    }
    e->ex.ops = &thread_ops;
    e->ex.on_done = on_done;
    *out = &e->ex;
    return 0;
}
