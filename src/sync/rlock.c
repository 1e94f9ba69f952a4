/* RLock (threading.RLock): the lock word plus an owner and a count.
 *
 * The owner re-enters by bumping the count, with no atomic read-modify-
 * write at all; a first acquisition is the lock word's single CAS. The
 * owner is the kernel thread id, so the same code serves threads of one
 * process and threads of processes sharing the lock through an arena. A
 * thread compares `owner` with its own id without the lock: the only
 * thread that ever stores that id there is itself, so a stale read can
 * never make it believe it owns a lock it does not. */
#include <math.h>

#include "sync/sync_internal.h"

int
conc_rlock_new(const conc_sync_opts *opts, conc_rlock **out)
{
    conc_arena *arena = opts ? opts->arena : NULL;
    conc_rlock *r = conc__sync_alloc(arena, sizeof *r);
    if (!r)
        return CONC_ENOMEM;
    r->shared = arena != NULL;
    r->arena = arena;
    *out = r;
    return 0;
}

void
conc_rlock_free(conc_rlock *rlock)
{
    if (rlock)
        conc__sync_dealloc(rlock->arena, rlock);
}

static inline void
take(conc_rlock *r, uint32_t me, uint32_t count)
{
    atomic_store_explicit(&r->owner, me, memory_order_relaxed);
    r->count = count;
}

/* Kept out of line so that the fast path needs no stack frame. */
static __attribute__((noinline)) int
acquire_slow(conc_rlock *r, uint32_t me, double timeout)
{
    if (atomic_load_explicit(&r->owner, memory_order_relaxed) == me) {
        if (r->count == UINT32_MAX)
            return CONC_EOVERFLOW;
        r->count++;
        return 0;
    }
    int64_t deadline;
    int e = conc__deadline(timeout, &deadline);
    if (e == 0)
        e = conc__lockword_acquire_slow(&r->word, deadline, (int)r->shared);
    if (e == 0)
        take(r, me, 1);
    return e;
}

int
conc_rlock_acquire(conc_rlock *rlock, double timeout)
{
    if (CONC__UNLIKELY(isnan(timeout)))
        return CONC_EINVAL;
    uint32_t me = conc__tid();
    if (atomic_load_explicit(&rlock->owner, memory_order_relaxed) != me &&
        CONC__LIKELY(conc__lockword_try_fast(&rlock->word, (int)rlock->shared))) {
        take(rlock, me, 1);
        return 0;
    }
    return acquire_slow(rlock, me, timeout);
}

int
conc_rlock_release(conc_rlock *rlock)
{
    if (CONC__UNLIKELY(!conc__rlock_owned(rlock)))
        return CONC_ENOTOWNER;
    if (--rlock->count == 0) {
        atomic_store_explicit(&rlock->owner, 0, memory_order_relaxed);
        conc__lockword_release(&rlock->word, (int)rlock->shared);
    }
    return 0;
}

int
conc_rlock_is_owned(const conc_rlock *rlock)
{
    return conc__rlock_owned(rlock);
}

uint32_t
conc__rlock_release_save(conc_rlock *r)
{
    uint32_t count = r->count;
    r->count = 0;
    atomic_store_explicit(&r->owner, 0, memory_order_relaxed);
    conc__lockword_release(&r->word, (int)r->shared);
    return count;
}

void
conc__rlock_acquire_restore(conc_rlock *r, uint32_t count)
{
    conc__lockword_acquire(&r->word, CONC__FOREVER, (int)r->shared);
    take(r, conc__tid(), count);
}
