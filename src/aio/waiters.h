/* FIFO lists of suspended tasks: what asyncio's primitives keep as a deque
 * of futures, for the loop-local queues and locks (src/aio/queue.c,
 * lock.c, event.c, cond.c, sem.c, barrier.c).
 *
 * A waiter lives on the stack of the task that waits. It maps onto
 * asyncio's future as follows: "set_result" is conc__aio_waiter_wake,
 * which marks the waiter woken and resumes its task; the future is "done"
 * once it was woken or once its task was resumed by something else (a
 * cancellation or its deadline), and "cancelled" in the second case only.
 * A waiter that was woken and is then cancelled before it runs still
 * says woken: that is how each primitive sees a wake-up it must pass on
 * (asyncio's hand-over rule).
 *
 * Everything here runs in the loop's thread only: no atomics, no locks. */
#ifndef CONC_AIO_WAITERS_H
#define CONC_AIO_WAITERS_H

#include <stddef.h>
#include <stdint.h>

#include "aio/aio_internal.h"

struct conc__aio_waiter {
    struct conc__aio_waiter *prev, *next;
    struct conc__aio_task *task;
    int linked; /* in its list (a queue's wake unlinks it at once) */
    int woken;  /* a wake-up was given to it (set_result) */
};

struct conc__aio_waitq {
    struct conc__aio_waiter *head, *tail;
    size_t n;
};

/* Suspends task t (the running task) as waiter w at the tail of q until a
 * wake-up, the deadline or a cancellation. Returns 0 when woken,
 * CONC_ETIMEDOUT, CONC_ECANCELED, CONC_ENOMEM (no room for the deadline's
 * timer). On return w is out of the list and w->woken says whether a
 * wake-up reached it, whatever the return. */
int conc__aio_waitq_wait(struct conc__aio_waitq *q, struct conc__aio_waiter *w,
                         struct conc__aio_task *t, int64_t deadline);

/* asyncio's fut.done(): woken, or resumed by a cancellation or timeout. */
int conc__aio_waiter_done(const struct conc__aio_waiter *w);

/* asyncio's fut.cancelled(): resumed by a cancellation or timeout before
 * any wake-up reached it. */
int conc__aio_waiter_cancelled(const struct conc__aio_waiter *w);

/* Gives w its wake-up (fut.set_result) and resumes its task. w must not be
 * done. */
void conc__aio_waiter_wake(struct conc__aio_waiter *w);

/* Unlinks w from q; a waiter not in the list is left alone. */
void conc__aio_waitq_remove(struct conc__aio_waitq *q,
                            struct conc__aio_waiter *w);

/* Wakes up to n waiters not done, oldest first, leaving them in the list
 * (each removes itself when it runs). Returns how many it woke. */
size_t conc__aio_waitq_wake(struct conc__aio_waitq *q, size_t n);

/* asyncio's Queue._wakeup_next: takes waiters off the head until one not
 * done is found, and wakes that one. Returns 1 if one was woken, else 0. */
int conc__aio_waitq_pop_wake(struct conc__aio_waitq *q);

/* 1 if every waiter of q is cancelled (an empty list included), else 0. */
int conc__aio_waitq_all_cancelled(const struct conc__aio_waitq *q);

/* Binds a primitive to the running loop at its first use, as asyncio's
 * _LoopBoundMixin does, and checks later uses against it. Returns 0, or
 * CONC_ESTATE when no loop runs in this thread or the primitive belongs to
 * another loop. */
int conc__aio_bind(conc_aio_loop **owner);

/* conc__aio_bind, and the caller must also be a task of that loop: the
 * task in *t. Returns 0 or CONC_ESTATE. */
int conc__aio_bind_task(conc_aio_loop **owner, struct conc__aio_task **t);

#endif
