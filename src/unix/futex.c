/* Futex system calls. FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC
 * timeout, so a wait interrupted and resumed keeps the original deadline. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "unix/coro.h"
#include "unix/futex.h"

int
conc__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline,
                 int shared)
{
    struct timespec ts, *tsp = NULL;
    int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);

    if (CONC__UNLIKELY(conc__coro_self != NULL) && !shared)
        return conc__park_wait(conc__coro_self, word, expected, deadline, 0);

    if (deadline != CONC__FOREVER) {
        if (deadline < 0)
            deadline = 0;
        ts.tv_sec = (time_t)(deadline / 1000000000);
        ts.tv_nsec = (long)(deadline % 1000000000);
        tsp = &ts;
    }
    if (syscall(SYS_futex, (uint32_t *)word, op, expected, tsp, NULL,
                FUTEX_BITSET_MATCH_ANY) == 0)
        return 0;
    return -errno;
}

int
conc__futex_wake(_Atomic uint32_t *word, int n, int shared)
{
    int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    int woken = conc__park_wake(word, n);
    if (woken >= n)
        return woken;
    long r = syscall(SYS_futex, (uint32_t *)word, op, n - woken, NULL, NULL, 0);
    return woken + (r < 0 ? 0 : (int)r);
}
