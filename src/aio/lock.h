/* asyncio.Lock from the inside, for the Condition built on it. */
#ifndef CONC_AIO_LOCK_H
#define CONC_AIO_LOCK_H

#include "aio/waiters.h"
#include "conc/aio_sync.h"

struct conc_aio_lock {
    conc_aio_loop *loop; /* the owning loop, set at first use */
    int locked;
    struct conc__aio_waitq waiters;
};

/* Lock.acquire in task t, bound to the lock's loop already, with an
 * absolute deadline. Returns 0, CONC_ETIMEDOUT, CONC_ECANCELED,
 * CONC_ENOMEM. */
int conc__aio_lock_acquire(conc_aio_lock *lock, struct conc__aio_task *t,
                           int64_t deadline);

/* Lock.release of a locked lock. */
void conc__aio_lock_release(conc_aio_lock *lock);

#endif
