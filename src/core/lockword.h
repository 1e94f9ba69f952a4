/* The lock word: the mutual-exclusion algorithm under Lock, RLock and every
 * internal lock of conc (queues, thread registry, the arena).
 *
 * Design. One 64-bit word: the low half, `locked`, is 0 or 1 and is the
 * futex word; the high half, `waiters`, counts threads that may sleep on
 * it. Acquire is one CAS of the whole word from 0 to 1. When that fails the
 * caller spins for a short while with exponential backoff, by the policy
 * of core/wait.h (the holder usually releases within
 * a few hundred cycles, while a futex sleep and wake costs microseconds;
 * backing off keeps the spinner from stealing the cache line from the
 * holder on every iteration). Only then does it
 * add itself to `waiters` and sleep while `locked` is 1; when it finally
 * takes the lock, one CAS sets `locked` and removes it from `waiters`.
 *
 * Release is one atomic AND that clears `locked` and returns the old word,
 * so the releaser learns whether anyone sleeps from the same instruction
 * that hands the lock over, and never reads the lock's memory afterwards.
 * That matters: the next owner may free the lock as soon as it has it (the
 * classic "last user frees" pattern, which POSIX allows for mutexes), and
 * only the futex wake, a system call on the address that tolerates a freed
 * object, follows the handover.
 *
 * While the process has a single thread (glibc's __libc_single_threaded,
 * which turns false before a second thread starts and stays false), no
 * other thread can observe a private lock, so acquire and release use
 * plain loads and stores, as glibc's own mutex does.
 *
 * The lock is not fair: a releasing thread may re-acquire before a woken
 * waiter runs. That is what makes contended throughput high, as in glibc. */
#ifndef CONC_CORE_LOCKWORD_H
#define CONC_CORE_LOCKWORD_H

#include <stdatomic.h>
#include <stdint.h>

#include "conc_config.h"
#include "core/internal.h"
#include "unix/futex.h"

#ifdef HAVE_LIBC_SINGLE_THREADED
#include <sys/single_threaded.h>
#define CONC__SINGLE_THREADED() (__libc_single_threaded != 0)
#else
#define CONC__SINGLE_THREADED() 0
#endif

/* `locked` must be the low half of `all` for the futex to see it. */
typedef union conc__lockword {
    struct {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        _Atomic uint32_t locked;  /* 0 free, 1 held; the futex word */
        _Atomic uint32_t waiters; /* threads counted for sleeping */
#else
        _Atomic uint32_t waiters;
        _Atomic uint32_t locked;
#endif
    };
    _Atomic uint64_t all;
} conc__lockword;

#define CONC__LOCKWORD_HELD   ((uint64_t)1)
#define CONC__LOCKWORD_WAITER ((uint64_t)1 << 32)

/* Slow path of conc__lockword_acquire. Returns 0 or CONC_ETIMEDOUT. */
int conc__lockword_acquire_slow(conc__lockword *w, int64_t deadline,
                                int shared);

/* Makes `w` a free lock with no waiters (in a forked child, say). */
static inline void
conc__lockword_reset(conc__lockword *w)
{
    atomic_store_explicit(&w->all, 0, memory_order_relaxed);
}

static inline int
conc__lockword_try(conc__lockword *w)
{
    uint64_t v = atomic_load_explicit(&w->all, memory_order_relaxed);
    while (!(v & CONC__LOCKWORD_HELD)) {
        if (atomic_compare_exchange_weak_explicit(
                &w->all, &v, v | CONC__LOCKWORD_HELD, memory_order_acquire,
                memory_order_relaxed))
            return 1;
    }
    return 0;
}

/* The fast path: 1 if the lock was taken without waiting. */
static inline int
conc__lockword_try_fast(conc__lockword *w, int shared)
{
    if (!shared && CONC__SINGLE_THREADED()) {
        if (atomic_load_explicit(&w->locked, memory_order_relaxed) != 0)
            return 0;
        atomic_store_explicit(&w->locked, 1, memory_order_relaxed);
        return 1;
    }
    uint64_t expected = 0;
    return atomic_compare_exchange_strong_explicit(
               &w->all, &expected, CONC__LOCKWORD_HELD, memory_order_acquire,
               memory_order_relaxed) ||
           conc__lockword_try(w);
}

/* Acquires `w` by the absolute `deadline`. Returns 0 or CONC_ETIMEDOUT. */
static inline int
conc__lockword_acquire(conc__lockword *w, int64_t deadline, int shared)
{
    if (CONC__LIKELY(conc__lockword_try_fast(w, shared)))
        return 0;
    return conc__lockword_acquire_slow(w, deadline, shared);
}

/* Releases `w`. Returns 0, or CONC_ENOTLOCKED if it was free. After the
 * handover it touches only the futex: the next owner may free the lock. */
static inline int
conc__lockword_release(conc__lockword *w, int shared)
{
    if (!shared && CONC__SINGLE_THREADED()) {
        uint64_t v = atomic_load_explicit(&w->all, memory_order_relaxed);
        if (!(v & CONC__LOCKWORD_HELD))
            return CONC_ENOTLOCKED;
        atomic_store_explicit(&w->locked, 0, memory_order_relaxed);
        /* No other thread exists, but a coroutine of this one may wait. */
        if (CONC__UNLIKELY(v >= CONC__LOCKWORD_WAITER))
            conc__futex_wake(&w->locked, 1, 0);
        return 0;
    }
    uint64_t old = atomic_fetch_and_explicit(&w->all, ~CONC__LOCKWORD_HELD,
                                             memory_order_release);
    if (CONC__UNLIKELY(!(old & CONC__LOCKWORD_HELD)))
        return CONC_ENOTLOCKED;
    if (CONC__UNLIKELY(old >= CONC__LOCKWORD_WAITER))
        conc__futex_wake(&w->locked, 1, shared);
    return 0;
}

static inline int
conc__lockword_locked(const conc__lockword *w)
{
    return atomic_load_explicit(&((conc__lockword *)w)->locked,
                                memory_order_relaxed) != 0;
}

#endif
