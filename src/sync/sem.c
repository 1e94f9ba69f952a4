/* Semaphore and BoundedSemaphore (threading.Semaphore, BoundedSemaphore).
 *
 * Design. Both share one core: a 64-bit word whose low half, `value`, is
 * the count and the futex word sleepers wait on, and whose high half,
 * `waiters`, counts registered sleepers. acquire is a CAS that decrements a
 * positive value. When the value is 0 the caller spins briefly (a release
 * often follows within microseconds), then registers in `waiters` and
 * sleeps while the value stays 0; it takes a unit and leaves `waiters` in
 * one CAS. release adds n with a CAS of the whole word (refusing to pass
 * INT32_MAX, or the ceiling of a bounded semaphore) and makes the wake
 * system call only when the word it replaced had waiters, so a semaphore
 * nobody sleeps on never enters the kernel.
 *
 * No wake-up is lost: waiter and releaser change the same word, so the
 * releaser's CAS either sees the registered waiter, or happened before the
 * registration, in which case the waiter sees the new value (and the kernel
 * re-checks the value before it puts the waiter to sleep).
 *
 * Nothing is read after the handover: the releaser copies the fields it
 * needs before its CAS, and after it only the futex wake (a system call
 * that tolerates a freed address) touches the semaphore. So the thread that
 * takes the last unit may free the semaphore at once, as POSIX allows for
 * sem_post/sem_destroy.
 *
 * Wake-ups are not ordered: a thread arriving while the value is positive
 * may take a unit before a woken sleeper, as with Python's Semaphore. */
#include <math.h>

#include "sync/sync_internal.h"
#include "unix/coro.h"

struct semcore {
    union {
        struct {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            _Atomic uint32_t value; /* 0..INT32_MAX; the futex word */
            _Atomic uint32_t waiters;
#else
            _Atomic uint32_t waiters;
            _Atomic uint32_t value;
#endif
        };
        _Atomic uint64_t all;
    };
    uint32_t shared;
    uint32_t bounded; /* 1: value may not pass `ceiling` */
    uint32_t ceiling;
    conc_arena *arena;
};

struct conc_sem {
    struct semcore core;
};

struct conc_bsem {
    struct semcore core;
};

static struct semcore *
core_new(unsigned value, const conc_sync_opts *opts, int bounded, int *err)
{
    *err = CONC_EINVAL;
    if (value > INT32_MAX)
        return NULL;
    conc_arena *arena = opts ? opts->arena : NULL;
    /* Both public types are a bare core, so its size serves both. */
    struct semcore *s = conc__sync_alloc(arena, sizeof *s);
    *err = CONC_ENOMEM;
    if (!s)
        return NULL;
    atomic_init(&s->all, value);
    s->shared = arena != NULL;
    s->bounded = (uint32_t)bounded;
    s->ceiling = value;
    s->arena = arena;
    *err = 0;
    return s;
}

static void
core_free(struct semcore *s)
{
    if (s)
        conc__sync_dealloc(s->arena, s);
}

#define ONE_WAITER  ((uint64_t)1 << 32)
#define VALUE_OF(w) ((uint32_t)(w))

/* Takes a unit if the value is positive; `leave` is ONE_WAITER when the
 * caller is a registered waiter that leaves `waiters` in the same step. */
static inline int
core_take(struct semcore *s, uint64_t leave)
{
    uint64_t w = atomic_load_explicit(&s->all, memory_order_relaxed);
    while (VALUE_OF(w) > 0) {
        if (atomic_compare_exchange_weak_explicit(&s->all, &w, w - 1 - leave,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return 1;
    }
    return 0;
}

static inline int
core_try(struct semcore *s)
{
    return core_take(s, 0);
}

/* Registers as a waiter and sleeps until a unit is taken or the deadline
 * passes. Returns 0 or CONC_ETIMEDOUT. */
static int
core_sleep_body(struct semcore *s, int64_t deadline)
{
    atomic_fetch_add_explicit(&s->all, ONE_WAITER, memory_order_relaxed);
    for (;;) {
        if (core_take(s, ONE_WAITER))
            return 0;
        int r = conc__futex_wait(&s->value, 0, deadline, (int)s->shared);
        if (r == -ETIMEDOUT && !core_take(s, ONE_WAITER)) {
            atomic_fetch_sub_explicit(&s->all, ONE_WAITER,
                                      memory_order_relaxed);
            return CONC_ETIMEDOUT;
        }
    }
}

/* core_sleep_body as a cancellation point in a coroutine, out of line so
 * that the fast path needs no stack frame. */
static __attribute__((noinline)) int
core_sleep(struct semcore *s, int64_t deadline)
{
    CONC__CANCEL_POINT(core_sleep_body(s, deadline));
}

static int
core_acquire(struct semcore *s, double timeout)
{
    if (CONC__UNLIKELY(isnan(timeout)))
        return CONC_EINVAL;
    if (CONC__LIKELY(core_try(s)))
        return 0;
    int64_t deadline;
    conc__deadline(timeout, &deadline); /* cannot fail: not NaN */
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, deadline);
    while (conc__spin_more(&sp))
        if (atomic_load_explicit(&s->value, memory_order_relaxed) > 0 &&
            core_try(s))
            return 0;
    return core_sleep(s, deadline);
}

static int
core_release(struct semcore *s, unsigned n)
{
    if (n == 0)
        return CONC_EINVAL;
    /* Copied now: once the CAS hands units over, s may be freed. */
    int shared = (int)s->shared;
    uint32_t limit = s->bounded ? s->ceiling : INT32_MAX;
    int err = s->bounded ? CONC_EVALUE : CONC_EOVERFLOW;
    uint64_t w = atomic_load_explicit(&s->all, memory_order_relaxed);
    do {
        if (n > limit || VALUE_OF(w) > limit - n)
            return err;
    } while (!atomic_compare_exchange_weak_explicit(
        &s->all, &w, w + n, memory_order_release, memory_order_relaxed));
    if (w >= ONE_WAITER)
        conc__futex_wake(&s->value, n > INT32_MAX ? INT32_MAX : (int)n, shared);
    return 0;
}

static unsigned
core_value(const struct semcore *s)
{
    return atomic_load_explicit((_Atomic uint32_t *)&s->value,
                                memory_order_relaxed);
}

int
conc_sem_new(unsigned value, const conc_sync_opts *opts, conc_sem **out)
{
    if (!out)
        return CONC_EINVAL;
    int r;
    struct semcore *s = core_new(value, opts, 0, &r);
    if (s)
        *out = (conc_sem *)s; /* the core is its first and only member */
    return r;
}

void
conc_sem_free(conc_sem *sem)
{
    core_free(sem ? &sem->core : NULL);
}

int
conc_sem_acquire(conc_sem *sem, double timeout)
{
    if (!sem)
        return CONC_EINVAL;
    return core_acquire(&sem->core, timeout);
}

int
conc_sem_release(conc_sem *sem, unsigned n)
{
    if (!sem)
        return CONC_EINVAL;
    return core_release(&sem->core, n);
}

unsigned
conc_sem_value(const conc_sem *sem)
{
    if (!sem)
        return 0;
    return core_value(&sem->core);
}

int
conc_bsem_new(unsigned value, const conc_sync_opts *opts, conc_bsem **out)
{
    if (!out)
        return CONC_EINVAL;
    int r;
    struct semcore *s = core_new(value, opts, 1, &r);
    if (s)
        *out = (conc_bsem *)s;
    return r;
}

void
conc_bsem_free(conc_bsem *sem)
{
    core_free(sem ? &sem->core : NULL);
}

static int
bsem_acquire_uncancelled(conc_bsem *sem, double timeout)
{
    if (!sem)
        return CONC_EINVAL;
    return core_acquire(&sem->core, timeout);
}

int
conc_bsem_acquire(conc_bsem *sem, double timeout)
{
    CONC__CANCEL_POINT(bsem_acquire_uncancelled(sem, timeout));
}

int
conc_bsem_release(conc_bsem *sem, unsigned n)
{
    if (!sem)
        return CONC_EINVAL;
    return core_release(&sem->core, n);
}

unsigned
conc_bsem_value(const conc_bsem *sem)
{
    if (!sem)
        return 0;
    return core_value(&sem->core);
}
