/* The thread engine: ThreadPoolExecutor and ThreadPool.
 *
 * Design. Submitted jobs form an intrusive queue (jobq.h) that submits
 * push to without a lock; a job is its own queue node, so a submit
 * allocates at most once (job.c usually has a block ready). Workers pop
 * under their own lock, each taking the job it runs and up to a batch
 * more (batch.h), which it runs next and which idle workers take from it
 * when the queue is empty. Workers start on demand, as in Python: a
 * submit that finds no idle worker starts one until max_workers run. Idle
 * workers and wake-ups are described at wake_one. Shutdown and submit
 * meet through `submitting`: a submit counts itself before it checks
 * `stopping`, and a worker leaves only once it has seen `stopping`, no
 * submit under way and an empty queue, so no job is pushed after the last
 * worker has gone.
 *
 * A job's life; in brackets, its future's state:
 *
 *                 pop (as the job to run)
 *   QUEUED ---------------------------------------------> TAKEN
 *   [pending] --pop (behind it)--> BATCHED --take-------> TAKEN
 *      |                              |                     |
 *      +--------------+---------------+         run_job: set_running
 *                     |                          |                |
 *                     v                          | lost (cancelled| won
 *   DRAINED by take_all: shutdown(cancel)        | while pending) v
 *   [cancelled]; terminate or a failed           v             RUNNING
 *   initializer [finished with an error]    DROPPED (the      [running]
 *                                           hook hears           |
 *                                           CONC_ECANCELED)      v
 *                                 DONE [finished; cancelled if the task
 *                                 returned CONC_ECANCELED with its token up]
 *
 * The engine's reference goes after DONE, DROPPED or DRAINED; the block
 * returns to job.c with the last reference.
 *
 * A worker's life:
 *
 *   STARTED --initializer fails--> breaks the engine, fails what is
 *      |                           pending, ENDS
 *      v
 *   LOOKING: its own batch, then the queue, then the other batches
 *      |  ^            ^                 ^
 *      |  +-- RUNNING  +-- SPINNING      +-- SLEEPING (futex on `work`;
 *      |      (a job)      (holds the        a submit's wake-up may hand
 *      |                   token; watches    it the token)
 *      |                   for CONC__SPIN_TASK_NS)
 *      +--> ENDS: stopping, no submit under way, nothing queued
 *
 * Lock order: `lock` (threads, bounded submits, flags) and `qlock` (the
 * poppers') are never held together; either may be taken before a
 * future's lock, never after (executor_internal.h has the module's
 * order). A Pool's callback lock comes before both: the hook runs with
 * neither held. */
#include <stdio.h>
#include <string.h>

#include "core/wait.h"
#include "executor/batch.h"
#include "executor/executor_internal.h"
#include "executor/jobq.h"
#include "unix/futex.h"

/* Thread names: the prefix (Python's "ThreadPoolExecutor-N") and "_N". */
#define NAME_MAX_LEN 96

/* Fields are grouped by who writes them, a cache line per group, so that
 * a submit does not steal the line workers lock to pop and the other way
 * round. */
struct engine {
    struct conc_executor ex;
    struct conc__jobq q; /* pending jobs; its two ends have their own lines */
    /* The poppers' line. */
    _Alignas(64) _Atomic uint32_t qlock; /* one popper at a time */
    _Atomic size_t pending; /* jobs pushed and not yet started (bounded) */
    /* The submitters' line. */
    _Alignas(64) _Atomic size_t submitting; /* submits under way */
    /* Idle workers and their wake-ups (wake_one). */
    _Alignas(64) _Atomic uint32_t work; /* bumped per wake; futex */
    _Atomic uint32_t sleepers;          /* workers asleep on work */
    _Atomic uint32_t spinning; /* 1 while an idle worker watches work */
    _Atomic uint32_t batched;  /* bumped per batch filled; spinners watch */
    _Atomic size_t idle;       /* workers waiting for work */
    /* Rarely written. */
    _Alignas(64) conc__lockword lock; /* guards threads, bounded submits,
                                       * flags */
    _Atomic size_t nthreads;          /* written under lock */
    conc_thread **threads;            /* max_workers slots */
    struct conc__batch *batches;      /* one per worker, by its number */
    _Atomic size_t nbatches;          /* batches handed to workers */
    unsigned serial; /* the executor's number, for thread names */
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

/* The poppers' lock. A pop holds it for a few dozen instructions, so a
 * waiter spins rather than sleeps: a sleeping waiter would make every
 * release a futex wake, a system call per job. A waiter yields the CPU once
 * its spin is over, in case the holder lost it (conc__spin_step). */
static void
qlock_acquire(struct engine *e)
{
    struct conc__spin sp = CONC__SPIN_STEP_INIT;
    while (atomic_load_explicit(&e->qlock, memory_order_relaxed) ||
           atomic_exchange_explicit(&e->qlock, 1, memory_order_acquire))
        conc__spin_step(&sp);
}

static void
qlock_release(struct engine *e)
{
    atomic_store_explicit(&e->qlock, 0, memory_order_release);
}

/* Whether the queue holds a job or a push under way (qlock held). */
static int
queued_locked(struct engine *e)
{
    return e->q.head != &e->q.sentinel.future ||
           atomic_load_explicit(&e->q.tail, memory_order_seq_cst) !=
               &e->q.sentinel.future;
}

/* Counts a job out of the pending ones, as it leaves for a worker. */
static conc_future *
started(struct engine *e, conc_future *f)
{
    if (f && e->ex.opts.max_pending) {
        atomic_fetch_sub_explicit(&e->pending, 1, memory_order_seq_cst);
        conc__executor_signal_room(&e->ex, 0);
    }
    return f;
}

/* Takes the oldest queued job and, into `mine`, up to a batch of the next
 * ones; or NULL. *more says whether other jobs wait: queued, or in the
 * batch just filled, which idle workers may take. */
static conc_future *
pop(struct engine *e, struct conc__batch *mine, int *more)
{
    conc_future *extra[CONC__BATCH];
    unsigned n = 0;
    qlock_acquire(e);
    conc_future *f = conc__jobq_pop(&e->q);
    if (f && mine)
        while (n < CONC__BATCH && (extra[n] = conc__jobq_pop(&e->q)) != NULL)
            n++;
    *more = queued_locked(e);
    qlock_release(e);
    if (n) {
        conc__batch_fill(mine, extra, n);
        atomic_fetch_add_explicit(&e->batched, 1, memory_order_seq_cst);
        *more = 1;
    }
    return f;
}

/* Takes the next job of another worker's batch, or NULL; *more says
 * whether that batch holds others. */
static conc_future *
take_from_others(struct engine *e, struct conc__batch *mine, int *more)
{
    size_t n = atomic_load_explicit(&e->nbatches, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        struct conc__batch *b = &e->batches[i];
        conc_future *f = b != mine ? conc__batch_take(b) : NULL;
        if (f) {
            *more = conc__batch_nonempty(b);
            return f;
        }
    }
    return NULL;
}

/* Whether any worker's batch holds a job. */
static int
batched_jobs(struct engine *e)
{
    size_t n = atomic_load_explicit(&e->nbatches, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (conc__batch_nonempty(&e->batches[i]))
            return 1;
    return 0;
}

/* Whether a worker may leave: shut down, then no submit under way, then
 * nothing queued (read in that order: a submit counts itself before it
 * looks at `stopping`). */
static int
may_leave(struct engine *e, int queued)
{
    if (queued ||
        !atomic_load_explicit(&e->ex.stopping, memory_order_seq_cst) ||
        atomic_load_explicit(&e->submitting, memory_order_seq_cst))
        return 0;
    qlock_acquire(e);
    queued = queued_locked(e);
    qlock_release(e);
    return !queued;
}

/* Idle workers and wake-ups. A submit pushes its job and then, only if a
 * worker sleeps, wakes one: a worker about to sleep counts itself in
 * `sleepers` and then looks at the queue, so one of the two sees the
 * other. At most one idle worker watches the queue instead of sleeping:
 * it holds the `spinning` token. A submit wakes a sleeper only if no one
 * holds the token, and hands the token to the one it wakes, so that the
 * submits that follow, before the woken worker runs, make no system call.
 * A worker that takes a job gives the token up and, if more jobs wait,
 * wakes the next sleeper: parallelism grows with the queue. Idle workers
 * that all spun would take the CPUs the busy ones need. */
static void
wake_one(struct engine *e)
{
    if (atomic_load_explicit(&e->sleepers, memory_order_seq_cst) == 0 ||
        atomic_load_explicit(&e->spinning, memory_order_seq_cst))
        return; /* no one to wake, or the token's holder comes */
    uint32_t none = 0;
    if (!atomic_compare_exchange_strong(&e->spinning, &none, 1))
        return; /* its holder takes the job, or wakes the next sleeper */
    atomic_fetch_add_explicit(&e->work, 1, memory_order_seq_cst);
    if (conc__futex_wake(&e->work, 1, 0) == 0) /* it woke by itself */
        atomic_store_explicit(&e->spinning, 0, memory_order_seq_cst);
}

/* Watches the queue's tail move from `tail`, or a batch being filled
 * after `batched` was read, for a while, if this worker holds the token or
 * can take it. Returns 1 if either happened, with the token kept; 0 with
 * the token given up. */
static int
spin_for_work(struct engine *e, conc_future *tail, uint32_t batched, int *token)
{
    uint32_t none = 0;
    if (!*token && !atomic_compare_exchange_strong(&e->spinning, &none, 1))
        return 0;
    *token = 1;
    struct conc__spin sp = conc__spin_start_flags(
        CONC__SPIN_TASK_NS, CONC__FOREVER, CONC__SPIN_EAGER);
    while (conc__spin_more(&sp))
        if (atomic_load_explicit(&e->q.tail, memory_order_acquire) != tail ||
            atomic_load_explicit(&e->batched, memory_order_acquire) != batched)
            return 1;
    *token = 0;
    atomic_store_explicit(&e->spinning, 0, memory_order_seq_cst);
    return 0;
}

/* Sleeps unless a job is queued or batched. Returns 1 if a waker handed
 * this worker the token. */
static int
sleep_for_work(struct engine *e)
{
    atomic_fetch_add_explicit(&e->sleepers, 1, memory_order_seq_cst);
    uint32_t seen = atomic_load_explicit(&e->work, memory_order_seq_cst);
    qlock_acquire(e);
    int queued = queued_locked(e);
    qlock_release(e);
    int r = -EAGAIN;
    if (!queued && !batched_jobs(e) &&
        !atomic_load_explicit(&e->ex.stopping, memory_order_seq_cst))
        r = conc__futex_wait(&e->work, seen, CONC__FOREVER, 0);
    atomic_fetch_sub_explicit(&e->sleepers, 1, memory_order_seq_cst);
    return r == 0;
}

static int adjust_workers(struct engine *e);

/* Waits for work: returns the next job (from this worker's batch, the
 * queue, or another worker's batch, in that order), or NULL when the
 * worker should leave (shutdown with nothing queued). */
static conc_future *
next_job(struct engine *e, struct conc__batch *mine)
{
    conc_future *f = conc__batch_take(mine);
    if (f)
        return started(e, f);
    int token = 0; /* this worker holds `spinning` */
    struct conc__spin halfway = CONC__SPIN_STEP_INIT;
    /* What the spin watches, read before the last look at an empty queue
     * and empty batches; read only then, as the submitter writes `tail`. */
    conc_future *tail = NULL;
    uint32_t batched = 0;
    for (;;) {
        int more;
        f = pop(e, mine, &more);
        if (!f && !more && (f = take_from_others(e, mine, &more)) == NULL &&
            !tail) {
            tail = atomic_load_explicit(&e->q.tail, memory_order_seq_cst);
            batched = atomic_load_explicit(&e->batched, memory_order_seq_cst);
            continue; /* look once more, now that the spin knows where */
        }
        int leave = !f && may_leave(e, more);
        if (f || leave) {
            if (token) {
                atomic_store_explicit(&e->spinning, 0, memory_order_seq_cst);
                /* A submit or a batch that saw the token held counted on
                 * this worker, which is now busy: look again. */
                more = more ||
                       atomic_load_explicit(&e->q.tail, memory_order_seq_cst) !=
                           &e->q.sentinel.future ||
                       batched_jobs(e);
            }
            if (f && more) {
                /* The idle worker a submit counted on may have taken
                 * another job, or jobs wait in a batch behind the one a
                 * worker runs: make sure someone comes for them. */
                wake_one(e);
                adjust_workers(e);
            }
            return started(e, f);
        }
        if (more) { /* a push half done: it ends in nanoseconds, unless
                     * its thread lost the CPU */
            conc__spin_step(&halfway);
            continue;
        }
        atomic_fetch_add_explicit(&e->idle, 1, memory_order_relaxed);
        if (!spin_for_work(e, tail, batched, &token))
            token = sleep_for_work(e);
        atomic_fetch_sub_explicit(&e->idle, 1, memory_order_relaxed);
        tail = NULL;
    }
}

/* Takes every pending job, queued or batched, once no submit is under way
 * (after `stopping` is set, none starts), as a list linked by the jobs'
 * next. */
static conc_future *
take_all(struct engine *e)
{
    struct conc__spin sp = CONC__SPIN_STEP_INIT;
    while (atomic_load_explicit(&e->submitting, memory_order_seq_cst))
        conc__spin_step(&sp);
    conc_future *head = NULL, **tail = &head, *f;
    int more = 1;
    while ((f = pop(e, NULL, &more)) != NULL || more ||
           (f = take_from_others(e, NULL, &more)) != NULL) {
        if (!f) {
            conc__spin_step(&sp); /* a push half done */
            continue;
        }
        conc__job_of(f)->next = NULL;
        *tail = started(e, f);
        tail = &conc__job_of(f)->next;
    }
    return head;
}

/* Fails every pending job with `code` (lock not held). */
static void
fail_pending(struct engine *e, int code, const char *msg)
{
    conc_future *f = take_all(e);
    while (f) {
        conc_future *next = conc__job_of(f)->next;
        if (conc_future_set_running(f) == 1) {
            if (e->ex.on_done)
                e->ex.on_done(f, code, msg);
            conc__future_finish(f, code, msg);
        }
        conc_future_free(f);
        f = next;
    }
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
    if (!e->ex.broken) { /* the message first: readers look after broken */
        snprintf(e->ex.broken_msg, sizeof e->ex.broken_msg,
                 "a thread initializer failed (%s%s%s): the pool is broken",
                 conc_err_name(r), *conc_failure_message() ? ": " : "",
                 conc_failure_message());
        atomic_store_explicit(&e->ex.broken, 1, memory_order_seq_cst);
    }
    unlock(e);
    conc__executor_signal_room(&e->ex, 1); /* waiting submitters: refused */
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
    size_t me =
        atomic_fetch_add_explicit(&e->nbatches, 1, memory_order_seq_cst);
    struct conc__batch *mine = &e->batches[me];
    conc_future *f;
    while ((f = next_job(e, mine)) != NULL) {
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
    size_t n = atomic_load_explicit(&e->nthreads, memory_order_relaxed);
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, "%s_%zu", e->ex.prefix, n);
    conc_thread_opts o = {.name = name, .daemon = CONC_DAEMON_YES};
    int r = conc_thread_start(worker_main, e, &o, &e->threads[n]);
    if (r < 0)
        return n ? 0 : r;
    atomic_store_explicit(&e->nthreads, n + 1, memory_order_release);
    return 0;
}

/* Starts a worker if none is idle and there may be more (as Python's
 * _adjust_thread_count). */
static int
adjust_workers(struct engine *e)
{
    if (atomic_load_explicit(&e->nthreads, memory_order_relaxed) >=
            e->ex.workers ||
        atomic_load_explicit(&e->idle, memory_order_relaxed))
        return 0;
    lock(e);
    int r = 0;
    if (atomic_load_explicit(&e->nthreads, memory_order_relaxed) <
            e->ex.workers &&
        !atomic_load_explicit(&e->ex.stopping, memory_order_relaxed))
        r = start_worker_locked(e); /* shutdown joins what it counts */
    unlock(e);
    return r;
}

/* ---- Submit ------------------------------------------------------------- */

/* A bounded submit: waits for room under the lock, then counts the job
 * in before it lets the next submitter look. */
static int
reserve_room(struct engine *e, int64_t deadline)
{
    lock(e);
    int r = conc__executor_wait_room_locked(&e->ex, &e->lock, &e->pending,
                                            deadline);
    if (r == 0)
        atomic_fetch_add_explicit(&e->pending, 1, memory_order_seq_cst);
    unlock(e);
    return r;
}

static int
engine_submit(struct conc_executor *ex, conc_future *f, int64_t deadline)
{
    struct engine *e = (struct engine *)ex;
    atomic_fetch_add_explicit(&e->submitting, 1, memory_order_seq_cst);
    int r = ex->opts.max_pending ? reserve_room(e, deadline)
                                 : conc__executor_refuse_locked(ex);
    if (r == 0 && (r = adjust_workers(e)) < 0 && ex->opts.max_pending)
        atomic_fetch_sub_explicit(&e->pending, 1, memory_order_seq_cst);
    if (r < 0) {
        atomic_fetch_sub_explicit(&e->submitting, 1, memory_order_seq_cst);
        return r;
    }
    conc__jobq_push(&e->q, f);
    atomic_fetch_sub_explicit(&e->submitting, 1, memory_order_seq_cst);
    wake_one(e);
    return 0;
}

/* ---- Shutdown ----------------------------------------------------------- */

/* Stops accepting work, and sends submitters waiting for room away (they
 * count as under way, which take_all waits out). */
static void
stop(struct engine *e)
{
    lock(e);
    atomic_store_explicit(&e->ex.stopping, 1, memory_order_seq_cst);
    unlock(e);
    conc__executor_signal_room(&e->ex, 1);
}

static void
wake_all(struct engine *e)
{
    atomic_fetch_add_explicit(&e->work, 1, memory_order_seq_cst);
    conc__futex_wake(&e->work, INT32_MAX, 0);
}

static int
engine_shutdown(struct conc_executor *ex, int wait, int cancel)
{
    struct engine *e = (struct engine *)ex;
    if (wait && conc__executor_in_task(ex))
        return conc_fail(CONC_EDEADLK, "shutdown(wait) from the executor's "
                                       "own task would wait for itself");
    stop(e);
    conc_future *f = cancel ? take_all(e) : NULL;
    while (f) {
        conc_future *next = conc__job_of(f)->next;
        if (conc__future_cancel_pending(f) && ex->on_done)
            ex->on_done(f, CONC_ECANCELED, "cancelled");
        conc_future_free(f);
        f = next;
    }
    wake_all(e);
    conc__executor_signal_room(ex, 1);
    if (!wait)
        return 0;
    lock(e);
    size_t n = atomic_load(&e->nthreads);
    unlock(e);
    for (size_t i = 0; i < n; i++)
        conc_thread_join(e->threads[i], CONC_FOREVER, NULL);
    return 0;
}

static int
engine_terminate(struct conc_executor *ex)
{
    struct engine *e = (struct engine *)ex;
    stop(e);
    fail_pending(e, CONC_ECLOSED, "the pool was terminated");
    wake_all(e);
    conc__executor_signal_room(ex, 1);
    return 0;
}

static int
engine_join(struct conc_executor *ex, double timeout)
{
    struct engine *e = (struct engine *)ex;
    int64_t deadline;
    conc__deadline(timeout, &deadline);
    lock(e);
    size_t n = atomic_load(&e->nthreads);
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
    conc__free_aligned(e->batches);
    conc__executor_fini(ex);
    conc__free_aligned(e);
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
    struct engine *e = conc__calloc_aligned(_Alignof(struct engine), sizeof *e);
    if (!e)
        return CONC_ENOMEM;
    int r = conc__executor_init(&e->ex, opts, 0);
    if (r < 0) {
        conc__free_aligned(e);
        return r;
    }
    e->threads = conc__calloc(e->ex.workers, sizeof *e->threads);
    e->batches = conc__calloc_aligned(_Alignof(struct conc__batch),
                                      e->ex.workers * sizeof *e->batches);
    if (!e->threads || !e->batches) {
        conc__free(e->threads);
        conc__free_aligned(e->batches);
        conc__executor_fini(&e->ex);
        conc__free_aligned(e);
        return CONC_ENOMEM;
    }
    conc__jobq_init(&e->q);
    e->serial = atomic_fetch_add(&executor_serial, 1);
    if (!e->ex.prefix) {
        char name[NAME_MAX_LEN];
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
