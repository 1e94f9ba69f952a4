/* RLock (threading.RLock): the lock word plus an owner and a count.
 *
 * The owner re-enters by bumping the count, with no atomic read-modify-
 * write at all; a first acquisition is the lock word's single CAS. The
 * owner is the kernel thread id, so the same code serves threads of one
 * process and threads of processes sharing the lock through an arena. A
 * thread compares `owner` with its own id without the lock: the only
 * thread that ever stores that id there is itself, so a stale read can
 * never make it believe it owns a lock it does not.
 *
 * A process-shared RLock is robust (robust.c): its robust mutex, of the
 * error-checking type, replaces the lock word, and a re-entry is confirmed
 * by the mutex itself (a try that answers EDEADLK), because after a
 * process died holding the lock its owner field names a thread id that
 * the system may give to a new thread before anyone acquires the lock. */
#include <math.h>

#include "sync/sync_internal.h"
#include "unix/coro.h"

static pthread_mutex_t *
mutex_of(conc_rlock *r)
{
    return &((struct conc__shared_rlock *)r)->mutex;
}

int
conc_rlock_new(const conc_sync_opts *opts, conc_rlock **out)
{
    if (!out)
        return CONC_EINVAL;
    conc_arena *arena = opts ? opts->arena : NULL;
    size_t size =
        arena ? sizeof(struct conc__shared_rlock) : sizeof(conc_rlock);
    conc_rlock *r = conc__sync_alloc(arena, size);
    if (!r)
        return CONC_ENOMEM;
    r->shared = arena != NULL;
    r->arena = arena;
    if (arena) {
        int e = conc__robust_init(mutex_of(r), 1);
        if (e) {
            conc__sync_dealloc(arena, r);
            return e;
        }
    }
    *out = r;
    return 0;
}

void
conc_rlock_free(conc_rlock *rlock)
{
    if (!rlock)
        return;
    if (rlock->shared)
        conc__robust_destroy(mutex_of(rlock));
    conc__sync_dealloc(rlock->arena, rlock);
}

static inline void
take(conc_rlock *r, uint32_t me, uint32_t count)
{
    atomic_store_explicit(&r->owner, me, memory_order_relaxed);
    r->count = count;
}

/* Kept out of line so that the fast path needs no stack frame. */
static int
acquire_slow_body(conc_rlock *r, uint32_t me, double timeout)
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
        e = conc__lockword_acquire_slow(&r->word, deadline, 0);
    if (e == 0)
        take(r, me, 1);
    return e;
}

/* A process-shared RLock: the mutex decides between a first acquisition
 * (also one that finds the owner dead) and a re-entry. One try first: an
 * uncontended acquire needs no deadline. */
static __attribute__((noinline)) int
shared_acquire(conc_rlock *r, uint32_t me, double timeout)
{
    int e = conc__robust_try(mutex_of(r));
    if (e == CONC_ETIMEDOUT && timeout != 0) {
        int64_t deadline;
        e = conc__deadline(timeout, &deadline);
        if (e == 0)
            e = conc__robust_acquire(mutex_of(r), &r->owner, deadline);
    }
    if (e == CONC_EDEADLK) {
        if (r->count == UINT32_MAX)
            return CONC_EOVERFLOW;
        r->count++;
        return 0;
    }
    if (e == 0 || e == CONC_EOWNERDEAD)
        take(r, me, 1);
    return e;
}

/* The wait, a cancellation point in a coroutine; out of line, so that the
 * fast path needs no stack frame. */
static __attribute__((noinline)) int
acquire_slow(conc_rlock *r, uint32_t me, double timeout)
{
    CONC__CANCEL_POINT(acquire_slow_body(r, me, timeout));
}

int
conc_rlock_acquire(conc_rlock *rlock, double timeout)
{
    if (!rlock)
        return CONC_EINVAL;
    if (CONC__UNLIKELY(isnan(timeout)))
        return CONC_EINVAL;
    uint32_t me = conc__tid();
    if (CONC__UNLIKELY(rlock->shared))
        return shared_acquire(rlock, me, timeout);
    if (atomic_load_explicit(&rlock->owner, memory_order_relaxed) != me &&
        CONC__LIKELY(conc__lockword_try_fast(&rlock->word, 0))) {
        take(rlock, me, 1);
        return 0;
    }
    return acquire_slow(rlock, me, timeout);
}

/* Frees the lock itself; the owner field is already cleared. */
static int
unlock(conc_rlock *r)
{
    if (CONC__UNLIKELY(r->shared))
        return conc__robust_release(mutex_of(r));
    return conc__lockword_release(&r->word, 0);
}

int
conc_rlock_release(conc_rlock *rlock)
{
    if (!rlock)
        return CONC_EINVAL;
    if (CONC__UNLIKELY(!conc__rlock_owned(rlock)))
        return CONC_ENOTOWNER;
    if (--rlock->count == 0) {
        atomic_store_explicit(&rlock->owner, 0, memory_order_relaxed);
        return unlock(rlock);
    }
    return 0;
}

int
conc_rlock_is_owned(const conc_rlock *rlock)
{
    if (!rlock)
        return CONC_EINVAL;
    return conc__rlock_owned(rlock);
}

uint32_t
conc__rlock_release_save(conc_rlock *r)
{
    uint32_t count = r->count;
    r->count = 0;
    atomic_store_explicit(&r->owner, 0, memory_order_relaxed);
    unlock(r);
    return count;
}

int
conc__rlock_acquire_restore(conc_rlock *r, uint32_t count)
{
    int e = 0;
    if (r->shared)
        e = conc__robust_acquire(mutex_of(r), &r->owner, CONC__FOREVER);
    else
        conc__lockword_acquire(&r->word, CONC__FOREVER, 0);
    if (e == 0 || e == CONC_EOWNERDEAD)
        take(r, conc__tid(), count);
    return e;
}

int
conc_rlock_make_consistent(conc_rlock *rlock)
{
    if (!rlock)
        return CONC_EINVAL;
    if (!rlock->shared)
        return CONC_EINVAL;
    if (!conc__rlock_owned(rlock))
        return CONC_ENOTOWNER;
    return conc__robust_make_consistent(mutex_of(rlock));
}
