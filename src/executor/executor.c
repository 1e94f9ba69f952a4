/* The executor front: options, submit, shutdown and the job runner that
 * both engines share. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "executor/executor_internal.h"
#include "unix/futex.h"

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
    if (o->max_workers > 4096)
        return conc_fail(CONC_EINVAL, "max_workers %zu is above 4096",
                         o->max_workers);
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
    ex->workers = o->max_workers ? o->max_workers
                  : is_process   ? cpus
                                 : (cpus + 4 < 32 ? cpus + 4 : 32);
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
    if ((r = conc__fpool_new(&ex->futures)) < 0) {
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
    conc__fpool_release(ex->futures); /* its futures may outlive it */
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

int
conc__executor_submit(conc_executor *ex, conc_task_fn fn, const void *arg,
                      size_t len, int fd, uint32_t kind, void *owner,
                      size_t rec_len, conc_future **out)
{
    conc_future *f;
    int r = conc__future_new_pooled(ex->futures, fn, arg, len, rec_len, &f);
    if (r < 0)
        return r;
    f->job.kind = kind;
    if (rec_len)
        owner = memcpy(conc__future_extra(f), owner, rec_len);
    f->job.owner = owner;
    if (fd >= 0) {
        f->job.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (f->job.fd < 0) {
            r = errno == EBADF ? conc_fail(CONC_EBADF,
                                           "descriptor %d is not "
                                           "open",
                                           fd)
                               : -errno;
            conc_future_free(f);
            return r;
        }
    }
    if (out) /* f is not shared yet: no atomic increment needed */
        atomic_store_explicit(&f->refs, 2, memory_order_relaxed);
    r = ex->ops->submit(ex, f); /* takes f's first reference on success */
    if (r < 0) {
        if (f->job.fd >= 0)
            close(f->job.fd);
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
    return conc__executor_submit(ex, fn, arg, len, fd, 0, NULL, 0, out);
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
        if (ex->opts.submit_mode == CONC_SUBMIT_FAIL)
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

/* ---- Running a job in this process ------------------------------------- */

void
conc__run_job(conc_future *f)
{
    if (conc_future_set_running(f) != 1) { /* cancelled while pending */
        if (f->job.fd >= 0)
            close(f->job.fd);
        f->job.fd = -1;
        conc_executor *ex = (conc_executor *)current_executor;
        if (ex && ex->on_done)
            ex->on_done(f, CONC_ECANCELED, "cancelled");
        return;
    }
    struct conc__task_ctx ctx = {.cancel = &f->cancel, .fd = f->job.fd};
    if (ctx.fd >= 0)
        f->job.fd = -1; /* the task owns it now */
    conc_clear_failure();
    conc__task_enter(&ctx);
    int r = f->job.fn(f->job.arg, f->job.len, &f->result);
    conc__task_leave();
    conc_executor *ex = (conc_executor *)current_executor;
    if (ex && ex->on_done)
        ex->on_done(f, r < 0 ? r : 0, r < 0 ? conc_failure_message() : "");
    if (r == CONC_ECANCELED && atomic_load(&f->cancel)) {
        conc_buf_free(&f->result);
        f->code = CONC_ECANCELED;
        conc__future_cancel_running(f);
    } else {
        conc__future_finish(f, r, r < 0 ? conc_failure_message() : NULL);
    }
}

/* ---- Shutting down ------------------------------------------------------ */

int
conc_executor_shutdown(conc_executor *ex, int wait, int cancel_futures)
{
    if (!ex)
        return CONC_EINVAL;
    atomic_store(&ex->closed, 1);
    return ex->ops->shutdown(ex, wait, cancel_futures);
}

void
conc_executor_free(conc_executor *ex)
{
    if (!ex)
        return;
    conc_executor_shutdown(ex, 1, 0);
    ex->ops->destroy(ex);
}

void
conc__executor_freep(conc_executor **ex)
{
    if (ex)
        conc_executor_free(*ex);
}
