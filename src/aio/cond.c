/* asyncio.Condition (Python 3.13's Lib/asyncio/locks.py), loop-local.
 *
 * wait releases the lock, waits for a notify, and always takes the lock
 * again before it returns, even when cancelled while taking it (the
 * cancellation is then reported once the lock is held). A wait that ends
 * in failure notifies one other waiter in its place: the notify it may
 * have received just before its cancellation is not lost, at the price of
 * a possible spurious wake-up (asyncio's `except BaseException:
 * self._notify(1)`). notify wakes waiters not already done, oldest first. */
#include <limits.h>

#include "aio/lock.h"

struct conc_aio_cond {
    conc_aio_lock *lock;
    conc_aio_lock own; /* the lock when none was given */
    struct conc__aio_waitq waiters;
};

int
conc_aio_cond_new(const conc_aio_cond_opts *opts, conc_aio_cond **out)
{
    if (!out)
        return CONC_EINVAL;
    conc_aio_cond *c = conc__calloc(1, sizeof *c);
    if (!c)
        return CONC_ENOMEM;
    c->lock = opts && opts->lock ? opts->lock : &c->own;
    *out = c;
    return 0;
}

void
conc_aio_cond_free(conc_aio_cond *cond)
{
    conc__free(cond);
}

int
conc_aio_cond_acquire(conc_aio_cond *cond, double timeout)
{
    return cond ? conc_aio_lock_acquire(cond->lock, timeout) : CONC_EINVAL;
}

int
conc_aio_cond_release(conc_aio_cond *cond)
{
    return cond ? conc_aio_lock_release(cond->lock) : CONC_EINVAL;
}

int
conc_aio_cond_locked(const conc_aio_cond *cond)
{
    return cond ? cond->lock->locked : CONC_EINVAL;
}

/* Takes the lock again after a wait, retrying through cancellations.
 * Returns 0, or CONC_ECANCELED if a cancellation arrived meanwhile; the
 * lock is held either way. */
static int
reacquire(conc_aio_lock *lock, struct conc__aio_task *t)
{
    int cancelled = 0;
    while (conc__aio_lock_acquire(lock, t, CONC__FOREVER) == CONC_ECANCELED)
        cancelled = 1;
    return cancelled ? CONC_ECANCELED : 0;
}

/* Condition.wait in task t with an absolute deadline; the lock is held.
 * Returns with the lock held again. */
static int
cond_wait(conc_aio_cond *c, struct conc__aio_task *t, int64_t deadline)
{
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT; /* 0 never suspends: the lock stays held */
    conc__aio_lock_release(c->lock);
    struct conc__aio_waiter w;
    int r = conc__aio_waitq_wait(&c->waiters, &w, t, deadline);
    if (reacquire(c->lock, t) == CONC_ECANCELED)
        r = CONC_ECANCELED; /* a cancellation is never dropped */
    if (r < 0)
        conc__aio_waitq_wake(&c->waiters, 1);
    return r;
}

/* The checks every waiting call makes: the task, then the lock held. */
static int
enter_wait(conc_aio_cond *c, double timeout, int64_t *deadline,
           struct conc__aio_task **t)
{
    if (!c || conc__deadline(timeout, deadline) < 0)
        return CONC_EINVAL;
    int r = conc__aio_bind_task(&c->lock->loop, t);
    if (r < 0)
        return r;
    if (!c->lock->locked)
        return conc_fail(CONC_ENOTOWNER, "cannot wait on un-acquired lock");
    return 0;
}

int
conc_aio_cond_wait(conc_aio_cond *cond, double timeout)
{
    int64_t deadline;
    struct conc__aio_task *t;
    int r = enter_wait(cond, timeout, &deadline, &t);
    return r < 0 ? r : cond_wait(cond, t, deadline);
}

int
conc_aio_cond_wait_for(conc_aio_cond *cond, conc_predicate_fn pred, void *arg,
                       double timeout)
{
    if (!pred)
        return CONC_EINVAL;
    int64_t deadline;
    struct conc__aio_task *t;
    int r = enter_wait(cond, timeout, &deadline, &t);
    if (r < 0)
        return r;
    while (!pred(arg)) {
        r = cond_wait(cond, t, deadline);
        if (r == CONC_ETIMEDOUT)
            return pred(arg) ? 0 : r;
        if (r < 0)
            return r;
    }
    return 0;
}

int
conc_aio_cond_notify(conc_aio_cond *cond, unsigned n)
{
    if (!cond)
        return CONC_EINVAL;
    int r = conc__aio_bind(&cond->lock->loop);
    if (r < 0)
        return r;
    if (!cond->lock->locked)
        return conc_fail(CONC_ENOTOWNER, "cannot notify on un-acquired lock");
    conc__aio_waitq_wake(&cond->waiters, n);
    return 0;
}

int
conc_aio_cond_notify_all(conc_aio_cond *cond)
{
    return conc_aio_cond_notify(cond, UINT_MAX);
}
