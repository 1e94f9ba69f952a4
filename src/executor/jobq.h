/* An intrusive queue of jobs (their futures, linked through the jobs'
 * qnext) that many threads push to without a lock and one thread at a
 * time pops from (the thread engine's pending jobs).
 *
 * Design: Vyukov's intrusive multi-producer single-consumer queue. A push
 * is one atomic exchange of `tail` and one store linking the old tail to
 * the new node, so submitters never wait for each other or for workers. A
 * sentinel node keeps the queue non-empty, so head and tail never meet on a
 * real node the consumer still needs. Between a producer's exchange and
 * its link the queue looks empty past the old tail: pop then returns
 * NULL, and the producer's wake-up, which follows its link, makes the
 * consumer look again. Consumers serialise with a lock of their own. */
#ifndef CONC_EXECUTOR_JOBQ_H
#define CONC_EXECUTOR_JOBQ_H

#include <stdatomic.h>

#include "executor/job.h"

struct conc__jobq {
    _Alignas(64) conc_future *_Atomic tail; /* the producers' end */
    _Alignas(64) conc_future *head;         /* the consumer's end */
    struct conc__job sentinel;              /* its future is the node */
};

/* A node's link. */
static inline conc_future *_Atomic *
conc__jobq_link(conc_future *f)
{
    return &conc__job_of(f)->qnext;
}

static inline void
conc__jobq_init(struct conc__jobq *q)
{
    atomic_init(&q->sentinel.qnext, NULL);
    q->head = &q->sentinel.future;
    atomic_init(&q->tail, &q->sentinel.future);
}

/* Appends `f`. Any thread. */
static inline void
conc__jobq_push(struct conc__jobq *q, conc_future *f)
{
    atomic_store_explicit(conc__jobq_link(f), NULL, memory_order_relaxed);
    conc_future *prev =
        atomic_exchange_explicit(&q->tail, f, memory_order_acq_rel);
    atomic_store_explicit(conc__jobq_link(prev), f, memory_order_release);
}

/* Takes the oldest future, or NULL if there is none or a push is half
 * done. One consumer at a time. */
static inline conc_future *
conc__jobq_pop(struct conc__jobq *q)
{
    conc_future *h = q->head;
    conc_future *next =
        atomic_load_explicit(conc__jobq_link(h), memory_order_acquire);
    if (h == &q->sentinel.future) {
        if (!next)
            return NULL;
        q->head = h = next;
        next = atomic_load_explicit(conc__jobq_link(h), memory_order_acquire);
    }
    if (next) {
        q->head = next;
        return h;
    }
    if (h != atomic_load_explicit(&q->tail, memory_order_acquire))
        return NULL; /* a producer is between its exchange and its link */
    conc__jobq_push(q, &q->sentinel.future);
    next = atomic_load_explicit(conc__jobq_link(h), memory_order_acquire);
    if (!next)
        return NULL;
    q->head = next;
    return h;
}

#endif
