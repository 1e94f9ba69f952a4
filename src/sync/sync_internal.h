/* Internal to the sync module: object headers shared by its files, how an
 * object finds its memory (malloc, or a shared arena), and the RLock hooks
 * that Condition uses to release a lock fully while it waits.
 *
 * Every object works the same way private or process-shared: its words live
 * in the object, the object lives on the heap or in an arena, and `shared`
 * only selects the kind of futex (private futexes are cheaper for the
 * kernel to hash, shared ones work across processes). */
#ifndef CONC_SYNC_INTERNAL_H
#define CONC_SYNC_INTERNAL_H

#include <stdatomic.h>

#include "conc/sync.h"
#include "core/internal.h"
#include "core/lockword.h"
#include "unix/futex.h"
#include "unix/tid.h"

/* Read-only spins before a sleep: a few microseconds, long enough for the
 * other side of a short hand-off, short next to a futex round trip. */
#define CONC__SYNC_SPIN 100

/* Allocates `size` zeroed bytes from `arena`, or from the heap when it is
 * NULL. Returns NULL when out of memory. */
void *conc__sync_alloc(conc_arena *arena, size_t size);

/* Frees memory from conc__sync_alloc. */
void conc__sync_dealloc(conc_arena *arena, void *p);

struct conc_lock {
    conc__lockword word;
    uint32_t shared; /* 1 when in an arena: process-shared futex */
    conc_arena *arena;
};

/* The RLock: the lock word, plus who holds it and how many times. `owner`
 * is the holder's kernel thread id (unique across processes), 0 when free.
 * Only the holder writes owner and count; another thread may read owner
 * at any time, and sees its own id there only if it holds the lock. */
struct conc_rlock {
    conc__lockword word;
    uint32_t shared;
    _Atomic uint32_t owner;
    uint32_t count; /* guarded by word: only the owner touches it */
    conc_arena *arena;
};

/* Whether the calling thread holds `r`. */
static inline int
conc__rlock_owned(const conc_rlock *r)
{
    return atomic_load_explicit((_Atomic uint32_t *)&r->owner,
                                memory_order_relaxed) == conc__tid();
}

/* Releases `r`, which the caller owns, however deep its recursion, and
 * returns the count to hand back to conc__rlock_acquire_restore. */
uint32_t conc__rlock_release_save(conc_rlock *r);

/* Acquires `r` without limit and sets its recursion count to `count`. */
void conc__rlock_acquire_restore(conc_rlock *r, uint32_t count);

/* The number of threads queued in conc_cond_wait on `c`. The caller holds
 * the condition's lock. For tests and diagnostics. */
unsigned conc__cond_waiters(const conc_cond *c);

/* Whether a thread may be asleep in conc_event_wait on `ev` (it announced
 * itself and the event has not been set since). For tests. */
int conc__event_sleepers(const conc_event *ev);

#endif
