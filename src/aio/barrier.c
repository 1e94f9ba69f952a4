/* asyncio.Barrier (Python 3.13's Lib/asyncio/locks.py), loop-local.
 *
 * The state machine is asyncio's: FILLING while tasks arrive; the last
 * arrival switches to DRAINING and wakes the others; newcomers wait while
 * the barrier drains (or resets) and the last task to leave makes it
 * FILLING again. reset makes the waiting tasks fail (RESETTING, then
 * FILLING once they left); abort makes it BROKEN until reset. asyncio
 * guards the state with a Condition, whose lock is never held across a
 * suspension; in one loop without threads the state needs no lock, so the
 * tasks wait on one FIFO list and every change of state wakes them all to
 * look again, which is what the Condition's notify_all did. */
#include "aio/waiters.h"
#include "conc/aio_sync.h"

enum state { FILLING, DRAINING, RESETTING, BROKEN };

struct conc_aio_barrier {
    conc_aio_loop *loop; /* the owning loop, set at first use */
    unsigned parties;
    unsigned count; /* tasks inside wait, past the draining check */
    enum state state;
    struct conc__aio_waitq waiters;
};

int
conc_aio_barrier_new(unsigned parties, conc_aio_barrier **out)
{
    if (!out || parties < 1)
        return CONC_EINVAL;
    conc_aio_barrier *b = conc__calloc(1, sizeof *b);
    if (!b)
        return CONC_ENOMEM;
    b->parties = parties;
    b->state = FILLING;
    *out = b;
    return 0;
}

void
conc_aio_barrier_free(conc_aio_barrier *b)
{
    conc__free(b);
}

static void
notify_all(conc_aio_barrier *b)
{
    conc__aio_waitq_wake(&b->waiters, SIZE_MAX);
}

/* Waits while the previous round drains or resets (asyncio's _block). */
static int
block(conc_aio_barrier *b, struct conc__aio_task *t, int64_t deadline)
{
    while (b->state == DRAINING || b->state == RESETTING) {
        if (deadline == CONC__POLL)
            return CONC_ETIMEDOUT;
        struct conc__aio_waiter w;
        int r = conc__aio_waitq_wait(&b->waiters, &w, t, deadline);
        if (r < 0)
            return r;
    }
    return b->state == BROKEN ? CONC_EBROKEN : 0;
}

/* Waits for the round to fill (asyncio's _wait). */
static int
wait_filled(conc_aio_barrier *b, struct conc__aio_task *t, int64_t deadline)
{
    while (b->state == FILLING) {
        if (deadline == CONC__POLL)
            return CONC_ETIMEDOUT;
        struct conc__aio_waiter w;
        int r = conc__aio_waitq_wait(&b->waiters, &w, t, deadline);
        if (r < 0)
            return r;
    }
    return b->state == BROKEN || b->state == RESETTING ? CONC_EBROKEN : 0;
}

/* A task leaves; the last one out lets the next round fill (_exit). */
static void
leave(conc_aio_barrier *b)
{
    if (--b->count > 0)
        return;
    if (b->state == RESETTING || b->state == DRAINING)
        b->state = FILLING;
    notify_all(b);
}

int
conc_aio_barrier_wait(conc_aio_barrier *b, double timeout, unsigned *index)
{
    int64_t deadline;
    if (!b || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    struct conc__aio_task *t;
    int r = conc__aio_bind_task(&b->loop, &t);
    if (r < 0)
        return r;
    if ((r = block(b, t, deadline)) < 0)
        return r;
    unsigned mine = b->count++;
    if (mine + 1 == b->parties) {
        b->state = DRAINING; /* the last arrival releases the others */
        notify_all(b);
    } else {
        r = wait_filled(b, t, deadline);
    }
    leave(b);
    if (r == 0 && index)
        *index = mine;
    return r;
}

int
conc_aio_barrier_reset(conc_aio_barrier *b)
{
    if (!b)
        return CONC_EINVAL;
    int r = conc__aio_bind(&b->loop);
    if (r < 0)
        return r;
    b->state = b->count > 0 ? RESETTING : FILLING;
    notify_all(b);
    return 0;
}

int
conc_aio_barrier_abort(conc_aio_barrier *b)
{
    if (!b)
        return CONC_EINVAL;
    int r = conc__aio_bind(&b->loop);
    if (r < 0)
        return r;
    b->state = BROKEN;
    notify_all(b);
    return 0;
}

unsigned
conc_aio_barrier_parties(const conc_aio_barrier *b)
{
    return b ? b->parties : 0;
}

unsigned
conc_aio_barrier_n_waiting(const conc_aio_barrier *b)
{
    return b && b->state == FILLING ? b->count : 0;
}

int
conc_aio_barrier_broken(const conc_aio_barrier *b)
{
    return b ? b->state == BROKEN : CONC_EINVAL;
}
