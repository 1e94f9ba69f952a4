/* FIFO lists of suspended tasks for the loop-local primitives (see
 * waiters.h for how a waiter stands for asyncio's future). */
#include "aio/waiters.h"

static void
push_tail(struct conc__aio_waitq *q, struct conc__aio_waiter *w)
{
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    q->n++;
    w->linked = 1;
}

void
conc__aio_waitq_remove(struct conc__aio_waitq *q, struct conc__aio_waiter *w)
{
    if (!w->linked)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    q->n--;
    w->linked = 0;
    w->prev = w->next = NULL;
}

int
conc__aio_waitq_wait(struct conc__aio_waitq *q, struct conc__aio_waiter *w,
                     struct conc__aio_task *t, int64_t deadline)
{
    *w = (struct conc__aio_waiter){.task = t};
    push_tail(q, w);
    /* A new suspension number makes a late wake from another thread, meant
     * for an earlier futex or future wait of this task, stale: only our
     * wake-up, the deadline or a cancellation resume the task, which is
     * what conc__aio_waiter_done relies on. */
    (void)conc__coro_token(&t->coro);
    int r;
    /* Should anything else resume it all the same, the resume is spurious:
     * the waiter keeps its place (or, if a queue took it off the list as
     * done meanwhile, goes back at the tail) and waits again. */
    while ((r = conc__aio_suspend(t, deadline, 1)) == 0 && !w->woken)
        if (!w->linked)
            push_tail(q, w);
    conc__aio_waitq_remove(q, w);
    return r;
}

int
conc__aio_waiter_done(const struct conc__aio_waiter *w)
{
    return w->woken || w->task->step.queued;
}

int
conc__aio_waiter_cancelled(const struct conc__aio_waiter *w)
{
    return !w->woken && w->task->step.queued;
}

void
conc__aio_waiter_wake(struct conc__aio_waiter *w)
{
    w->woken = 1;
    conc__aio_wake(w->task, 0);
}

size_t
conc__aio_waitq_wake(struct conc__aio_waitq *q, size_t n)
{
    size_t woke = 0;
    for (struct conc__aio_waiter *w = q->head; w && woke < n; w = w->next)
        if (!conc__aio_waiter_done(w)) {
            conc__aio_waiter_wake(w);
            woke++;
        }
    return woke;
}

int
conc__aio_waitq_pop_wake(struct conc__aio_waitq *q)
{
    while (q->head) {
        struct conc__aio_waiter *w = q->head;
        conc__aio_waitq_remove(q, w);
        if (!conc__aio_waiter_done(w)) {
            conc__aio_waiter_wake(w);
            return 1;
        }
    }
    return 0;
}

int
conc__aio_waitq_all_cancelled(const struct conc__aio_waitq *q)
{
    for (const struct conc__aio_waiter *w = q->head; w; w = w->next)
        if (!conc__aio_waiter_cancelled(w))
            return 0;
    return 1;
}

int
conc__aio_bind(conc_aio_loop **owner)
{
    conc_aio_loop *running = conc__aio_running;
    if (!running)
        return conc_fail(CONC_ESTATE, "no running event loop");
    if (!*owner)
        *owner = running;
    else if (*owner != running)
        return conc_fail(CONC_ESTATE, "bound to a different event loop");
    return 0;
}

int
conc__aio_bind_task(conc_aio_loop **owner, struct conc__aio_task **t)
{
    int r = conc__aio_bind(owner);
    if (r < 0)
        return r;
    *t = conc__aio_task_self();
    if (!*t || (*t)->loop != *owner)
        return conc_fail(CONC_ESTATE, "not inside a task of the loop");
    return 0;
}
