/* The lock word: the mutual-exclusion algorithm under Lock, RLock and every
 * internal lock of conc (queues, thread registry, the arena).
 *
 * Design. Two 32-bit words: `locked` (0 or 1, the futex word) and `waiters`
 * (how many threads may be asleep on it). Acquire is one CAS of `locked`
 * from 0 to 1. When that fails the caller spins for a short while with
 * exponential backoff (the holder usually releases within a few hundred
 * cycles, while a futex sleep and wake costs tens of microseconds; backing
 * off keeps the spinner from stealing the cache line from the holder on
 * every iteration). Only then does it count itself in `waiters` and sleep.
 *
 * Release must wake a sleeper, so it stores 0 to `locked` and then reads
 * `waiters`. This is Dekker's pattern: the releaser writes `locked` then
 * reads `waiters`; the waiter writes `waiters` then reads `locked`; without
 * a full fence on both sides each could miss the other's write and the
 * waiter would sleep forever. Process-private locks use an asymmetric fence
 * (membarrier(2), as in userspace RCU): the waiter, once per sleep episode,
 * forces a full barrier on every running thread of the process, so the
 * releaser's fast path needs none: release is a plain store plus a load,
 * and a lock/unlock pair costs one atomic instruction. Process-shared locks
 * (membarrier reaches only this process) and processes where membarrier is
 * unavailable use a full-fence exchange instead.
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

typedef struct conc__lockword {
    _Atomic uint32_t locked;  /* 0 free, 1 held; the futex word */
    _Atomic uint32_t waiters; /* threads counted for sleeping */
} conc__lockword;

#define CONC__LOCKWORD_INIT {0, 0}

/* Set once at load time: whether private releases may skip the fence. */
extern int conc__lockword_asym;

/* Slow path of conc__lockword_acquire. Returns 0 or CONC_ETIMEDOUT. */
int conc__lockword_acquire_slow(conc__lockword *w, int64_t deadline,
                                int shared);

/* Release with a full fence; used for shared locks. */
int conc__lockword_release_fenced(conc__lockword *w, int shared);

static inline int
conc__lockword_try(conc__lockword *w)
{
    uint32_t expected = 0;
    return atomic_compare_exchange_strong_explicit(
        &w->locked, &expected, 1, memory_order_seq_cst, memory_order_relaxed);
}

/* Acquires `w` by the absolute `deadline`. Returns 0 or CONC_ETIMEDOUT. */
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
    return conc__lockword_try(w);
}

static inline int
conc__lockword_acquire(conc__lockword *w, int64_t deadline, int shared)
{
    if (CONC__LIKELY(conc__lockword_try_fast(w, shared)))
        return 0;
    return conc__lockword_acquire_slow(w, deadline, shared);
}

/* Releases `w`. Returns 0, or CONC_ENOTLOCKED if it was free. Two threads
 * racing to release the same held lock may both succeed (misuse that is
 * detected only when the releases do not overlap). */
static inline int
conc__lockword_release(conc__lockword *w, int shared)
{
    if (CONC__LIKELY(!shared && conc__lockword_asym)) {
        if (CONC__UNLIKELY(
                atomic_load_explicit(&w->locked, memory_order_relaxed) == 0))
            return CONC_ENOTLOCKED;
        atomic_store_explicit(&w->locked, 0, memory_order_release);
        if (CONC__SINGLE_THREADED())
            return 0; /* no thread can be waiting */
        /* The compiler must not hoist the load above the store; the CPU
         * ordering is provided by the waiter's membarrier. */
        atomic_signal_fence(memory_order_seq_cst);
        if (CONC__UNLIKELY(
                atomic_load_explicit(&w->waiters, memory_order_relaxed)))
            conc__futex_wake(&w->locked, 1, 0);
        return 0;
    }
    return conc__lockword_release_fenced(w, shared);
}

static inline int
conc__lockword_locked(const conc__lockword *w)
{
    return atomic_load_explicit(&((conc__lockword *)w)->locked,
                                memory_order_relaxed) != 0;
}

#endif
