/* asyncio.timeout: a deadline over a stretch of a task's code.
 *
 * Expiry cancels the task (one request, counted like any other); exit
 * withdraws that request and turns the task's CONC_ECANCELED into
 * CONC_ETIMEDOUT only if no other request remains beyond those present at
 * entry. That is asyncio 3.12's rule, which keeps an outer cancellation
 * (a TaskGroup's, a caller's) from being reported as a timeout. */
#include "aio/aio_internal.h"

enum { ACTIVE, EXPIRING, EXPIRED, EXITED };

struct conc_aio_timeout {
    struct conc__aio_task *task;
    conc_aio_handle *handle; /* the pending expiry, or NULL */
    int state;
    int entry_cancelling;
};

static void
expire(void *arg)
{
    conc_aio_timeout *to = arg;
    conc_aio_handle_free(to->handle);
    to->handle = NULL;
    to->state = EXPIRING;
    conc_aio_task_cancel(&to->task->future, NULL);
}

static void
disarm(conc_aio_timeout *to)
{
    if (to->handle) {
        conc_aio_handle_cancel(to->handle);
        conc_aio_handle_free(to->handle);
        to->handle = NULL;
    }
}

static int
arm(conc_aio_timeout *to, double delay)
{
    disarm(to);
    if (delay == CONC_FOREVER)
        return 0;
    return conc_aio_call_later(to->task->loop, delay, expire, to, &to->handle);
}

int
conc_aio_timeout_enter(double delay, conc_aio_timeout **out)
{
    if (!out || delay != delay)
        return CONC_EINVAL;
    struct conc__aio_task *t = conc__aio_task_self();
    if (!t)
        return conc_fail(CONC_ESTATE, "timeout() should be used inside a task");
    conc_aio_timeout *to = conc__calloc(1, sizeof *to);
    if (!to)
        return CONC_ENOMEM;
    to->task = t;
    to->entry_cancelling = t->ncancel;
    int r = arm(to, delay);
    if (r < 0) {
        conc__free(to);
        return r;
    }
    *out = to;
    return 0;
}

int
conc_aio_timeout_reschedule(conc_aio_timeout *to, double delay)
{
    if (!to || delay != delay)
        return CONC_EINVAL;
    if (to->state != ACTIVE)
        return conc_fail(CONC_ESTATE, "cannot reschedule an expired timeout");
    return arm(to, delay);
}

int
conc_aio_timeout_expired(conc_aio_timeout *to)
{
    if (!to)
        return CONC_EINVAL;
    return to->state == EXPIRING || to->state == EXPIRED;
}

int
conc_aio_timeout_exit(conc_aio_timeout *to, int code)
{
    if (!to)
        return CONC_EINVAL;
    disarm(to);
    if (to->state == EXPIRING) {
        to->state = EXPIRED;
        if (conc_aio_task_uncancel(&to->task->future) <= to->entry_cancelling &&
            code == CONC_ECANCELED)
            code = conc_fail(CONC_ETIMEDOUT, "timeout expired");
    }
    conc__free(to);
    return code;
}
