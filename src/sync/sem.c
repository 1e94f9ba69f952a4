/* Semaphore and BoundedSemaphore (threading.Semaphore, BoundedSemaphore).
 *
 * Design. Both share one core: a 32-bit `value` that is also the futex word
 * sleepers wait on, and a count of registered `waiters`. acquire is a CAS
 * that decrements a positive value. When the value is 0 the caller spins
 * briefly (a release often follows within microseconds), then registers in
 * `waiters` and sleeps while the value stays 0. release adds n with a CAS
 * (refusing to pass INT32_MAX, or the ceiling of a bounded semaphore) and
 * makes the wake system call only when `waiters` is nonzero, so a semaphore
 * nobody sleeps on never enters the kernel.
 *
 * No wake-up is lost: a waiter increments `waiters` before it reads the
 * value it will sleep on, and release updates the value before it reads
 * `waiters`. Both sides use sequentially consistent operations, so at least
 * one of them sees the other's write: either release sees the waiter and
 * wakes it, or the waiter sees the new value (and the kernel re-checks the
 * value before it puts the waiter to sleep).
 *
 * Wake-ups are not ordered: a thread arriving while the value is positive
 * may take a unit before a woken sleeper, as with Python's Semaphore. */
#include <math.h>

#include "sync/sync_internal.h"

struct semcore {
    _Atomic uint32_t value; /* 0..INT32_MAX; the futex word */
    _Atomic uint32_t waiters;
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
    atomic_init(&s->value, value);
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

/* Takes a unit if the value is positive. */
static inline int
core_try(struct semcore *s)
{
    uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    while (v > 0) {
        if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - 1,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return 1;
    }
    return 0;
}

/* Registers as a waiter and sleeps until a unit is taken or the deadline
 * passes. Returns 0 or CONC_ETIMEDOUT. */
static int
core_sleep(struct semcore *s, int64_t deadline)
{
    int r = 0;
    atomic_fetch_add_explicit(&s->waiters, 1, memory_order_seq_cst);
    for (;;) {
        if (atomic_load_explicit(&s->value, memory_order_seq_cst) > 0) {
            if (core_try(s)) {
                r = 0;
                break;
            }
            continue;
        }
        if (r == -ETIMEDOUT) {
            r = CONC_ETIMEDOUT;
            break;
        }
        r = conc__futex_wait(&s->value, 0, deadline, (int)s->shared);
    }
    atomic_fetch_sub_explicit(&s->waiters, 1, memory_order_relaxed);
    return r;
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
    for (int i = 0; i < CONC__SYNC_SPIN; i++) {
        conc__cpu_relax();
        if (atomic_load_explicit(&s->value, memory_order_relaxed) > 0 &&
            core_try(s))
            return 0;
    }
    return core_sleep(s, deadline);
}

static int
core_release(struct semcore *s, unsigned n)
{
    if (n == 0)
        return CONC_EINVAL;
    uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    do {
        if (s->bounded && (n > s->ceiling || v > s->ceiling - n))
            return CONC_EVALUE;
        if (n > INT32_MAX || v > INT32_MAX - n)
            return CONC_EOVERFLOW;
    } while (!atomic_compare_exchange_weak_explicit(
        &s->value, &v, v + n, memory_order_seq_cst, memory_order_relaxed));
    if (atomic_load_explicit(&s->waiters, memory_order_seq_cst) > 0)
        conc__futex_wake(&s->value, n > INT32_MAX ? INT32_MAX : (int)n,
                         (int)s->shared);
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
    return core_acquire(&sem->core, timeout);
}

int
conc_sem_release(conc_sem *sem, unsigned n)
{
    return core_release(&sem->core, n);
}

unsigned
conc_sem_value(const conc_sem *sem)
{
    return core_value(&sem->core);
}

int
conc_bsem_new(unsigned value, const conc_sync_opts *opts, conc_bsem **out)
{
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

int
conc_bsem_acquire(conc_bsem *sem, double timeout)
{
    return core_acquire(&sem->core, timeout);
}

int
conc_bsem_release(conc_bsem *sem, unsigned n)
{
    return core_release(&sem->core, n);
}

unsigned
conc_bsem_value(const conc_bsem *sem)
{
    return core_value(&sem->core);
}
