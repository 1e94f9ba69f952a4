/* The sleeping half of the queues' wait protocol; the design, and the two
 * ways the change and the check are ordered, are in queue_internal.h. */
#include <errno.h>

#include "queue/queue_internal.h"

int
conc__qwait_spin(conc__qready_fn ready, const void *arg, int64_t deadline)
{
    if (ready(arg))
        return 1;
    struct conc__spin sp = conc__spin_start(CONC__SPIN_NS, deadline);
    while (conc__spin_more(&sp))
        if (ready(arg))
            return 1;
    return 0;
}

static void
guard_acquire(conc__lockword *guard)
{
    if (guard)
        conc__lockword_acquire(guard, CONC__FOREVER, 0);
}

static void
guard_release(conc__lockword *guard)
{
    if (guard)
        conc__lockword_release(guard, 0);
}

int
conc__qwait_until(struct conc__qwait *w, conc__lockword *guard,
                  conc__qready_fn ready, const void *arg, int64_t deadline)
{
    if (conc__qwait_spin(ready, arg, deadline))
        return 0;
    return conc__qwait_sleep(w, guard, ready, arg, deadline);
}

int
conc__qwait_sleep(struct conc__qwait *w, conc__lockword *guard,
                  conc__qready_fn ready, const void *arg, int64_t deadline)
{
    int r = 0;
    guard_acquire(guard);
    atomic_fetch_add(&w->sleepers, 1);
    for (;;) {
        uint32_t seq = atomic_load(&w->seq);
        int ok = ready(arg);
        guard_release(guard);
        if (ok)
            break;
        int e = conc__futex_wait(&w->seq, seq, deadline, 0);
        guard_acquire(guard);
        if (e == 0)
            atomic_fetch_sub(&w->woken, 1); /* before the re-check */
        if (e == -ETIMEDOUT) {
            r = ready(arg) ? 0 : CONC_ETIMEDOUT;
            guard_release(guard);
            break;
        }
    }
    /* Late is safe: a count too high costs at most a needless wake. */
    atomic_fetch_sub(&w->sleepers, 1);
    return r;
}
