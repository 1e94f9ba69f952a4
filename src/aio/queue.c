/* asyncio.Queue, LifoQueue and PriorityQueue (Python 3.13's
 * Lib/asyncio/queues.py), loop-local.
 *
 * Items sit in one array used three ways: a ring for FIFO, a stack for
 * LIFO, a binary min-heap on (priority, cmp, arrival) for priority
 * queues, so that equal items leave in the order they came.
 *
 * Waiting is asyncio's: a full put or an empty get queues a waiter and
 * looks again when woken (another task may have got there first: it then
 * waits again, at the tail). Each put wakes the first getter not done and
 * each get the first putter, taking them off the list at once
 * (_wakeup_next). A waiter that was woken but is cancelled before it
 * runs, while it could have gone on, passes its wake-up to the next in
 * line (a wake-up that came first wins over the deadline). shutdown wakes every
 * waiter so each sees the shut-down queue; join waits on the count of
 * unfinished items as on an Event. */
#include <string.h>

#include "aio/waiters.h"
#include "conc/aio_sync.h"

#define FIRST_CAPACITY 8

struct entry {
    void *item;
    int64_t priority;
    uint64_t seq;
};

struct conc_aio_queue {
    conc_aio_loop *loop; /* the owning loop, set at first use */
    conc_aio_queue_opts opts;
    struct entry *e;
    size_t head, n, cap; /* head: FIFO only */
    uint64_t seq;
    size_t unfinished; /* items put and not yet marked done */
    int shutdown;
    struct conc__aio_waitq getters, putters, joiners;
};

/* ---- Storage ---------------------------------------------------------- */

/* Makes room for one more item. Returns 0 or CONC_ENOMEM. */
static int
reserve(conc_aio_queue *q)
{
    if (q->n < q->cap)
        return 0;
    size_t cap = q->cap ? q->cap * 2 : FIRST_CAPACITY;
    struct entry *e = conc__malloc(cap * sizeof *e);
    if (!e)
        return CONC_ENOMEM;
    for (size_t i = 0; i < q->n; i++) /* unwraps the FIFO ring */
        e[i] = q->e[(q->head + i) % q->cap];
    conc__free(q->e);
    q->e = e;
    q->cap = cap;
    q->head = 0;
    return 0;
}

/* 1 if entry a leaves before entry b. */
static int
before(const conc_aio_queue *q, const struct entry *a, const struct entry *b)
{
    if (a->priority != b->priority)
        return a->priority < b->priority;
    if (q->opts.cmp) {
        int c = q->opts.cmp(q->opts.cmp_arg, a->item, b->item);
        if (c != 0)
            return c < 0;
    }
    return a->seq < b->seq;
}

static void
swap(struct entry *a, struct entry *b)
{
    struct entry t = *a;
    *a = *b;
    *b = t;
}

static void
heap_push(conc_aio_queue *q, struct entry en)
{
    size_t i = q->n++;
    q->e[i] = en;
    while (i > 0 && before(q, &q->e[i], &q->e[(i - 1) / 2])) {
        swap(&q->e[i], &q->e[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
}

static struct entry
heap_pop(conc_aio_queue *q)
{
    struct entry top = q->e[0];
    q->e[0] = q->e[--q->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->n && before(q, &q->e[l], &q->e[m]))
            m = l;
        if (r < q->n && before(q, &q->e[r], &q->e[m]))
            m = r;
        if (m == i)
            break;
        swap(&q->e[i], &q->e[m]);
        i = m;
    }
    return top;
}

/* Stores an item; room was reserved. */
static void
store(conc_aio_queue *q, void *item, int64_t priority)
{
    struct entry en = {item, priority, q->seq++};
    if (q->opts.kind == CONC_QUEUE_PRIORITY)
        heap_push(q, en);
    else if (q->opts.kind == CONC_QUEUE_LIFO)
        q->e[q->n++] = en;
    else
        q->e[(q->head + q->n++) % q->cap] = en;
}

/* Takes the next item; the queue is not empty. */
static void *
take(conc_aio_queue *q)
{
    if (q->opts.kind == CONC_QUEUE_PRIORITY)
        return heap_pop(q).item;
    if (q->opts.kind == CONC_QUEUE_LIFO)
        return q->e[--q->n].item;
    void *item = q->e[q->head].item;
    q->head = (q->head + 1) % q->cap;
    q->n--;
    return item;
}

/* ---- The queue ---------------------------------------------------------- */

static int
is_full(const conc_aio_queue *q)
{
    return q->opts.maxsize > 0 && q->n >= q->opts.maxsize;
}

int
conc_aio_queue_new(const conc_aio_queue_opts *opts, conc_aio_queue **out)
{
    if (!out)
        return CONC_EINVAL;
    conc_aio_queue_opts o = opts ? *opts : (conc_aio_queue_opts){0};
    if (o.kind != CONC_QUEUE_FIFO && o.kind != CONC_QUEUE_LIFO &&
        o.kind != CONC_QUEUE_PRIORITY)
        return CONC_EINVAL;
    if (o.cmp && o.kind != CONC_QUEUE_PRIORITY)
        return CONC_EINVAL;
    conc_aio_queue *q = conc__calloc(1, sizeof *q);
    if (!q)
        return CONC_ENOMEM;
    q->opts = o;
    *out = q;
    return 0;
}

void
conc_aio_queue_free(conc_aio_queue *q)
{
    if (!q)
        return;
    while (q->n) {
        void *item = take(q);
        if (q->opts.drop)
            q->opts.drop(item);
    }
    conc__free(q->e);
    conc__free(q);
}

/* put_nowait once the caller was checked. */
static int
put_now(conc_aio_queue *q, void *item, int64_t priority)
{
    if (q->shutdown)
        return conc_fail(CONC_ECLOSED, "the queue is shut down");
    if (is_full(q))
        return CONC_EFULL;
    if (reserve(q) < 0)
        return CONC_ENOMEM;
    store(q, item, priority);
    q->unfinished++;
    conc__aio_waitq_pop_wake(&q->getters);
    return 0;
}

/* get_nowait once the caller was checked. */
static int
get_now(conc_aio_queue *q, void **item)
{
    if (q->n == 0)
        return q->shutdown ? conc_fail(CONC_ECLOSED, "the queue is shut down")
                           : CONC_EEMPTY;
    *item = take(q);
    conc__aio_waitq_pop_wake(&q->putters);
    return 0;
}

static int
put(conc_aio_queue *q, void *item, int64_t priority, double timeout)
{
    int64_t deadline;
    if (!q || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    struct conc__aio_task *t;
    int r = conc__aio_bind_task(&q->loop, &t);
    if (r < 0)
        return r;
    while (is_full(q)) {
        if (q->shutdown)
            return conc_fail(CONC_ECLOSED, "the queue is shut down");
        if (deadline == CONC__POLL)
            return CONC_EFULL;
        struct conc__aio_waiter w;
        r = conc__aio_waitq_wait(&q->putters, &w, t, deadline);
        if (r < 0) {
            if (!is_full(q) && w.woken)
                conc__aio_waitq_pop_wake(&q->putters); /* pass it on */
            return r == CONC_ETIMEDOUT ? CONC_EFULL : r;
        }
    }
    return put_now(q, item, priority);
}

int
conc_aio_queue_put(conc_aio_queue *q, void *item, double timeout)
{
    return put(q, item, 0, timeout);
}

int
conc_aio_queue_put_priority(conc_aio_queue *q, void *item, int64_t priority,
                            double timeout)
{
    if (q && q->opts.kind != CONC_QUEUE_PRIORITY)
        return CONC_EINVAL;
    return put(q, item, priority, timeout);
}

int
conc_aio_queue_put_nowait(conc_aio_queue *q, void *item)
{
    if (!q)
        return CONC_EINVAL;
    int r = conc__aio_bind(&q->loop);
    return r < 0 ? r : put_now(q, item, 0);
}

int
conc_aio_queue_get(conc_aio_queue *q, double timeout, void **item)
{
    int64_t deadline;
    if (!q || !item || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    struct conc__aio_task *t;
    int r = conc__aio_bind_task(&q->loop, &t);
    if (r < 0)
        return r;
    while (q->n == 0) {
        if (q->shutdown)
            return conc_fail(CONC_ECLOSED, "the queue is shut down");
        if (deadline == CONC__POLL)
            return CONC_EEMPTY;
        struct conc__aio_waiter w;
        r = conc__aio_waitq_wait(&q->getters, &w, t, deadline);
        if (r < 0) {
            if (q->n > 0 && w.woken)
                conc__aio_waitq_pop_wake(&q->getters); /* pass it on */
            return r == CONC_ETIMEDOUT ? CONC_EEMPTY : r;
        }
    }
    return get_now(q, item);
}

int
conc_aio_queue_get_nowait(conc_aio_queue *q, void **item)
{
    if (!q || !item)
        return CONC_EINVAL;
    int r = conc__aio_bind(&q->loop);
    return r < 0 ? r : get_now(q, item);
}

int
conc_aio_queue_task_done(conc_aio_queue *q)
{
    if (!q)
        return CONC_EINVAL;
    int r = conc__aio_bind(&q->loop);
    if (r < 0)
        return r;
    if (q->unfinished == 0)
        return conc_fail(CONC_EVALUE, "task_done() called too many times");
    if (--q->unfinished == 0)
        conc__aio_waitq_wake(&q->joiners, SIZE_MAX);
    return 0;
}

int
conc_aio_queue_join(conc_aio_queue *q, double timeout)
{
    int64_t deadline;
    if (!q || conc__deadline(timeout, &deadline) < 0)
        return CONC_EINVAL;
    struct conc__aio_task *t;
    int r = conc__aio_bind_task(&q->loop, &t);
    if (r < 0)
        return r;
    if (q->unfinished == 0)
        return 0;
    if (deadline == CONC__POLL)
        return CONC_ETIMEDOUT;
    struct conc__aio_waiter w;
    return conc__aio_waitq_wait(&q->joiners, &w, t, deadline);
}

int
conc_aio_queue_shutdown(conc_aio_queue *q, int immediate)
{
    if (!q)
        return CONC_EINVAL;
    int r = conc__aio_bind(&q->loop);
    if (r < 0)
        return r;
    q->shutdown = 1;
    if (immediate) {
        while (q->n) {
            void *item = take(q);
            if (q->opts.drop)
                q->opts.drop(item);
            if (q->unfinished > 0)
                q->unfinished--;
        }
        if (q->unfinished == 0)
            conc__aio_waitq_wake(&q->joiners, SIZE_MAX);
    }
    while (conc__aio_waitq_pop_wake(&q->getters))
        ;
    while (conc__aio_waitq_pop_wake(&q->putters))
        ;
    return 0;
}

size_t
conc_aio_queue_qsize(const conc_aio_queue *q)
{
    return q ? q->n : 0;
}

size_t
conc_aio_queue_maxsize(const conc_aio_queue *q)
{
    return q ? q->opts.maxsize : 0;
}

int
conc_aio_queue_empty(const conc_aio_queue *q)
{
    return q ? q->n == 0 : CONC_EINVAL;
}

int
conc_aio_queue_full(const conc_aio_queue *q)
{
    return q ? is_full(q) : CONC_EINVAL;
}
