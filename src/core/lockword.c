/* The slow path of the lock word; the design is in lockword.h. */
#include <errno.h>

#include "core/lockword.h"

/* Read-only spins before sleeping. About 2-4 us on current x86 cores: long
 * enough to cover a typical critical section, short next to a futex round
 * trip. */
#define SPIN_LIMIT 200

int
conc__lockword_acquire_slow(conc__lockword *w, int64_t deadline, int shared)
{
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    for (int i = 0; i < SPIN_LIMIT; i++) {
        uint32_t v = atomic_load_explicit(w, memory_order_relaxed);
        if (v == 0 && conc__lockword_try(w))
            return 0;
        if (v == 2)
            break; /* others already sleep: join them */
        conc__cpu_relax();
    }
    while (atomic_exchange_explicit(w, 2, memory_order_acquire) != 0) {
        int r = conc__futex_wait(w, 2, deadline, shared);
        if (r == -ETIMEDOUT) {
            /* A last try: the holder may have released just now. */
            uint32_t expected = 0;
            if (atomic_compare_exchange_strong_explicit(
                    w, &expected, 2, memory_order_acquire,
                    memory_order_relaxed))
                return 0;
            return CONC_ETIMEDOUT;
        }
    }
    return 0;
}
