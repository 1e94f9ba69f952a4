/* The executor front: options, submit, shutdown and the job runner that
 * both engines share.
 *
 * Lock order (executor_internal.h has the module's): a Pool's callback
 * lock, then the engine's lock, then a future's lock. This file takes the
 * engine's lock only through the engines, and waits for room in a
 * bounded queue with that lock released while it sleeps. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "executor/executor_internal.h"
#include "unix/futex.h"
#include "unix/coro.h"

/* Python's bounds: ThreadPoolExecutor's default is min(32, CPUs + 4)
 * workers (enough for I/O-bound tasks, without a thread per core on big
 * machines); 4096 refuses a typo (a thread or process each) before it
 * exhausts the machine. */
#define THREADS_DEFAULT_CAP   32
#define THREADS_DEFAULT_EXTRA 4
#define MAX_WORKERS           4096

static _Thread_local const conc_executor *current_executor;

size_t
conc__cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

void
conc__executor_set_current(const conc_executor *ex)
{
    current_executor = ex;
}

int
conc__executor_in_task(const conc_executor *ex)
{
    return current_executor == ex;
}

static int
check_opts(const conc_executor_opts *o)
{
    if (o->initarg_len && !o->initarg)
        return conc_fail(CONC_EINVAL, "initarg is NULL with a length");
    if ((unsigned)o->submit_mode > CONC_SUBMIT_FAIL)
        return conc_fail(CONC_EINVAL, "unknown submit_mode %d",
                         (int)o->submit_mode);
    if (o->submit_timeout != o->submit_timeout ||
        o->task_timeout != o->task_timeout || o->task_timeout < 0)
        return conc_fail(CONC_EINVAL, "a timeout is NaN or negative");
    if (o->max_workers > MAX_WORKERS)
        return conc_fail(CONC_EINVAL, "max_workers %zu is above %d",
                         o->max_workers, MAX_WORKERS);
    return 0;
}

int
conc__executor_init(conc_executor *ex, const conc_executor_opts *o,
                    int is_process)
{
    conc_executor_opts defaults = {0};
    if (!o)
        o = &defaults;
    int r = check_opts(o);
    if (r < 0)
        return r;
    ex->opts = *o;
    ex->is_process = is_process;
    size_t cpus = conc__cpu_count();
    size_t threads = cpus + THREADS_DEFAULT_EXTRA;
    if (threads > THREADS_DEFAULT_CAP)
        threads = THREADS_DEFAULT_CAP;
    ex->workers = o->max_workers ? o->max_workers : is_process ? cpus : threads;
    if (o->initarg_len) {
        ex->initarg = conc__malloc(o->initarg_len);
        if (!ex->initarg)
            return CONC_ENOMEM;
        memcpy(ex->initarg, o->initarg, o->initarg_len);
    }
    ex->opts.initarg = ex->initarg;
    if (o->thread_name_prefix) {
        ex->prefix = conc__strdup(o->thread_name_prefix);
        if (!ex->prefix) {
            conc__free(ex->initarg);
            return CONC_ENOMEM;
        }
    }
    ex->opts.thread_name_prefix = ex->prefix;
    ex->future_ops = &conc__job_future_ops;
    if ((r = conc__jobpool_new(&ex->jobs)) < 0) {
        conc__free(ex->initarg);
        conc__free(ex->prefix);
        return r;
    }
    return 0;
}

void
conc__executor_fini(conc_executor *ex)
{
    conc__free(ex->initarg);
    conc__free(ex->prefix);
    conc__jobpool_release(ex->jobs); /* its futures may outlive it */
}

int
conc_thread_executor_new(const conc_executor_opts *opts, conc_executor **out)
{
    if (!out)
        return CONC_EINVAL;
    return conc__thread_engine_new(opts, NULL, out);
}

int
conc_process_executor_new(const conc_executor_opts *opts, conc_executor **out)
{
    if (!out)
        return CONC_EINVAL;
    return conc__process_engine_new(opts, NULL, out);
}

size_t
conc_executor_max_workers(const conc_executor *ex)
{
    return ex ? ex->workers : 0;
}

/* ---- Submitting --------------------------------------------------------- */

/* Dups the descriptor a job will own. Returns 0 or an error. */
static int
take_fd(struct conc__job *j, int fd)
{
    j->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (j->fd >= 0)
        return 0;
    if (errno == EBADF)
        return conc_fail(CONC_EBADF, "descriptor %d is not open", fd);
    return -errno;
}

/* conc__executor_submit with the deadline of the wait for room. */
static int
submit_until(conc_executor *ex, conc_task_fn fn, const void *arg, size_t len,
             int fd, uint32_t kind, void *owner, size_t rec_len,
             int64_t deadline, conc_future **out)
{
    /* With `out`, the caller's reference and the engine's; f is not
     * shared yet, so no atomic increment is needed. */
    conc_future *f = conc__job_new(ex->jobs, fn, arg, len, rec_len,
                                   ex->future_ops, out ? 2 : 1);
    if (!f)
        return CONC_ENOMEM;
    struct conc__job *j = conc__job_of(f);
    j->kind = kind;
    if (rec_len)
        owner = memcpy(conc__job_extra(j), owner, rec_len);
    j->owner = owner;
    int r = fd >= 0 ? take_fd(j, fd) : 0;
    if (r == 0)
        r = ex->ops->submit(ex, f, deadline); /* takes f's first ref */
    if (r < 0) {
        if (j->fd >= 0)
            close(j->fd);
        j->fd = -1;
        conc_future_free(f);
        if (out)
            conc_future_free(f);
        return r;
    }
    if (out)
        *out = f;
    return 0;
}

int
conc__executor_submit(conc_executor *ex, conc_task_fn fn, const void *arg,
                      size_t len, int fd, uint32_t kind, void *owner,
                      size_t rec_len, conc_future **out)
{
    return submit_until(ex, fn, arg, len, fd, kind, owner, rec_len,
                        conc__executor_submit_deadline(ex), out);
}

int
conc_executor_submit_with(conc_executor *ex, conc_task_fn fn, const void *arg,
                          size_t len, const conc_submit_opts *opts,
                          conc_future **out)
{
    if (!ex || !fn || (!arg && len))
        return CONC_EINVAL;
    int fd = -1;
    if (opts && opts->has_fd) {
        if (opts->fd < 0)
            return conc_fail(CONC_EBADF, "descriptor %d is negative", opts->fd);
        fd = opts->fd;
    }
    int64_t deadline = conc__executor_submit_deadline(ex);
    if (opts && opts->timed && conc__deadline(opts->timeout, &deadline) < 0)
        return CONC_EINVAL;
    return submit_until(ex, fn, arg, len, fd, 0, NULL, 0, deadline, out);
}

int
conc_executor_submit(conc_executor *ex, conc_task_fn fn, const void *arg,
                     size_t len, conc_future **out)
{
    return conc_executor_submit_with(ex, fn, arg, len, NULL, out);
}

/* ---- Bounded submission ------------------------------------------------ */

int
conc__executor_refuse_locked(struct conc_executor *ex)
{
    if (ex->broken)
        return conc_fail(CONC_EBROKEN, "%s", ex->broken_msg);
    if (ex->stopping)
        return conc_fail(CONC_ECLOSED,
                         "cannot schedule new futures after shutdown");
    return 0;
}

int64_t
conc__executor_submit_deadline(const struct conc_executor *ex)
{
    int64_t deadline = CONC__FOREVER;
    if (ex->opts.submit_mode == CONC_SUBMIT_FAIL)
        return CONC__SUBMIT_FAIL_FULL;
    if (ex->opts.max_pending && ex->opts.submit_mode == CONC_SUBMIT_TIMEOUT)
        conc__deadline(ex->opts.submit_timeout, &deadline);
    return deadline;
}

int
conc__executor_wait_room_locked(struct conc_executor *ex, conc__lockword *lock,
                                const _Atomic size_t *count, int64_t deadline)
{
    for (;;) {
        /* Read before the count: a count lowered after this bumps it. */
        uint32_t seen = atomic_load_explicit(&ex->room, memory_order_seq_cst);
        size_t n = atomic_load_explicit(count, memory_order_seq_cst);
        int r = conc__executor_refuse_locked(ex);
        if (r < 0 || n < ex->opts.max_pending)
            return r;
        if (deadline == CONC__SUBMIT_FAIL_FULL)
            return conc_fail(CONC_EFULL,
                             "the executor's submission queue is full "
                             "(%zu pending)",
                             n);
        conc__lockword_release(lock, 0);
        atomic_fetch_add_explicit(&ex->room_sleepers, 1, memory_order_seq_cst);
        r = 0;
        if (atomic_load_explicit(&ex->room, memory_order_seq_cst) == seen)
            r = conc__futex_wait(&ex->room, seen, deadline, 0);
        atomic_fetch_sub_explicit(&ex->room_sleepers, 1, memory_order_relaxed);
        conc__lockword_acquire(lock, CONC__FOREVER, 0);
        if (r == -ETIMEDOUT && atomic_load(count) >= ex->opts.max_pending)
            return conc_fail(CONC_ETIMEDOUT, "no room in the executor's "
                                             "submission queue in time");
    }
}

void
conc__executor_signal_room(struct conc_executor *ex, int all)
{
    if (!ex->opts.max_pending)
        return;
    atomic_fetch_add_explicit(&ex->room, 1, memory_order_seq_cst);
    if (all || atomic_load_explicit(&ex->room_sleepers, memory_order_seq_cst))
        conc__futex_wake(&ex->room, INT32_MAX, 0);
}

uint32_t
conc__job_kind(conc_future *f)
{
    return conc__job_of(f)->kind;
}

void *
conc__job_owner(conc_future *f)
{
    return conc__job_of(f)->owner;
}

const void *
conc__job_arg(conc_future *f)
{
    return conc__job_of(f)->arg;
}

/* ---- Running a job in this process ------------------------------------- */

/* The hooks of a thread engine's futures: nothing to cancel or sync
 * beyond the future's own state, and the block goes back to its pool. */
const struct conc__future_ops conc__job_future_ops = {
    .release = conc__job_release,
};

/* Tells a Pool's hook, if any, how the job ended. */
static void
job_done(conc_future *f, int code, const char *msg)
{
    conc_executor *ex = (conc_executor *)current_executor;
    if (ex && ex->on_done)
        ex->on_done(f, code, msg);
}

void
conc__run_job(conc_future *f)
{
    struct conc__job *j = conc__job_of(f);
    if (conc_future_set_running(f) != 1) { /* cancelled while pending */
        if (j->fd >= 0)
            close(j->fd);
        j->fd = -1;
        job_done(f, CONC_ECANCELED, "cancelled");
        return;
    }
    _Atomic uint32_t *token = conc__future_cancel_token(f);
    struct conc__task_ctx ctx = {.cancel = token, .fd = j->fd};
    if (ctx.fd >= 0)
        j->fd = -1; /* the task owns it now (a store only then: this line
                     * stays shared with the next submitter of the block) */
    conc_clear_failure();
    conc__task_enter(&ctx);
    int r = j->fn(j->arg, j->len, conc__future_result_buf(f));
    conc__task_leave();
    const char *msg = r < 0 ? conc_failure_message() : NULL;
    job_done(f, r < 0 ? r : 0, msg ? msg : "");
    if (r == CONC_ECANCELED && atomic_load(token))
        conc__future_cancel_running(f);
    else
        conc__future_finish(f, r, msg);
}

/* ---- Shutting down ------------------------------------------------------ */

static int
executor_shutdown_uncancelled(conc_executor *ex, int wait, int cancel_futures,
                              double timeout)
{
    int64_t deadline;
    if (!ex || conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    if (timeout == CONC_FOREVER || !wait)
        return ex->ops->shutdown(ex, wait, cancel_futures);
    /* A bounded wait: stop without waiting, then join within the time. */
    if (conc__executor_in_task(ex))
        return conc_fail(CONC_EDEADLK, "shutdown(wait) from the executor's "
                                       "own task would wait for itself");
    int r = ex->ops->shutdown(ex, 0, cancel_futures);
    if (r < 0)
        return r;
    return ex->ops->join(ex, timeout);
}

int
conc_executor_shutdown(conc_executor *ex, int wait, int cancel_futures,
                       double timeout)
{
    CONC__CANCEL_POINT(
        executor_shutdown_uncancelled(ex, wait, cancel_futures, timeout));
}

int
conc__executor_terminate(conc_executor *ex)
{
    return ex->ops->terminate(ex);
}

int
conc__executor_join(conc_executor *ex, double timeout)
{
    return ex->ops->join(ex, timeout);
}

void
conc_executor_free(conc_executor *ex)
{
    if (!ex)
        return;
    conc_executor_shutdown(ex, 1, 0, CONC_FOREVER);
    ex->ops->destroy(ex);
}

void
conc__executor_freep(conc_executor **ex)
{
    if (ex)
        conc_executor_free(*ex);
}
