/* Futex system calls. FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC
 * timeout, so a wait interrupted and resumed keeps the original deadline.
 *
 * Inside a coroutine a wait parks the coroutine instead (park.c). Waits
 * use every bitset bit but the top one, which belongs to the proxies that
 * wait in the kernel for coroutines parked on process-shared words: a
 * wake aimed at the proxies alone (CONC__FUTEX_PROXY_BIT) then wakes no
 * thread of this or another process. Plain wakes match every bit. */
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
    if (CONC__UNLIKELY(conc__coro_self != NULL))
        return conc__park_wait(conc__coro_self, word, expected, deadline,
                               shared);
    return conc__futex_wait_bits(word, expected, deadline, shared,
                                 ~CONC__FUTEX_PROXY_BIT);
}

int
conc__futex_wait_bits(_Atomic uint32_t *word, uint32_t expected,
                      int64_t deadline, int shared, uint32_t bits)
{
    struct timespec ts, *tsp = NULL;
    int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);

    if (deadline != CONC__FOREVER) {
        if (deadline < 0)
            deadline = 0;
        ts.tv_sec = (time_t)(deadline / 1000000000);
        ts.tv_nsec = (long)(deadline % 1000000000);
        tsp = &ts;
    }
    if (syscall(SYS_futex, (uint32_t *)word, op, expected, tsp, NULL, bits) ==
        0)
        return 0;
    return -errno;
}

void
conc__futex_wake_bits(_Atomic uint32_t *word, int n, int shared, uint32_t bits)
{
    int op = FUTEX_WAKE_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    syscall(SYS_futex, (uint32_t *)word, op, n, NULL, NULL, bits);
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
