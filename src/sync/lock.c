/* Lock (threading.Lock) on the lock word, and the allocation helper that
 * every sync object uses. */
#include <math.h>

#include "sync/sync_internal.h"

void *
conc__sync_alloc(conc_arena *arena, size_t size)
{
    if (!arena)
        return conc__calloc(1, size);
    void *p;
    return conc_arena_alloc(arena, size, &p) == 0 ? p : NULL;
}

void
conc__sync_dealloc(conc_arena *arena, void *p)
{
    if (arena)
        conc_arena_dealloc(arena, p);
    else
        conc__free(p);
}

int
conc_lock_new(const conc_sync_opts *opts, conc_lock **out)
{
    conc_arena *arena = opts ? opts->arena : NULL;
    conc_lock *l = conc__sync_alloc(arena, sizeof *l);
    if (!l)
        return CONC_ENOMEM;
    l->shared = arena != NULL;
    l->arena = arena;
    *out = l;
    return 0;
}

void
conc_lock_free(conc_lock *lock)
{
    if (lock)
        conc__sync_dealloc(lock->arena, lock);
}

int
conc_lock_acquire(conc_lock *lock, double timeout)
{
    /* NaN is refused even when the lock is free, so a bad timeout never
     * goes unnoticed; the test costs one compare, no memory access. */
    if (CONC__UNLIKELY(isnan(timeout)))
        return CONC_EINVAL;
    if (CONC__LIKELY(conc__lockword_try_fast(&lock->word, (int)lock->shared)))
        return 0;
    int64_t deadline;
    int r = conc__deadline(timeout, &deadline);
    if (r)
        return r;
    return conc__lockword_acquire_slow(&lock->word, deadline, lock->shared);
}

int
conc_lock_release(conc_lock *lock)
{
    return conc__lockword_release(&lock->word, lock->shared);
}

int
conc_lock_locked(const conc_lock *lock)
{
    return conc__lockword_locked(&lock->word);
}
