/* The slow paths of the lock word; the design is in lockword.h. */
#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/lockword.h"

/* Spin rounds before sleeping; round i pauses min(2^i, 64) times, so the
 * whole spin is about 3000 pauses: a few microseconds. */
#define SPIN_ROUNDS 50
#define MAX_PAUSES 64

int conc__lockword_asym;

/* Registration marks this process's memory map; it survives fork, and exec
 * starts a new program that registers again. */
__attribute__((constructor)) static void
register_membarrier(void)
{
    long r = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                     0, 0);
    conc__lockword_asym = r == 0;
}

static void
fence_all_threads(void)
{
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        conc__panic("membarrier failed after registering: errno %d", errno);
}

static int
spin(conc__lockword *w)
{
    unsigned pauses = 1;
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if (atomic_load_explicit(&w->locked, memory_order_relaxed) == 0 &&
            conc__lockword_try(w))
            return 1;
        for (unsigned k = 0; k < pauses; k++)
            conc__cpu_relax();
        if (pauses < MAX_PAUSES)
            pauses <<= 1;
    }
    return 0;
}

int
conc__lockword_acquire_slow(conc__lockword *w, int64_t deadline, int shared)
{
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    if (spin(w))
        return 0;
    atomic_fetch_add_explicit(&w->waiters, 1, memory_order_seq_cst);
    if (!shared && conc__lockword_asym)
        fence_all_threads();
    int r = 0;
    while (!conc__lockword_try(w)) {
        if (conc__futex_wait(&w->locked, 1, deadline, shared) == -ETIMEDOUT &&
            !conc__lockword_try(w)) {
            r = CONC_ETIMEDOUT;
            break;
        }
    }
    atomic_fetch_sub_explicit(&w->waiters, 1, memory_order_relaxed);
    return r;
}

int
conc__lockword_release_fenced(conc__lockword *w, int shared)
{
    if (atomic_exchange_explicit(&w->locked, 0, memory_order_seq_cst) == 0)
        return CONC_ENOTLOCKED;
    if (atomic_load_explicit(&w->waiters, memory_order_seq_cst))
        conc__futex_wake(&w->locked, 1, shared);
    return 0;
}
