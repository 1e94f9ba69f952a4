/* asyncio.Lock (Python 3.13's Lib/asyncio/locks.py), loop-local.
 *
 * Fair: a task takes the free lock at once only if nobody waits (or every
 * waiter is already cancelled); otherwise it queues. release wakes the
 * first waiter only if that one is not already done; the lock stays
 * unlocked until the woken task runs and takes it. A waiter that leaves
 * with an error (cancelled, timed out) while the lock is unlocked wakes
 * the new first waiter: that is how a wake-up given to a waiter cancelled
 * before it ran passes on, and how a cancelled first waiter does not
 * stall the ones behind it (asyncio's _wake_up_first). */
#include "aio/lock.h"

/* Ensures the first waiter will wake, unless it is already done. */
static void
wake_up_first(conc_aio_lock *lock)
{
    struct conc__aio_waiter *w = lock->waiters.head;
    if (w && !conc__aio_waiter_done(w))
        conc__aio_waiter_wake(w);
}

int
conc__aio_lock_acquire(conc_aio_lock *lock, struct conc__aio_task *t,
                       int64_t deadline)
{
    if (!lock->locked && conc__aio_waitq_all_cancelled(&lock->waiters)) {
        lock->locked = 1;
        return 0;
    }
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    struct conc__aio_waiter w;
    int r = conc__aio_waitq_wait(&lock->waiters, &w, t, deadline);
    if (r < 0) {
        if (!lock->locked)
            wake_up_first(lock);
        return r;
    }
    lock->locked = 1;
    return 0;
}

void
conc__aio_lock_release(conc_aio_lock *lock)
{
    lock->locked = 0;
    wake_up_first(lock);
}

int
conc_aio_lock_new(conc_aio_lock **out)
{
    if (!out)
        return CONC_EINVAL;
    conc_aio_lock *lock = conc__calloc(1, sizeof *lock);
    if (!lock)
        return CONC_ENOMEM;
    *out = lock;
    return 0;
}

void
conc_aio_lock_free(conc_aio_lock *lock)
{
    conc__free(lock);
}

int
conc_aio_lock_acquire(conc_aio_lock *lock, double timeout)
{
    int64_t deadline;
    if (!lock || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    struct conc__aio_task *t;
    int r = conc__aio_bind_task(&lock->loop, &t);
    if (r < 0)
        return r;
    return conc__aio_lock_acquire(lock, t, deadline);
}

int
conc_aio_lock_release(conc_aio_lock *lock)
{
    if (!lock)
        return CONC_EINVAL;
    int r = conc__aio_bind(&lock->loop);
    if (r < 0)
        return r;
    if (!lock->locked)
        return conc_fail(CONC_ENOTLOCKED, "Lock is not acquired.");
    conc__aio_lock_release(lock);
    return 0;
}

int
conc_aio_lock_locked(const conc_aio_lock *lock)
{
    return lock ? lock->locked : CONC_EINVAL;
}
