/* Internal to the sync module: object headers shared by its files, how an
 * object finds its memory (malloc, or a shared arena), and the RLock hooks
 * that Condition uses to release a lock fully while it waits.
 *
 * Every object works the same way private or process-shared: its words live
 * in the object, the object lives on the heap or in an arena, and `shared`
 * only selects the kind of futex (private futexes are cheaper for the
 * kernel to hash, shared ones work across processes). The exceptions are
 * the process-shared Lock and RLock: they are robust (a dead owner is
 * reported to the next acquirer), which needs a robust pthread mutex placed
 * right after the object in its arena block (see robust.c). */
#ifndef CONC_SYNC_INTERNAL_H
#define CONC_SYNC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "conc/sync.h"
#include "core/internal.h"
#include "core/lockword.h"
#include "core/pmutex.h"
#include "core/wait.h"
#include "unix/futex.h"
#include "unix/tid.h"

/* Allocates `size` zeroed bytes from `arena`, or from the heap when it is
 * NULL. Returns NULL when out of memory. */
void *conc__sync_alloc(conc_arena *arena, size_t size);

/* Frees memory from conc__sync_alloc. */
void conc__sync_dealloc(conc_arena *arena, void *p);

/* A private Lock is the lock word alone. A process-shared one is followed
 * in its arena block by a robust mutex (struct conc__shared_lock), which is
 * the real lock; its `word.locked` then holds the owner's thread id (0 when
 * free), written only by the owner, so that conc_lock_locked and waiters
 * spinning before they sleep can read it. */
struct conc_lock {
    conc__lockword word;
    uint32_t shared; /* 1 when in an arena: process-shared, robust */
    conc_arena *arena;
};

struct conc__shared_lock {
    struct conc_lock lock;
    pthread_mutex_t mutex; /* robust, process-shared, normal type */
};

/* The RLock: the lock word, plus who holds it and how many times. `owner`
 * is the holder's kernel thread id (unique across processes), 0 when free.
 * Only the holder writes owner and count; another thread may read owner
 * at any time, and sees its own id there only if it holds the lock. */
struct conc_rlock {
    conc__lockword word; /* unused when shared: the mutex below locks */
    uint32_t shared;
    _Atomic uint32_t owner;
    uint32_t count; /* guarded by word: only the owner touches it */
    conc_arena *arena;
};

/* A process-shared RLock: the object, then its robust mutex, of the
 * error-checking type so that a re-entry asks the mutex (not the owner
 * field, which may still name a dead thread whose id was reused) whether
 * the caller holds it. */
struct conc__shared_rlock {
    struct conc_rlock rlock;
    pthread_mutex_t mutex; /* robust, process-shared, error-checking */
};

/* Whether the calling thread holds the robust mutex `m`, given the owner
 * id conc keeps beside it (`hint`): a dead owner's id, reused by the
 * caller, does not make it the owner (robust.c). */
int conc__robust_owned(pthread_mutex_t *m, uint32_t hint);

/* Whether the calling thread holds `r`. */
static inline int
conc__rlock_owned(const conc_rlock *r)
{
    uint32_t owner = atomic_load_explicit((_Atomic uint32_t *)&r->owner,
                                          memory_order_relaxed);
    if (CONC__UNLIKELY(r->shared))
        return conc__robust_owned(&((struct conc__shared_rlock *)r)->mutex,
                                  owner);
    return owner == conc__tid();
}

/* Releases `r`, which the caller owns, however deep its recursion, and
 * returns the count to hand back to conc__rlock_acquire_restore. */
uint32_t conc__rlock_release_save(conc_rlock *r);

/* Acquires `r` without limit and sets its recursion count to `count`.
 * Returns 0; for a process-shared RLock also CONC_EOWNERDEAD (acquired:
 * its previous owner died) or CONC_ENOTRECOVERABLE (not acquired). */
int conc__rlock_acquire_restore(conc_rlock *r, uint32_t count);

/* Whether the caller may act as the holder of `l` (Condition's check): a
 * private Lock has no owner, so it must only be locked; a process-shared
 * one must be held by the calling thread. */
static inline int
conc__lock_held(const conc_lock *l)
{
    uint32_t v = atomic_load_explicit((_Atomic uint32_t *)&l->word.locked,
                                      memory_order_relaxed);
    return l->shared
               ? conc__robust_owned(&((struct conc__shared_lock *)l)->mutex, v)
               : v != 0;
}

/* Acquires `l` without limit (Condition taking its lock back). Returns 0;
 * for a process-shared Lock also CONC_EOWNERDEAD (acquired) or
 * CONC_ENOTRECOVERABLE (not acquired). */
int conc__lock_relock(conc_lock *l);

/* ---- Robust mutexes (robust.c) -----------------------------------------
 * The lock under process-shared Locks and RLocks. */

/* conc__robust_init (core/pmutex.h) sets one up. */
void conc__robust_destroy(pthread_mutex_t *m);

/* Tries `m` once: 0, CONC_EOWNERDEAD, CONC_ENOTRECOVERABLE, CONC_EDEADLK
 * as below, or CONC_ETIMEDOUT if another thread holds it. */
int conc__robust_try(pthread_mutex_t *m);

/* Acquires `m` by the absolute `deadline`, spinning first while `*held`
 * (the caller's owner word) is nonzero. Returns 0 or CONC_EOWNERDEAD (held
 * in both cases), CONC_ENOTRECOVERABLE, CONC_ETIMEDOUT, or CONC_EDEADLK for
 * an error-checking mutex the caller already holds. */
int conc__robust_acquire(pthread_mutex_t *m, const _Atomic uint32_t *held,
                         int64_t deadline);

/* Releases `m`. Returns 0, or CONC_ENOTOWNER if the caller does not hold
 * it. Releasing it while inconsistent makes it unrecoverable. */
int conc__robust_release(pthread_mutex_t *m);

/* Marks `m`, acquired with CONC_EOWNERDEAD, consistent. Returns 0, or
 * CONC_EINVAL if it is not in that state. */
int conc__robust_make_consistent(pthread_mutex_t *m);

/* The number of threads queued in conc_cond_wait on `c`. The caller holds
 * the condition's lock. For tests and diagnostics. */
unsigned conc__cond_waiters(const conc_cond *c);

/* Whether a thread may be asleep in conc_event_wait on `ev` (it announced
 * itself and the event has not been set since). For tests. */
int conc__event_sleepers(const conc_event *ev);

#endif
