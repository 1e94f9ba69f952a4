/* The suspending calls of asyncio: sleep, await, gather, wait_for, shield.
 *
 * Each waits on futures through a watch linked into every future it waits
 * for (future/future_internal.h): a completing future, in whatever thread
 * completes it, notifies the watch, which wakes the task through its
 * coroutine hooks (directly on the loop's thread, through the loop's
 * remote list from any other). These waits are cancellation points: a
 * cancelled task's wait returns CONC_ECANCELED, and each call then does
 * what asyncio does to the futures it waited for. Outside a task each
 * call blocks its thread instead, with the same results. */
#include <errno.h>
#include <math.h>

#include "aio/aio_internal.h"
#include "unix/platform.h"

/* ---- Waiting for futures in a task --------------------------------------- */

struct waiter {
    struct conc__watch watch;
    struct conc__aio_task *task;
    _Atomic uint64_t token;
};

static void
waiter_notify(struct conc__watch *w, conc_future *f)
{
    CONC__UNUSED(f);
    struct waiter *wt = (struct waiter *)w;
    struct conc__coro *c = &wt->task->coro;
    c->ops->wake(c, atomic_load_explicit(&wt->token, memory_order_acquire));
}

/* Which futures `ready` says to stop for. */
typedef int (*ready_fn)(conc_future *const *fs, size_t n);

static int
all_done(conc_future *const *fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!conc_future_done(fs[i]))
            return 0;
    return 1;
}

/* Waits in task t until ready(fs, n), the deadline, or a cancellation.
 * Returns 0, CONC_ETIMEDOUT, CONC_ECANCELED, CONC_ENOMEM. */
static int
task_wait(struct conc__aio_task *t, conc_future *const *fs, size_t n,
          ready_fn ready, int64_t deadline)
{
    if (ready(fs, n))
        return 0;
    struct waiter w = {.watch.notify = waiter_notify, .task = t};
    struct conc__watch_link one,
        *links = n == 1 ? &one : conc__calloc(n, sizeof *links);
    if (!links)
        return CONC_ENOMEM;
    int r = 0;
    for (;;) {
        atomic_store(&w.token, conc__coro_token(&t->coro));
        /* Link to every future not done; a future done meanwhile does not
         * link, and the look at ready() below sees it. */
        for (size_t i = 0; i < n; i++) {
            links[i] =
                (struct conc__watch_link){.watch = &w.watch, .future = fs[i]};
            conc__future_watch(&links[i]);
        }
        if (!ready(fs, n)) {
            t->what = n == 1 ? "a future" : "futures";
            r = conc__aio_suspend(t, deadline, 1);
        }
        for (size_t i = 0; i < n; i++)
            conc__future_unwatch(&links[i]);
        if (r < 0 || ready(fs, n))
            break;
    }
    if (links != &one)
        conc__free(links);
    return r;
}

/* The outcome of a done future as conc_future_exception gives it. */
static int
outcome(conc_future *f)
{
    int code = 0;
    int r = conc_future_exception(f, 0, &code);
    return r < 0 ? r : code;
}

/* ---- sleep ------------------------------------------------------------- */

int
conc_aio_sleep(double delay)
{
    int64_t deadline = CONC__POLL;
    if (delay != 0 && conc__deadline(delay, &deadline) < 0)
        return CONC_EINVAL; /* (a yield, sleep(0), reads no clock) */
    struct conc__aio_task *t = conc__aio_task_self();
    if (!t) {
        int r = conc__poll_until(NULL, 0, deadline);
        return r < 0 ? r : 0;
    }
    t->what = "sleep";
    int r = conc__aio_suspend(t, deadline, 1);
    return r == CONC_ETIMEDOUT ? 0 : r;
}

/* ---- await ------------------------------------------------------------- */

int
conc_aio_await(conc_future *f)
{
    if (!f)
        return CONC_EINVAL;
    struct conc__aio_task *t = conc__aio_task_self();
    if (!t) {
        int code = 0, r = conc_future_exception(f, CONC_FOREVER, &code);
        return r < 0 ? r : code;
    }
    int r = task_wait(t, &f, 1, all_done, CONC__FOREVER);
    if (r == CONC_ECANCELED) {
        struct conc__aio_task *inner = conc__aio_task_of(f);
        if (inner ? conc_aio_task_cancel(f, t->cancel_msg) <= 0
                  : conc_future_cancel(f) <= 0)
            return CONC_ECANCELED; /* f can no longer be cancelled */
        while ((r = task_wait(t, &f, 1, all_done, CONC__FOREVER)) ==
               CONC_ECANCELED)
            ; /* asyncio waits for the cancelled inner future */
    }
    return r < 0 ? r : outcome(f);
}

/* Cancels f as asyncio cancels an awaited future: a task with the message
 * of the task that is being cancelled. Returns what the cancel returned. */
static int
cancel_inner(struct conc__aio_task *t, conc_future *f)
{
    return conc__aio_task_of(f) ? conc_aio_task_cancel(f, t->cancel_msg)
                                : conc_future_cancel(f);
}

/* ---- gather -------------------------------------------------------------- */

static int
all_done_or_failed(conc_future *const *fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (conc_future_done(fs[i]) && outcome(fs[i]) < 0)
            return 1;
    return all_done(fs, n);
}

int
conc_aio_gather(conc_future *const *fs, size_t n, int return_exceptions)
{
    if (!fs && n)
        return CONC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return CONC_EINVAL;
    ready_fn ready = return_exceptions ? all_done : all_done_or_failed;
    struct conc__aio_task *t = conc__aio_task_self();
    int r;
    if (t) {
        r = task_wait(t, fs, n, ready, CONC__FOREVER);
        if (r == CONC_ECANCELED)
            for (size_t i = 0; i < n; i++)
                if (!conc_future_done(fs[i]))
                    cancel_inner(t, fs[i]);
    } else {
        r = conc_wait(fs, n,
                      return_exceptions ? CONC_ALL_COMPLETED
                                        : CONC_FIRST_EXCEPTION,
                      CONC_FOREVER, NULL);
    }
    if (r < 0 || return_exceptions)
        return r;
    for (size_t i = 0; i < n; i++) /* the first failure, in argument order */
        if (conc_future_done(fs[i]) && (r = outcome(fs[i])) < 0)
            return r;
    return 0;
}

/* ---- wait_for --------------------------------------------------------------
 */

int
conc_aio_wait_for(conc_future *f, double timeout)
{
    int64_t deadline;
    if (!f || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    struct conc__aio_task *t = conc__aio_task_self();
    if (!t) {
        int code = 0, r = conc_future_exception(f, timeout, &code);
        if (r == CONC_ETIMEDOUT) {
            conc_future_cancel(f);
            return CONC_ETIMEDOUT;
        }
        return r < 0 ? r : code;
    }
    int r = task_wait(t, &f, 1, all_done, deadline);
    if (r == CONC_ETIMEDOUT || r == CONC_ECANCELED) {
        if (cancel_inner(t, f) <= 0 && !conc_future_done(f))
            return r; /* it cannot be cancelled: leave it running */
        int w;
        while ((w = task_wait(t, &f, 1, all_done, CONC__FOREVER)) ==
               CONC_ECANCELED)
            r = CONC_ECANCELED; /* the caller's cancellation wins */
        int o = outcome(f);
        if (o != CONC_ECANCELED)
            return o; /* it finished anyway: its outcome stands */
        return r;
    }
    return r < 0 ? r : outcome(f);
}

/* ---- shield
 * ------------------------------------------------------------------ */

static int
shield_copy(void *arg, conc_future *inner)
{
    conc_future *outer = arg;
    const void *data;
    size_t len;
    int r = conc_future_result(inner, 0, &data, &len);
    if (r == 0)
        conc_future_set_result(outer, data, len);
    else if (r == CONC_ECANCELED)
        conc_future_cancel(outer);
    else
        conc_future_set_exception(outer, r, conc_future_message(inner));
    conc_future_free(outer);
    return 0;
}

int
conc_aio_shield(conc_future *f, conc_future **out)
{
    if (!f || !out)
        return CONC_EINVAL;
    conc_future *outer;
    int r = conc_future_new(&outer);
    if (r < 0)
        return r;
    conc_future_ref(outer); /* for the callback */
    r = conc_future_add_done_callback(f, shield_copy, outer);
    if (r < 0) {
        conc_future_free(outer);
        conc_future_free(outer);
        return r;
    }
    *out = outer;
    return 0;
}

/* ---- wait, as_completed: the thread calls, which suspend in a task ---- */

int
conc_aio_wait(conc_future *const *fs, size_t n, conc_return_when when,
              double timeout, unsigned char *done)
{
    return conc_wait(fs, n, when, timeout, done);
}

int
conc_aio_as_completed(conc_future *const *fs, size_t n, double timeout,
                      conc_as_completed_iter **out)
{
    return conc_as_completed(fs, n, timeout, out);
}
