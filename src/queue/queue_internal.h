/* Internal to the queue module: the sleep and wake protocol shared by
 * conc_queue and conc_simplequeue, the storage of conc_queue, and accessors
 * that tests use to observe states no public call reveals.
 *
 * Sleeping. A thread that must wait for a condition (an item to arrive, a
 * slot to free, every task to be done) first spins a little, reading the
 * condition only, by the policy of core/wait.h (the other side usually
 * acts within a few hundred nanoseconds while a futex sleep and wake costs
 * microseconds; the growing gaps between looks also let a producer put a
 * few items in a row while a consumer waits). Then it counts itself in
 * `sleepers`, reads the futex word `seq`, checks the condition once more and
 * sleeps on the word. The thread that changes the condition reads `sleepers`
 * after its change; only if it is not zero does it bump `seq` and call futex
 * wake. Either the sleeper's check sees the change, or the changer sees the
 * sleeper (and its bump makes the sleeper's futex wait return at once), so no
 * wake-up is lost, and while nobody sleeps the changer makes no system call.
 *
 * What orders the change against the sleeper's check comes in two kinds:
 *  - a guard lock: the changer changes the condition and decides whether
 *    to wake while it holds the lock, and the sleeper counts itself and
 *    checks under the same lock. The changer's fast path then needs no
 *    fence at all (conc_queue, whose producers and consumers hold a lock
 *    anyway);
 *  - no guard: the changer changes the condition with a sequentially
 *    consistent operation and then reads `sleepers` (sequentially
 *    consistent too), and the sleeper does the reverse; in the single
 *    total order of those operations one sees the other (conc_simplequeue,
 *    whose producers use a CAS, a full barrier anyway; join).
 *
 * One wake per sleep. A woken thread needs tens of microseconds to run, and
 * a busy producer could make a futex call for every item it puts in that
 * time. So `woken` counts threads that a wake has taken out of the kernel
 * and that have not yet re-checked the condition (a woken thread lowers it
 * before it re-checks). When every counted sleeper is such a thread, each
 * of them will see the change anyway, and the changer skips the call. The
 * count is raised only after the wake returns and can only lag (or drop
 * with a spurious return from the wait), so it errs toward an extra wake,
 * never a lost one. */
#ifndef CONC_QUEUE_INTERNAL_H
#define CONC_QUEUE_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "conc/queue.h"
#include "core/internal.h"
#include "core/lockword.h"
#include "core/wait.h"
#include "unix/futex.h"

/* Bytes that keep fields written by different threads on different cache
 * lines. Padding rather than alignment, since conc__malloc only promises
 * the alignment of malloc. */
#define CONC__QUEUE_LINE 64

/* One condition that threads may sleep on. With a guard, `sleepers` and
 * `woken` change only under it. */
struct conc__qwait {
    _Atomic int32_t sleepers; /* counted to sleep, or sleeping */
    _Atomic int32_t woken;    /* released by a wake, not yet re-checked */
    _Atomic uint32_t seq;     /* the futex word; bumped before each wake */
};

/* Returns nonzero when the awaited condition holds. */
typedef int (*conc__qready_fn)(const void *arg);

/* Waits until ready(arg) or the absolute `deadline` passes. Spins first,
 * then sleeps on `w`; `guard` (may be NULL) is the lock under which the
 * condition changes, and must not be held by the caller. Returns 0 when
 * ready(arg) was seen true, or CONC_ETIMEDOUT; either way the caller
 * re-checks under its own rules. */
int conc__qwait_until(struct conc__qwait *w, conc__lockword *guard,
                      conc__qready_fn ready, const void *arg, int64_t deadline);

/* The two halves of conc__qwait_until, for a caller whose spin looks for
 * more than the condition it sleeps on (a putter waiting for a run of free
 * slots, queue.c). conc__qwait_spin looks at ready(arg) by the spin policy
 * of core/wait.h and returns nonzero once it was seen true, 0 when the
 * spin is over. conc__qwait_sleep counts itself in `w`, checks ready(arg)
 * and sleeps, as conc__qwait_until does after its spin. */
int conc__qwait_spin(conc__qready_fn ready, const void *arg, int64_t deadline);
int conc__qwait_sleep(struct conc__qwait *w, conc__lockword *guard,
                      conc__qready_fn ready, const void *arg, int64_t deadline);

/* Whether a change to the condition must wake someone: called under the
 * guard, or without one just after a sequentially consistent change. */
static inline int
conc__qwait_wanted(struct conc__qwait *w)
{
    int32_t sleepers = atomic_load(&w->sleepers);
    return CONC__UNLIKELY(sleepers != 0) && atomic_load(&w->woken) < sleepers;
}

/* Wakes up to `n` sleepers of `w` (INT32_MAX for all). Call with no lock
 * held, after conc__qwait_wanted said so, or to wake everyone (shutdown). */
static inline void
conc__qwait_wake(struct conc__qwait *w, int n)
{
    atomic_fetch_add(&w->seq, 1);
    int k = conc__futex_wake(&w->seq, n, 0);
    if (k > 0)
        atomic_fetch_add(&w->woken, k);
}

/* Both steps, for a condition without a guard. */
static inline void
conc__qwait_notify(struct conc__qwait *w, int n)
{
    if (conc__qwait_wanted(w))
        conc__qwait_wake(w, n);
}

/* The number of threads sleeping (or about to sleep) in get, put and join
 * on `q`. Any pointer may be NULL. For tests: a test waits until a thread
 * is known to be blocked before it acts. */
void conc__queue_waiters(conc_queue *q, unsigned *getters, unsigned *putters,
                         unsigned *joiners);

/* The number of threads sleeping (or about to sleep) in get on `q`. */
unsigned conc__simplequeue_waiters(conc_simplequeue *q);

/* Items per storage segment of a simple queue: the put that fills one
 * allocates the next, which tests use to reach the allocation path. */
#define CONC__SIMPLEQUEUE_SEGMENT 127

/* ---- Storage of conc_queue (store.c) -------------------------------------
 * A growable array: of `void *` for FIFO and LIFO queues, of entries kept
 * as a binary min-heap for priority queues. Guarded by the queue's lock. */
struct conc__qstore {
    void *buf;
    size_t len, cap; /* in elements */
};

/* A priority queue's element: `seq` (the put's order) breaks ties, so
 * equal priorities leave in the order they came. */
struct conc__qentry {
    int64_t prio;
    uint64_t seq;
    void *item;
};

/* Makes room for one more element of `elem` bytes, growing the array
 * geometrically but never past `limit` elements (0: no limit). Returns 0,
 * or CONC_ENOMEM with the store unchanged. */
int conc__qstore_reserve(struct conc__qstore *s, size_t elem, size_t limit);

/* Halves an array that holds less than a quarter of its (large) capacity,
 * so memory taken by a burst returns as the queue drains. A failure to
 * reallocate keeps the larger array. */
void conc__qstore_shrink(struct conc__qstore *s, size_t elem);

/* Whether an array of `cap` elements is oversized for `len` of them. */
int conc__qstore_oversized(size_t cap, size_t len);

/* Adds `e` to the heap in `s`, which has room for it. */
void conc__qheap_push(struct conc__qstore *s, const struct conc__qentry *e);

/* Removes the heap's least entry (lowest priority, then oldest) into *e.
 * The heap is not empty. */
void conc__qheap_pop(struct conc__qstore *s, struct conc__qentry *e);

#endif
