/* The robust mutex under every process-shared Lock and RLock.
 *
 * Design. A process that dies while it holds a process-shared lock must not
 * leave the others waiting for ever: the next process to acquire the lock
 * is told (CONC_EOWNERDEAD), holds it, may repair the state the lock
 * guards, and then marks the lock consistent again. Only the kernel learns
 * reliably that a thread died, and it tells userspace through the robust
 * futex list: each thread registers one list head with set_robust_list(2),
 * links into it every robust futex it holds (the futex word holding the
 * owner's thread id), and when the thread exits, however it exits, the
 * kernel walks the list, sets FUTEX_OWNER_DIED in each word the thread
 * still owns and wakes a waiter. glibc owns that list head in every thread
 * (a thread has exactly one), and links into it only pthread mutexes
 * created PTHREAD_MUTEX_ROBUST. So a shared conc lock embeds such a mutex
 * (also PTHREAD_PROCESS_SHARED) right after its own fields in the arena,
 * and the kernel and glibc do the bookkeeping, with pthread's semantics:
 *
 *   - the acquirer that finds the owner dead gets EOWNERDEAD and holds the
 *     mutex; pthread_mutex_consistent makes it normal again;
 *   - a mutex released while still inconsistent becomes unusable, and every
 *     later acquirer gets ENOTRECOVERABLE at once;
 *   - waiters asleep when the owner dies are woken by the kernel, and one
 *     of them gets EOWNERDEAD.
 *
 * The other designs considered and refused: our own futex word with the
 * owner's tid, on glibc's list, is impossible (the list head is glibc's and
 * private); a waiter that asks whether the owner's tid still lives (kill,
 * pidfd) cannot tell a dead thread of a live process, and the process
 * queue's answer to that (below) learns of a death only when a sleep slice
 * ends, where the kernel's list is exact and immediate.
 *
 * The rule on dead owners, the same here and in mpqueue/sidelock.c: a
 * thread id alone never decides who owns a lock, because the system gives
 * a dead thread's id to a new thread. An owner is judged dead only on
 * evidence a reused id cannot fake: here the kernel's robust list, which
 * clears the owner's id from the mutex's word when it dies; in the side
 * locks, which are not pthread mutexes, the owner's id together with its
 * thread's start time, looked up in /proc. The owner id that conc keeps
 * beside the mutex (conc_lock's `word.locked`, conc_rlock's `owner`) is a
 * hint for spinning and for quick answers, never trusted alone: a thread
 * that finds its own id there asks the mutex (conc__robust_owned).
 *
 * Speed. glibc's robust mutexes never spin: a contended acquirer goes to
 * sleep at once, and each hand-off then costs a futex wake and wait. Here
 * the acquirer first tries once, then spins by the policy of core/wait.h,
 * reading a hint word the caller keeps (nonzero while a thread holds the
 * lock) so that the spin does not pull the mutex's cache line away from
 * its holder.
 *
 * Sleeping. Every blocking wait in conc goes through the platform's futex
 * wait, which coroutines will make suspending; pthread_mutex_lock would
 * sleep inside glibc. So the acquirer sleeps on the mutex's futex word
 * itself, with glibc's protocol for it (the word is the owner's id, with
 * FUTEX_WAITERS set by whoever sleeps, and FUTEX_OWNER_DIED set by the
 * kernel): it sets FUTEX_WAITERS, sleeps while the word is unchanged, and
 * tries again. The unlock, glibc's or the kernel's at the owner's death,
 * wakes one sleeper when it finds FUTEX_WAITERS. One that takes the mutex
 * after a sleep sets FUTEX_WAITERS again, as glibc's own lock does, since
 * others may still sleep and its unlock must wake one. Without glibc (whose
 * word layout this relies on) the sleep is pthread_mutex_clocklock's.
 *
 * The mutex is owned by a thread, so a process-shared lock must be released
 * by the thread that acquired it; that is the price of knowing who died. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <time.h>

#include "sync/sync_internal.h"

#if defined(__SANITIZE_THREAD__)
#define CONC__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONC__TSAN 1
#endif
#endif
#ifdef CONC__TSAN
/* ThreadSanitizer intercepts pthread_mutex_lock and _trylock but not
 * pthread_mutex_clocklock: tell it about the lock taken there. */
#include <sanitizer/tsan_interface.h>
#endif

void
conc__robust_destroy(pthread_mutex_t *m)
{
    /* A mutex whose owner died, or one left unrecoverable, is still
     * destroyed: it belongs to nobody alive. */
    pthread_mutex_destroy(m);
}

/* The conc code for a pthread result: EBUSY from a try is a timeout. */
static int
code(int e)
{
    return e == EBUSY ? CONC_ETIMEDOUT : -e;
}

#ifndef __GLIBC__
static int
timed_lock(pthread_mutex_t *m, int64_t deadline)
{
    if (deadline == CONC__FOREVER)
        return pthread_mutex_lock(m);
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000),
                          .tv_nsec = (long)(deadline % 1000000000)};
#ifdef CONC__TSAN
    __tsan_mutex_pre_lock(m, __tsan_mutex_try_lock);
#endif
    int e = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
#ifdef CONC__TSAN
    __tsan_mutex_post_lock(
        m,
        __tsan_mutex_try_lock |
            (e == 0 || e == EOWNERDEAD ? 0 : __tsan_mutex_try_lock_failed),
        0);
#endif
    return e;
}
#endif

/* pthread_mutex_trylock, working around a glibc bug (present in 2.36 and
 * later): a try that finds the mutex not recoverable returns
 * ENOTRECOVERABLE but leaves the mutex's futex word holding the caller's
 * id (its check `oldval == id` compares the value seen before its own
 * successful compare-and-swap, which was 0), so every later acquirer would
 * wait for ever instead of failing at once. The mutex is unusable anyway
 * and that word is on no thread's robust list, so this undoes it as glibc
 * meant to: clear the word if it still holds our id, and wake a waiter so
 * that it too takes the error path (which unlocks properly). */
static int
try_lock(pthread_mutex_t *m)
{
    int e = pthread_mutex_trylock(m);
#ifdef __GLIBC__
    if (CONC__UNLIKELY(e == ENOTRECOVERABLE)) {
        _Atomic uint32_t *w = (_Atomic uint32_t *)&m->__data.__lock;
        uint32_t v = atomic_load_explicit(w, memory_order_relaxed);
        while ((v & FUTEX_TID_MASK) == conc__tid()) {
            if (atomic_compare_exchange_weak_explicit(
                    w, &v, 0, memory_order_release, memory_order_relaxed)) {
                if (v & FUTEX_WAITERS)
                    conc__futex_wake(w, 1, 1);
                break;
            }
        }
    }
#endif
    return e;
}

/* Spins by the policy of core/wait.h while the lock is held, trying it
 * each time it looks free. Returns the last try's result: EBUSY if the
 * lock stayed busy throughout. */
static int
spin(pthread_mutex_t *m, const _Atomic uint32_t *held, int64_t deadline)
{
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, deadline);
    while (conc__spin_more(&sp)) {
        if (atomic_load_explicit(held, memory_order_relaxed) == 0) {
            int e = try_lock(m);
            if (e != EBUSY)
                return e;
        }
    }
    return EBUSY;
}

#ifdef __GLIBC__
static _Atomic uint32_t *
word_of(pthread_mutex_t *m)
{
    return (_Atomic uint32_t *)&m->__data.__lock;
}

/* Sleeps until the word of the busy mutex `m` changes, or the deadline.
 * Returns 0, or ETIMEDOUT. */
static int
sleep_busy(pthread_mutex_t *m, int64_t deadline)
{
    _Atomic uint32_t *w = word_of(m);
    uint32_t v = atomic_load_explicit(w, memory_order_relaxed);
    if ((v & FUTEX_TID_MASK) == 0)
        return 0; /* free, or its owner died: try again */
    if (!(v & FUTEX_WAITERS) && !atomic_compare_exchange_strong_explicit(
                                    w, &v, v | FUTEX_WAITERS,
                                    memory_order_relaxed, memory_order_relaxed))
        return 0; /* it changed: try again */
    return conc__futex_wait(w, v | FUTEX_WAITERS, deadline, 1) == -ETIMEDOUT
               ? ETIMEDOUT
               : 0;
}

/* Marks `m`, just taken after a sleep, as one others may sleep on. */
static void
keep_waiters(pthread_mutex_t *m)
{
    _Atomic uint32_t *w = word_of(m);
    uint32_t v = atomic_load_explicit(w, memory_order_relaxed);
    while (!(v & FUTEX_WAITERS) &&
           !atomic_compare_exchange_weak_explicit(w, &v, v | FUTEX_WAITERS,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* Acquires `m` by the deadline, sleeping through the platform's futex wait
 * between tries. Returns a pthread result, EBUSY at the deadline. */
static int
sleep_lock(pthread_mutex_t *m, int64_t deadline)
{
    for (;;) {
        int timed_out = sleep_busy(m, deadline) == ETIMEDOUT;
        int e = try_lock(m);
        if (e == 0 || e == EOWNERDEAD)
            keep_waiters(m);
        if (e != EBUSY || timed_out)
            return e;
    }
}
#endif

int
conc__robust_owned(pthread_mutex_t *m, uint32_t hint)
{
    uint32_t me = conc__tid();
    if (hint != me)
        return 0; /* only the owner itself writes its id there */
#ifdef __GLIBC__
    /* glibc stores the owner's id in the futex word when it takes the
     * mutex; the kernel replaces it with FUTEX_OWNER_DIED when the owner
     * dies. */
    _Atomic uint32_t *w = (_Atomic uint32_t *)&m->__data.__lock;
    return (atomic_load_explicit(w, memory_order_relaxed) & FUTEX_TID_MASK) ==
           me;
#else
    return 1; /* the hint is all there is */
#endif
}

int
conc__robust_try(pthread_mutex_t *m)
{
    return code(try_lock(m));
}

int
conc__robust_acquire(pthread_mutex_t *m, const _Atomic uint32_t *held,
                     int64_t deadline)
{
    int e = try_lock(m);
    if (e != EBUSY || deadline == CONC__POLL)
        return code(e);
    e = spin(m, held, deadline);
    if (e != EBUSY)
        return code(e);
#ifdef __GLIBC__
    return code(sleep_lock(m, deadline));
#else
    return code(timed_lock(m, deadline));
#endif
}

int
conc__robust_release(pthread_mutex_t *m)
{
    /* EPERM: the calling thread does not hold the mutex. */
    return pthread_mutex_unlock(m) == 0 ? 0 : CONC_ENOTOWNER;
}

int
conc__robust_make_consistent(pthread_mutex_t *m)
{
    /* EINVAL: the mutex is not in the owner-died state. */
    return pthread_mutex_consistent(m) == 0 ? 0 : CONC_EINVAL;
}
