/* conc/aio_sync.h: asyncio's queues and synchronization primitives.
 *
 * Queue (FIFO, LIFO, priority), Lock, Event, Condition, Semaphore,
 * BoundedSemaphore and Barrier for the tasks of one event loop, with
 * asyncio's semantics (Python 3.13's Lib/asyncio/queues.py and locks.py).
 * They are loop-local, as asyncio's are: no atomics and no locks, so they
 * cost a few pointer moves, and they must never be shared between loops
 * or threads (conc_queue, conc_lock and the rest of sync.h serve threads,
 * and tasks too, see aio.h).
 *
 * An object belongs to the loop on which it is first used (asyncio's
 * _LoopBoundMixin). Calls that may wait (those with a timeout) must be
 * made by a task of that loop; the calls that never wait may also be made
 * by a callback of that loop. Otherwise a call returns CONC_ESTATE (no
 * running loop, another loop, not inside a task), as asyncio raises
 * RuntimeError. The queries (qsize, locked, is_set...) only read: they may
 * be called from the loop's thread at any time.
 *
 * Waiting: every wait takes a timeout (CONC_FOREVER, 0 never suspends,
 * NaN is CONC_EINVAL; see docs/conventions.md) and waiters are served in
 * the order they came (FIFO). Every wait is a cancellation point: a task
 * cancelled while it waits gets CONC_ECANCELED, and a timeout ends a wait
 * the way asyncio.timeout() would, by the same path. A wake-up given to a
 * waiter that is cancelled before it could use it is never lost: it
 * passes to the next waiter, exactly where asyncio passes it on (Lock,
 * Semaphore, Queue, Condition); a waiter whose wake-up came before its
 * deadline keeps it and succeeds. A call that does not need to wait
 * does not suspend and is not a cancellation point (asyncio's fast paths).
 *
 * Freeing an object that a task still waits on is a bug, as for sync.h.
 * conc_aio_*_free(NULL) does nothing. */
#ifndef CONC_AIO_SYNC_H
#define CONC_AIO_SYNC_H

#include <stdint.h>

#include "aio.h"
#include "common.h"
#include "error.h"
#include "queue.h"
#include "sync.h"

CONC_BEGIN_DECLS

/* ---- Queue, LifoQueue, PriorityQueue (asyncio.Queue) ----------------------
 *
 * Items are `void *`, as in conc_queue: ownership of an item moves with it
 * from the putter to the getter; a call that fails leaves the item with
 * its caller. put and get return CONC_EFULL and CONC_EEMPTY when their
 * timeout runs out (queue.Full and queue.Empty, as for conc_queue), and
 * CONC_ECLOSED once the queue is shut down (QueueShutDown). */
typedef struct conc_aio_queue conc_aio_queue;

/* Orders two items of a priority queue: negative if `a` leaves before `b`,
 * positive if after, 0 if equal. The context argument comes first. It must
 * not call the queue. */
typedef int (*conc_aio_queue_cmp_fn)(void *arg, const void *a, const void *b);

typedef struct conc_aio_queue_opts {
    size_t maxsize;          /* 0: unbounded (asyncio's default) */
    conc_queue_kind kind;    /* CONC_QUEUE_FIFO (default), _LIFO, _PRIORITY */
    conc_queue_drop_fn drop; /* receives items left at free or removed by
                                an immediate shutdown; NULL: left alone */
    /* Priority queues: items leave lowest integer priority first
     * (conc_aio_queue_put_priority; put gives priority 0), then, among
     * equal priorities, in cmp's order when cmp is given, then in the
     * order they came. NULL: by priority and arrival only. */
    conc_aio_queue_cmp_fn cmp;
    void *cmp_arg; /* cmp's context, borrowed for the queue's life */
} conc_aio_queue_opts;

/* A new queue in *out (asyncio.Queue(maxsize), LifoQueue, PriorityQueue),
 * freed with conc_aio_queue_free. `opts` may be NULL (an unbounded FIFO).
 * Returns 0, CONC_EINVAL (NULL out, an unknown kind, cmp on a queue that
 * is not a priority queue), CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_aio_queue_new(const conc_aio_queue_opts *opts,
                                   conc_aio_queue **out);

/* Frees the queue, giving the items still inside to the drop function.
 * NULL does nothing. No task may be waiting on it. The owning loop's
 * thread, or any thread once no loop uses it. */
CONC_EXTERN void conc_aio_queue_free(conc_aio_queue *q);

/* Puts `item` (any pointer, NULL included; borrowed, its ownership moves
 * to the getter on success), waiting up to `timeout` for a free slot
 * (Queue.put). On a priority queue the item's priority is 0. Returns 0,
 * CONC_EFULL (no slot in time), CONC_ECLOSED (shut down, also while
 * waiting), CONC_ECANCELED, CONC_EINVAL (NULL queue, NaN timeout),
 * CONC_ESTATE (not a task of the owning loop), CONC_ENOMEM. The owning loop's
 * thread, in one of its tasks. */
CONC_EXTERN int conc_aio_queue_put(conc_aio_queue *q, void *item,
                                   double timeout);

/* Puts `item` without waiting (Queue.put_nowait). Returns 0, CONC_EFULL,
 * CONC_ECLOSED, CONC_EINVAL (NULL queue), CONC_ESTATE (not the owning
 * loop's thread while it runs), CONC_ENOMEM. Ownership as
 * conc_aio_queue_put. The owning loop's thread, in a task or callback of that
 * loop. */
CONC_EXTERN int conc_aio_queue_put_nowait(conc_aio_queue *q, void *item);

/* conc_aio_queue_put with an integer priority (lower leaves first), on a
 * priority queue. Errors as conc_aio_queue_put, and CONC_EINVAL on another
 * kind of queue. Ownership as conc_aio_queue_put. The owning loop's thread, in
 * one of its tasks. */
CONC_EXTERN int conc_aio_queue_put_priority(conc_aio_queue *q, void *item,
                                            int64_t priority, double timeout);

/* Takes the next item into *item, waiting up to `timeout` for one
 * (Queue.get). After a shutdown the items left are still handed out (an
 * immediate shutdown removed them). Returns 0, CONC_EEMPTY (none in
 * time), CONC_ECLOSED (shut down and empty, also while waiting),
 * CONC_ECANCELED, CONC_EINVAL (NULL, NaN timeout), CONC_ESTATE (not a task
 * of the owning loop). The item's ownership moves to the caller; *item is
 * left alone on failure. The owning loop's thread, in one of its tasks. */
CONC_EXTERN int conc_aio_queue_get(conc_aio_queue *q, double timeout,
                                   void **item);

/* Takes the next item without waiting (Queue.get_nowait). Returns 0,
 * CONC_EEMPTY, CONC_ECLOSED (shut down and empty), CONC_EINVAL (NULL),
 * CONC_ESTATE (not the owning loop's thread while it runs). Ownership as
 * conc_aio_queue_get. The owning loop's thread, in a task or callback of that
 * loop. */
CONC_EXTERN int conc_aio_queue_get_nowait(conc_aio_queue *q, void **item);

/* Marks one item taken with get as processed (Queue.task_done): when
 * every item put is marked, join returns. Returns 0, CONC_EVALUE (called
 * more times than items were put: Python's ValueError), CONC_EINVAL
 * (NULL), CONC_ESTATE (not the owning loop's thread while it runs). A
 * task or callback of the owning loop. */
CONC_EXTERN int conc_aio_queue_task_done(conc_aio_queue *q);

/* Waits up to `timeout` until every item put has been marked done
 * (Queue.join). Returns 0, CONC_ETIMEDOUT, CONC_ECANCELED, CONC_EINVAL
 * (NULL, NaN timeout), CONC_ESTATE (not a task of the owning loop),
 * CONC_ENOMEM. The owning loop's thread, in one of its tasks. */
CONC_EXTERN int conc_aio_queue_join(conc_aio_queue *q, double timeout);

/* Shuts the queue down (Queue.shutdown, Python 3.13): put fails with
 * CONC_ECLOSED from now on, and get once the queue is empty. With
 * `immediate`, the items still queued are removed at once (given to the
 * drop function, and counted as done so join returns) and get fails at
 * once. Every task blocked in put or get wakes and sees CONC_ECLOSED.
 * Calling it again is allowed. Returns 0, CONC_EINVAL (NULL), CONC_ESTATE
 * (not the owning loop's thread while it runs). The owning loop's thread, in a
 * task or callback of that loop. */
CONC_EXTERN int conc_aio_queue_shutdown(conc_aio_queue *q, int immediate);

/* The number of items (Queue.qsize); 0 for NULL. The owning loop's
 * thread. */
CONC_EXTERN size_t conc_aio_queue_qsize(const conc_aio_queue *q);

/* The queue's maxsize (0: unbounded); 0 for NULL. Any thread. */
CONC_EXTERN size_t conc_aio_queue_maxsize(const conc_aio_queue *q);

/* 1 if the queue holds no item, else 0 (Queue.empty); CONC_EINVAL for
 * NULL. The owning loop's thread. */
CONC_EXTERN int conc_aio_queue_empty(const conc_aio_queue *q);

/* 1 if a bounded queue holds maxsize items, else 0 (Queue.full; an
 * unbounded queue is never full); CONC_EINVAL for NULL. The owning loop's
 * thread. */
CONC_EXTERN int conc_aio_queue_full(const conc_aio_queue *q);

/* ---- Lock (asyncio.Lock) ----------------------------------------------------
 * A lock with no owner, fair: waiters take it in the order they came. */
typedef struct conc_aio_lock conc_aio_lock;

/* A new unlocked lock in *out, freed with conc_aio_lock_free. Returns 0,
 * CONC_EINVAL (NULL out), CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_aio_lock_new(conc_aio_lock **out);

/* Frees the lock; NULL does nothing. No task may be waiting on it. The
 * owning loop's thread, or any thread once no loop uses it. */
CONC_EXTERN void conc_aio_lock_free(conc_aio_lock *lock);

/* Acquires the lock, waiting up to `timeout` (Lock.acquire). Returns 0,
 * CONC_ETIMEDOUT, CONC_ECANCELED, CONC_EINVAL (NULL, NaN timeout),
 * CONC_ESTATE (not a task of the owning loop), CONC_ENOMEM. The owning loop's
 * thread, in one of its tasks. */
CONC_EXTERN int conc_aio_lock_acquire(conc_aio_lock *lock, double timeout);

/* Releases the lock and wakes the first waiter (Lock.release). Any task
 * may release it. Returns 0, CONC_ENOTLOCKED (not locked: Python's
 * RuntimeError, as conc_lock_release), CONC_EINVAL (NULL), CONC_ESTATE
 * (not the owning loop's thread while it runs). The owning loop's thread, in a
 * task or callback of that loop. */
CONC_EXTERN int conc_aio_lock_release(conc_aio_lock *lock);

/* 1 if the lock is locked, else 0 (Lock.locked); CONC_EINVAL for NULL.
 * The owning loop's thread. */
CONC_EXTERN int conc_aio_lock_locked(const conc_aio_lock *lock);

/* ---- Event (asyncio.Event) -------------------------------------------------
 */
typedef struct conc_aio_event conc_aio_event;

/* A new cleared event in *out, freed with conc_aio_event_free. Returns 0,
 * CONC_EINVAL (NULL out), CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_aio_event_new(conc_aio_event **out);

/* Frees the event; NULL does nothing. No task may be waiting on it. The
 * owning loop's thread, or any thread once no loop uses it. */
CONC_EXTERN void conc_aio_event_free(conc_aio_event *ev);

/* Sets the flag and wakes every waiter (Event.set). Returns 0,
 * CONC_EINVAL (NULL), CONC_ESTATE (not the owning loop's thread while it
 * runs). The owning loop's thread, in a task or callback of that loop (from
 * another thread, go through conc_aio_call_soon_threadsafe). */
CONC_EXTERN int conc_aio_event_set(conc_aio_event *ev);

/* Clears the flag (Event.clear). Returns 0, CONC_EINVAL (NULL),
 * CONC_ESTATE as conc_aio_event_set. The owning loop's thread, in a task or
 * callback of that loop. */
CONC_EXTERN int conc_aio_event_clear(conc_aio_event *ev);

/* 1 if the flag is set, else 0 (Event.is_set); CONC_EINVAL for NULL. The
 * owning loop's thread. */
CONC_EXTERN int conc_aio_event_is_set(const conc_aio_event *ev);

/* Waits up to `timeout` until the flag is set (Event.wait): at once if it
 * is. A waiter woken by set returns 0 even if the flag was cleared before
 * it ran, as in asyncio. Returns 0, CONC_ETIMEDOUT, CONC_ECANCELED,
 * CONC_EINVAL (NULL, NaN timeout), CONC_ESTATE (not a task of the owning
 * loop), CONC_ENOMEM. The owning loop's thread, in one of its tasks. */
CONC_EXTERN int conc_aio_event_wait(conc_aio_event *ev, double timeout);

/* ---- Condition (asyncio.Condition) -----------------------------------------
 */
typedef struct conc_aio_cond conc_aio_cond;

typedef struct conc_aio_cond_opts {
    /* The lock to use, borrowed for the condition's life (it must belong
     * to the same loop); NULL: a lock of its own. */
    conc_aio_lock *lock;
} conc_aio_cond_opts;

/* A new condition in *out, freed with conc_aio_cond_free (which frees its
 * own lock, never a borrowed one). `opts` may be NULL. Returns 0,
 * CONC_EINVAL (NULL out), CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_aio_cond_new(const conc_aio_cond_opts *opts,
                                  conc_aio_cond **out);

/* Frees the condition; NULL does nothing. No task may be waiting on it.
 * The owning loop's thread, or any thread once no loop uses it. */
CONC_EXTERN void conc_aio_cond_free(conc_aio_cond *cond);

/* Acquires the condition's lock, as conc_aio_lock_acquire. Errors as
 * conc_aio_lock_acquire. The owning loop's thread, in one of its tasks. */
CONC_EXTERN int conc_aio_cond_acquire(conc_aio_cond *cond, double timeout);

/* Releases the condition's lock, as conc_aio_lock_release. Errors as
 * conc_aio_lock_release. The owning loop's thread, in a task or callback of
 * that loop. */
CONC_EXTERN int conc_aio_cond_release(conc_aio_cond *cond);

/* 1 if the condition's lock is locked, else 0; CONC_EINVAL for NULL. The
 * owning loop's thread. */
CONC_EXTERN int conc_aio_cond_locked(const conc_aio_cond *cond);

/* Releases the lock, waits up to `timeout` to be notified, then acquires
 * the lock again, however long that takes and even when cancelled, before
 * it returns (Condition.wait). It may return 0 without a notify (a
 * spurious wake-up, allowed as in asyncio): check the state again. A wait
 * that ends in failure (cancelled, timed out) notifies one other waiter in
 * its place, as asyncio does, so no notify is lost. Returns 0 (notified),
 * CONC_ETIMEDOUT, CONC_ECANCELED (cancelled while waiting or while
 * acquiring the lock again), all with the lock held again; without
 * waiting or touching the lock: CONC_ENOTOWNER (the lock is not locked:
 * "cannot wait on un-acquired lock", as conc_cond_wait), CONC_EINVAL
 * (NULL, NaN timeout), CONC_ESTATE (not a task of the owning loop). The owning
 * loop's thread, in one of its tasks, holding the lock. */
CONC_EXTERN int conc_aio_cond_wait(conc_aio_cond *cond, double timeout);

/* Waits until pred(arg) is true (Condition.wait_for), checking it first
 * and after each wake-up, with the lock held; `arg` is borrowed. The
 * timeout covers the whole wait. Returns 0 once the predicate holds,
 * CONC_ETIMEDOUT if it is still false at the deadline, CONC_ECANCELED,
 * all with the lock held; CONC_ENOTOWNER, CONC_ESTATE and CONC_EINVAL (a
 * NULL predicate too) as conc_aio_cond_wait. The owning loop's thread, in one
 * of its tasks, holding the lock. */
CONC_EXTERN int conc_aio_cond_wait_for(conc_aio_cond *cond,
                                       conc_predicate_fn pred, void *arg,
                                       double timeout);

/* Wakes up to `n` waiters, oldest first (Condition.notify); each returns
 * from its wait once it has the lock again. n == 0 does nothing. Returns
 * 0, CONC_ENOTOWNER (the lock is not locked), CONC_EINVAL (NULL),
 * CONC_ESTATE (not the owning loop's thread while it runs). The owning loop's
 * thread, in a task or callback of that loop, holding the lock. */
CONC_EXTERN int conc_aio_cond_notify(conc_aio_cond *cond, unsigned n);

/* Wakes every waiter (Condition.notify_all). Errors as
 * conc_aio_cond_notify. The owning loop's thread, in a task or callback of that
 * loop, holding the lock. */
CONC_EXTERN int conc_aio_cond_notify_all(conc_aio_cond *cond);

/* ---- Semaphore and BoundedSemaphore ----------------------------------------
 * A counter that acquire decrements, waiting while it is 0, and release
 * increments; waiters are served in the order they came, and a newcomer
 * waits behind them even if the counter is above 0 (asyncio 3.13). */
typedef struct conc_aio_sem conc_aio_sem;
typedef struct conc_aio_bsem conc_aio_bsem;

/* A new semaphore with `value` units (asyncio's default is 1) in *out,
 * freed with conc_aio_sem_free. Returns 0, CONC_EINVAL (NULL out, a value
 * above INT32_MAX), CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_aio_sem_new(unsigned value, conc_aio_sem **out);

/* Frees the semaphore; NULL does nothing. No task may be waiting on it.
 * The owning loop's thread, or any thread once no loop uses it. */
CONC_EXTERN void conc_aio_sem_free(conc_aio_sem *sem);

/* Takes one unit, waiting up to `timeout` (Semaphore.acquire). Returns 0,
 * CONC_ETIMEDOUT, CONC_ECANCELED, CONC_EINVAL (NULL, NaN timeout),
 * CONC_ESTATE (not a task of the owning loop), CONC_ENOMEM. The owning loop's
 * thread, in one of its tasks. */
CONC_EXTERN int conc_aio_sem_acquire(conc_aio_sem *sem, double timeout);

/* Adds one unit and wakes the first waiter (Semaphore.release). Returns
 * 0, CONC_EOVERFLOW (the value would pass INT32_MAX; nothing added),
 * CONC_EINVAL (NULL), CONC_ESTATE (not the owning loop's thread while it
 * runs). The owning loop's thread, in a task or callback of that loop. */
CONC_EXTERN int conc_aio_sem_release(conc_aio_sem *sem);

/* 1 if acquire would have to wait (Semaphore.locked: the value is 0, or
 * tasks wait ahead), else 0; CONC_EINVAL for NULL. The owning loop's
 * thread. */
CONC_EXTERN int conc_aio_sem_locked(const conc_aio_sem *sem);

/* The number of units free now (units already handed to woken waiters
 * not counted); 0 for NULL. The owning loop's thread. */
CONC_EXTERN unsigned conc_aio_sem_value(const conc_aio_sem *sem);

/* A new BoundedSemaphore (asyncio.BoundedSemaphore) whose initial value is
 * also its ceiling, in *out, freed with conc_aio_bsem_free. Errors as
 * conc_aio_sem_new. Any thread. */
CONC_EXTERN int conc_aio_bsem_new(unsigned value, conc_aio_bsem **out);

/* Frees the semaphore; NULL does nothing. No task may be waiting on it.
 * The owning loop's thread, or any thread once no loop uses it. */
CONC_EXTERN void conc_aio_bsem_free(conc_aio_bsem *sem);

/* As conc_aio_sem_acquire. Errors as conc_aio_sem_acquire. The owning loop's
 * thread, in one of its tasks. */
CONC_EXTERN int conc_aio_bsem_acquire(conc_aio_bsem *sem, double timeout);

/* As conc_aio_sem_release, and CONC_EVALUE when the value would pass the
 * initial value (Python's ValueError "BoundedSemaphore released too many
 * times"); then nothing is added. The owning loop's thread, in a task or
 * callback of that loop. */
CONC_EXTERN int conc_aio_bsem_release(conc_aio_bsem *sem);

/* As conc_aio_sem_locked: 1 or 0, CONC_EINVAL for NULL. The owning loop's
 * thread. */
CONC_EXTERN int conc_aio_bsem_locked(const conc_aio_bsem *sem);

/* As conc_aio_sem_value. The owning loop's thread. */
CONC_EXTERN unsigned conc_aio_bsem_value(const conc_aio_bsem *sem);

/* ---- Barrier (asyncio.Barrier) ---------------------------------------------
 * `parties` tasks meet; when the last arrives all are released, and the
 * barrier fills again once they have all left. */
typedef struct conc_aio_barrier conc_aio_barrier;

/* A new barrier for `parties` tasks in *out, freed with
 * conc_aio_barrier_free. Returns 0, CONC_EINVAL (NULL out, 0 parties:
 * Python's ValueError), CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_aio_barrier_new(unsigned parties, conc_aio_barrier **out);

/* Frees the barrier; NULL does nothing. No task may be waiting on it. The
 * owning loop's thread, or any thread once no loop uses it. */
CONC_EXTERN void conc_aio_barrier_free(conc_aio_barrier *b);

/* Waits up to `timeout` for all parties (Barrier.wait), first waiting for
 * the previous round to drain. On success returns 0 and, if `index` is
 * not NULL, a distinct number from 0 to parties-1 in *index. Returns
 * CONC_EBROKEN (BrokenBarrierError: the barrier is or becomes broken, or
 * is reset while this task waits), CONC_ETIMEDOUT, CONC_ECANCELED (a task
 * that leaves by a timeout or a cancellation does not break the barrier,
 * as in asyncio; it no longer counts as waiting), CONC_EINVAL (NULL, NaN
 * timeout), CONC_ESTATE (not a task of the owning loop), CONC_ENOMEM.
 * The owning loop's thread, in one of its tasks. */
CONC_EXTERN int conc_aio_barrier_wait(conc_aio_barrier *b, double timeout,
                                      unsigned *index);

/* Returns the barrier to its initial, filling state (Barrier.reset): the
 * tasks waiting get CONC_EBROKEN, and once they have left new ones may
 * wait. Unlike asyncio's, it never suspends (no lock to take). Returns 0,
 * CONC_EINVAL (NULL), CONC_ESTATE (not the owning loop's thread while it
 * runs). The owning loop's thread, in a task or callback of that loop. */
CONC_EXTERN int conc_aio_barrier_reset(conc_aio_barrier *b);

/* Breaks the barrier (Barrier.abort): waiting and future waiters get
 * CONC_EBROKEN until reset. Never suspends. Returns 0, CONC_EINVAL (NULL),
 * CONC_ESTATE as conc_aio_barrier_reset. The owning loop's thread, in a task or
 * callback of that loop. */
CONC_EXTERN int conc_aio_barrier_abort(conc_aio_barrier *b);

/* The number of parties (Barrier.parties); 0 for NULL. Any thread. */
CONC_EXTERN unsigned conc_aio_barrier_parties(const conc_aio_barrier *b);

/* The number of tasks waiting for the barrier to fill
 * (Barrier.n_waiting); 0 for NULL. The owning loop's thread. */
CONC_EXTERN unsigned conc_aio_barrier_n_waiting(const conc_aio_barrier *b);

/* 1 if the barrier is broken, else 0 (Barrier.broken); CONC_EINVAL for
 * NULL. The owning loop's thread. */
CONC_EXTERN int conc_aio_barrier_broken(const conc_aio_barrier *b);

CONC_END_DECLS

#endif
