/* asyncio.Event (Python 3.13's Lib/asyncio/locks.py), loop-local.
 *
 * set wakes every waiter not already done; a woken waiter returns 0 even
 * if the flag is cleared before it runs. No wake-up needs passing on: set
 * wakes them all. */
#include "aio/waiters.h"
#include "conc/aio_sync.h"

struct conc_aio_event {
    conc_aio_loop *loop; /* the owning loop, set at first use */
    int value;
    struct conc__aio_waitq waiters;
};

int
conc_aio_event_new(conc_aio_event **out)
{
    if (!out)
        return CONC_EINVAL;
    conc_aio_event *ev = conc__calloc(1, sizeof *ev);
    if (!ev)
        return CONC_ENOMEM;
    *out = ev;
    return 0;
}

void
conc_aio_event_free(conc_aio_event *ev)
{
    conc__free(ev);
}

int
conc_aio_event_set(conc_aio_event *ev)
{
    if (!ev)
        return CONC_EINVAL;
    int r = conc__aio_bind(&ev->loop);
    if (r < 0)
        return r;
    if (!ev->value) {
        ev->value = 1;
        conc__aio_waitq_wake(&ev->waiters, SIZE_MAX);
    }
    return 0;
}

int
conc_aio_event_clear(conc_aio_event *ev)
{
    if (!ev)
        return CONC_EINVAL;
    int r = conc__aio_bind(&ev->loop);
    if (r < 0)
        return r;
    ev->value = 0;
    return 0;
}

int
conc_aio_event_is_set(const conc_aio_event *ev)
{
    return ev ? ev->value : CONC_EINVAL;
}

int
conc_aio_event_wait(conc_aio_event *ev, double timeout)
{
    int64_t deadline;
    if (!ev || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    struct conc__aio_task *t;
    int r = conc__aio_bind_task(&ev->loop, &t);
    if (r < 0)
        return r;
    if (ev->value)
        return 0;
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    struct conc__aio_waiter w;
    return conc__aio_waitq_wait(&ev->waiters, &w, t, deadline);
}
