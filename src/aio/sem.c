/* asyncio.Semaphore and BoundedSemaphore (Python 3.13's
 * Lib/asyncio/locks.py), loop-local.
 *
 * FIFO: a newcomer takes a unit at once only if no waiter that is not
 * cancelled is ahead of it. release hands its unit straight to the first
 * waiter not done (the value drops again as it is woken), so nobody can
 * overtake the woken task. A woken waiter that is cancelled before it
 * runs gives its unit back; every waiter that leaves, however it
 * leaves, then wakes as many waiters as there are units free (asyncio's
 * `finally: while self._value > 0: ...`), so no unit sits idle while tasks
 * wait. */
#include "aio/waiters.h"
#include "conc/aio_sync.h"

struct conc_aio_sem {
    conc_aio_loop *loop; /* the owning loop, set at first use */
    int64_t value;
    int64_t bound; /* BoundedSemaphore: the ceiling; else -1 */
    struct conc__aio_waitq waiters;
};

/* conc_aio_bsem is the same object with a bound. */
#define SEM(b) ((conc_aio_sem *)(b))

/* Gives a unit to the first waiter not done. Returns 1 if it did. */
static int
wake_up_next(conc_aio_sem *s)
{
    for (struct conc__aio_waiter *w = s->waiters.head; w; w = w->next)
        if (!conc__aio_waiter_done(w)) {
            s->value--;
            conc__aio_waiter_wake(w);
            return 1;
        }
    return 0;
}

static int
sem_locked(const conc_aio_sem *s)
{
    return s->value == 0 || !conc__aio_waitq_all_cancelled(&s->waiters);
}

static int
sem_new(unsigned value, int bounded, conc_aio_sem **out)
{
    if (!out || value > INT32_MAX)
        return CONC_EINVAL;
    conc_aio_sem *s = conc__calloc(1, sizeof *s);
    if (!s)
        return CONC_ENOMEM;
    s->value = value;
    s->bound = bounded ? (int64_t)value : -1;
    *out = s;
    return 0;
}

static int
sem_acquire(conc_aio_sem *s, double timeout)
{
    int64_t deadline;
    if (!s || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    struct conc__aio_task *t;
    int r = conc__aio_bind_task(&s->loop, &t);
    if (r < 0)
        return r;
    if (!sem_locked(s)) {
        s->value--;
        return 0;
    }
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    struct conc__aio_waiter w;
    r = conc__aio_waitq_wait(&s->waiters, &w, t, deadline);
    if (r < 0 && w.woken)
        s->value++; /* the unit handed to us goes back */
    while (s->value > 0 && wake_up_next(s))
        ;
    return r;
}

static int
sem_release(conc_aio_sem *s)
{
    if (!s)
        return CONC_EINVAL;
    int r = conc__aio_bind(&s->loop);
    if (r < 0)
        return r;
    if (s->bound >= 0 && s->value >= s->bound)
        return conc_fail(CONC_EVALUE,
                         "BoundedSemaphore released too many times");
    if (s->value >= INT32_MAX)
        return CONC_EOVERFLOW;
    s->value++;
    wake_up_next(s);
    return 0;
}

int
conc_aio_sem_new(unsigned value, conc_aio_sem **out)
{
    return sem_new(value, 0, out);
}

void
conc_aio_sem_free(conc_aio_sem *sem)
{
    conc__free(sem);
}

int
conc_aio_sem_acquire(conc_aio_sem *sem, double timeout)
{
    return sem_acquire(sem, timeout);
}

int
conc_aio_sem_release(conc_aio_sem *sem)
{
    return sem_release(sem);
}

int
conc_aio_sem_locked(const conc_aio_sem *sem)
{
    return sem ? sem_locked(sem) : CONC_EINVAL;
}

unsigned
conc_aio_sem_value(const conc_aio_sem *sem)
{
    return sem ? (unsigned)sem->value : 0;
}

int
conc_aio_bsem_new(unsigned value, conc_aio_bsem **out)
{
    return sem_new(value, 1, (conc_aio_sem **)out);
}

void
conc_aio_bsem_free(conc_aio_bsem *sem)
{
    conc__free(sem);
}

int
conc_aio_bsem_acquire(conc_aio_bsem *sem, double timeout)
{
    return sem_acquire(SEM(sem), timeout);
}

int
conc_aio_bsem_release(conc_aio_bsem *sem)
{
    return sem_release(SEM(sem));
}

int
conc_aio_bsem_locked(const conc_aio_bsem *sem)
{
    return sem ? sem_locked((const conc_aio_sem *)sem) : CONC_EINVAL;
}

unsigned
conc_aio_bsem_value(const conc_aio_bsem *sem)
{
    return conc_aio_sem_value((const conc_aio_sem *)sem);
}
