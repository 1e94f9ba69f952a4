/* The lock word: the mutual-exclusion algorithm under Lock, RLock and every
 * internal lock of conc (queues, thread registry).
 *
 * Design. One 32-bit word: 0 free, 1 locked, 2 locked and a waiter may be
 * asleep (Drepper, "Futexes Are Tricky", mutex 2). Acquire is one CAS on
 * the fast path. When it fails, the caller spins reading the word for a
 * short while, because on a multicore machine the holder usually releases
 * within a few hundred cycles and a futex sleep/wake round trip costs tens
 * of microseconds. Only then does it mark the word 2 and sleep. Release is
 * one exchange; it makes a system call only if the word was 2.
 *
 * A waiter that wakes swaps in 2 rather than 1, since it cannot know whether
 * others still sleep; the cost is at most one needless wake call.
 *
 * The lock is not fair: a releasing thread may re-acquire before a woken
 * waiter runs. That is what makes contended throughput high, as in glibc. */
#ifndef CONC_CORE_LOCKWORD_H
#define CONC_CORE_LOCKWORD_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/internal.h"
#include "unix/futex.h"

typedef _Atomic uint32_t conc__lockword;

/* Slow path of conc__lockword_acquire. Returns 0 or CONC_ETIMEDOUT. */
int conc__lockword_acquire_slow(conc__lockword *w, int64_t deadline,
                                int shared);

static inline int
conc__lockword_try(conc__lockword *w)
{
    uint32_t expected = 0;
    return atomic_compare_exchange_strong_explicit(
        w, &expected, 1, memory_order_acquire, memory_order_relaxed);
}

/* Acquires `w` by the absolute `deadline`. Returns 0 or CONC_ETIMEDOUT. */
static inline int
conc__lockword_acquire(conc__lockword *w, int64_t deadline, int shared)
{
    if (CONC__LIKELY(conc__lockword_try(w)))
        return 0;
    return conc__lockword_acquire_slow(w, deadline, shared);
}

/* Releases `w`. Returns 0, or CONC_ENOTLOCKED if it was free. */
static inline int
conc__lockword_release(conc__lockword *w, int shared)
{
    uint32_t prev = atomic_exchange_explicit(w, 0, memory_order_release);
    if (CONC__UNLIKELY(prev != 1)) {
        if (prev == 0)
            return CONC_ENOTLOCKED;
        conc__futex_wake(w, 1, shared);
    }
    return 0;
}

static inline int
conc__lockword_locked(const conc__lockword *w)
{
    return atomic_load_explicit((conc__lockword *)w, memory_order_relaxed) !=
           0;
}

#endif
