/* Monotonic time, deadlines and sleep. */
#include <errno.h>
#include <math.h>
#include <time.h>

#include "conc/time.h"
#include "core/internal.h"

int64_t
conc__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
conc_monotonic_ns(void)
{
    return conc__now_ns();
}

double
conc_monotonic(void)
{
    return (double)conc__now_ns() / 1e9;
}

/* The one conversion of a public timeout. CONC_FOREVER is the only value
 * that waits without limit: any other negative timeout, such as a budget
 * computed as "deadline - now" that ran out, behaves as 0, so that a
 * deadline in the past never turns into waiting forever. */
int
conc__deadline(double timeout, int64_t *deadline)
{
    if (isnan(timeout))
        return CONC_EINVAL;
    if (timeout == CONC_FOREVER) {
        *deadline = CONC__FOREVER;
        return 0;
    }
    if (timeout <= 0) {
        *deadline = CONC__POLL;
        return 0;
    }
    /* Beyond ~292 years from boot the sum would overflow: that is forever. */
    if (timeout >= 9.2e9) {
        *deadline = CONC__FOREVER;
        return 0;
    }
    int64_t ns = (int64_t)(timeout * 1e9);
    if (ns < 1)
        ns = 1;
    int64_t now = conc__now_ns();
    *deadline = ns > INT64_MAX - now ? CONC__FOREVER : now + ns;
    return 0;
}

int
conc_sleep(double seconds)
{
    if (isnan(seconds) || seconds < 0)
        return CONC_EINVAL;
    int64_t deadline;
    conc__deadline(seconds, &deadline);
    if (deadline == CONC__POLL)
        return 0;
    if (deadline == CONC__FOREVER)
        deadline = INT64_MAX - 999999999; /* about 292 years */
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline / 1000000000);
    ts.tv_nsec = (long)(deadline % 1000000000);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    return 0;
}
