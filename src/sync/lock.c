/* Lock (threading.Lock) on the lock word, and the allocation helper that
 * every sync object uses.
 *
 * A private Lock is the lock word alone, with the lock word's fast paths.
 * A process-shared Lock is robust (robust.c): it is held through its
 * robust mutex, and its lock word's `locked` field names the owning
 * thread, which only that thread writes. Acquire and release test `shared`
 * first and then take the private path with `shared` known to be 0, so a
 * private lock pays one predictable branch, as it did before to pick its
 * futex kind. */
#include <math.h>

#include "sync/sync_internal.h"
#include "unix/coro.h"

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

static pthread_mutex_t *
mutex_of(conc_lock *l)
{
    return &((struct conc__shared_lock *)l)->mutex;
}

int
conc_lock_new(const conc_sync_opts *opts, conc_lock **out)
{
    if (!out)
        return CONC_EINVAL;
    conc_arena *arena = opts ? opts->arena : NULL;
    size_t size = arena ? sizeof(struct conc__shared_lock) : sizeof(conc_lock);
    conc_lock *l = conc__sync_alloc(arena, size);
    if (!l)
        return CONC_ENOMEM;
    l->shared = arena != NULL;
    l->arena = arena;
    if (arena) {
        int e = conc__robust_init(mutex_of(l), 0);
        if (e) {
            conc__sync_dealloc(arena, l);
            return e;
        }
    }
    *out = l;
    return 0;
}

void
conc_lock_free(conc_lock *lock)
{
    if (!lock)
        return;
    if (lock->shared)
        conc__robust_destroy(mutex_of(lock));
    conc__sync_dealloc(lock->arena, lock);
}

/* Acquires a process-shared lock; on success (also when its previous owner
 * died) records the caller as the owner. */
static int
shared_acquire(conc_lock *l, int64_t deadline)
{
    int r = conc__robust_acquire(mutex_of(l), &l->word.locked, deadline);
    if (r == 0 || r == CONC_EOWNERDEAD)
        atomic_store_explicit(&l->word.locked, conc__tid(),
                              memory_order_relaxed);
    return r;
}

/* One try first: an uncontended acquire needs no deadline. */
static __attribute__((noinline)) int
shared_acquire_timeout(conc_lock *l, double timeout)
{
    int r = conc__robust_try(mutex_of(l));
    if (r == CONC_ETIMEDOUT && timeout != 0) {
        int64_t deadline;
        r = conc__deadline(timeout, &deadline);
        if (r == 0)
            return shared_acquire(l, deadline);
    }
    if (r == 0 || r == CONC_EOWNERDEAD)
        atomic_store_explicit(&l->word.locked, conc__tid(),
                              memory_order_relaxed);
    return r;
}

static __attribute__((noinline)) int
shared_release(conc_lock *l)
{
    uint32_t owner =
        atomic_load_explicit(&l->word.locked, memory_order_relaxed);
    if (owner == 0)
        return CONC_ENOTLOCKED;
    if (!conc__robust_owned(mutex_of(l), owner))
        return CONC_ENOTOWNER;
    atomic_store_explicit(&l->word.locked, 0, memory_order_relaxed);
    return conc__robust_release(mutex_of(l));
}

/* The wait, a cancellation point in a coroutine; out of line, so that the
 * fast path needs no stack frame. */
static __attribute__((noinline)) int
acquire_slow(conc_lock *lock, int64_t deadline)
{
    CONC__CANCEL_POINT(conc__lockword_acquire_slow(&lock->word, deadline, 0));
}

int
conc_lock_acquire(conc_lock *lock, double timeout)
{
    if (!lock)
        return CONC_EINVAL;
    /* NaN is refused even when the lock is free, so a bad timeout never
     * goes unnoticed; the test costs one compare, no memory access. */
    if (CONC__UNLIKELY(isnan(timeout)))
        return CONC_EINVAL;
    if (CONC__UNLIKELY(lock->shared))
        return shared_acquire_timeout(lock, timeout);
    if (CONC__LIKELY(conc__lockword_try_fast(&lock->word, 0)))
        return 0;
    int64_t deadline;
    int r = conc__deadline(timeout, &deadline);
    if (r)
        return r;
    return acquire_slow(lock, deadline);
}

int
conc_lock_release(conc_lock *lock)
{
    if (!lock)
        return CONC_EINVAL;
    if (CONC__UNLIKELY(lock->shared))
        return shared_release(lock);
    return conc__lockword_release(&lock->word, 0);
}

int
conc__lock_relock(conc_lock *l)
{
    if (l->shared)
        return shared_acquire(l, CONC__FOREVER);
    conc__lockword_acquire(&l->word, CONC__FOREVER, 0);
    return 0;
}

int
conc_lock_make_consistent(conc_lock *lock)
{
    if (!lock)
        return CONC_EINVAL;
    if (!lock->shared)
        return CONC_EINVAL;
    if (!conc__robust_owned(
            mutex_of(lock),
            atomic_load_explicit(&lock->word.locked, memory_order_relaxed)))
        return CONC_ENOTOWNER;
    return conc__robust_make_consistent(mutex_of(lock));
}

int
conc_lock_locked(const conc_lock *lock)
{
    if (!lock)
        return CONC_EINVAL;
    return conc__lockword_locked(&lock->word);
}
