/* The slow path of the lock word; the design is in lockword.h. */
#include <errno.h>

#include "core/lockword.h"
#include "core/wait.h"

/* Spins by the policy of core/wait.h, trying the lock each time it looks
 * free. Returns 1 if it took the lock. */
static int
spin(conc__lockword *w, int64_t deadline)
{
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, deadline);
    while (conc__spin_more(&sp))
        if (atomic_load_explicit(&w->locked, memory_order_relaxed) == 0 &&
            conc__lockword_try(w))
            return 1;
    return 0;
}

/* Takes the lock and leaves `waiters` in one step. */
static int
take_as_waiter(conc__lockword *w)
{
    uint64_t v = atomic_load_explicit(&w->all, memory_order_relaxed);
    while (!(v & CONC__LOCKWORD_HELD)) {
        uint64_t next = (v | CONC__LOCKWORD_HELD) - CONC__LOCKWORD_WAITER;
        if (atomic_compare_exchange_weak_explicit(
                &w->all, &v, next, memory_order_acquire, memory_order_relaxed))
            return 1;
    }
    return 0;
}

int
conc__lockword_acquire_slow(conc__lockword *w, int64_t deadline, int shared)
{
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    if (spin(w, deadline))
        return 0;
    /* Counted before looking at `locked` again, in the same word the
     * releaser's AND reads: a release either sees us or leaves `locked` at
     * 0 for the futex to refuse our sleep. */
    atomic_fetch_add_explicit(&w->all, CONC__LOCKWORD_WAITER,
                              memory_order_relaxed);
    for (;;) {
        if (take_as_waiter(w))
            return 0;
        if (conc__futex_wait(&w->locked, 1, deadline, shared) == -ETIMEDOUT &&
            !take_as_waiter(w)) {
            atomic_fetch_sub_explicit(&w->all, CONC__LOCKWORD_WAITER,
                                      memory_order_relaxed);
            return CONC_ETIMEDOUT;
        }
    }
}
