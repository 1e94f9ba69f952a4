/* conc/queue.h: in-process queues between threads (Python's queue module).
 *
 * Items are `void *`: threads share memory, so a queue passes pointers and
 * never copies what they point to. Ownership of an item moves with it from
 * the putter to the getter. All functions may be called from any thread.
 *
 * conc_queue covers Queue (FIFO), LifoQueue and PriorityQueue through its
 * kind option. conc_simplequeue is SimpleQueue: unbounded FIFO without task
 * tracking, and the fastest.
 *
 * Timeouts: put returns CONC_EFULL and get CONC_EEMPTY when their timeout
 * runs out (queue.Full / queue.Empty, as Python raises), also for 0. */
#ifndef CONC_QUEUE_H
#define CONC_QUEUE_H

#include "common.h"

CONC_BEGIN_DECLS

typedef struct conc_queue conc_queue;

typedef enum conc_queue_kind {
    CONC_QUEUE_FIFO = 0, /* queue.Queue */
    CONC_QUEUE_LIFO,     /* queue.LifoQueue */
    CONC_QUEUE_PRIORITY, /* queue.PriorityQueue: lowest priority first;
                            equal priorities leave in the order they came */
} conc_queue_kind;

/* Receives each item the queue discards rather than delivers: items left at
 * conc_queue_free and those removed by an immediate shutdown. */
typedef void (*conc_queue_drop_fn)(void *item);

typedef struct conc_queue_opts {
    size_t maxsize;          /* 0: unbounded (Python's default) */
    conc_queue_kind kind;    /* default FIFO */
    conc_queue_drop_fn drop; /* NULL: discarded items are left alone */
} conc_queue_opts;

/* Creates a queue in *out, freed with conc_queue_free. `opts` may be NULL.
 * Returns 0, CONC_ENOMEM, or CONC_EINVAL for an unknown kind.
 * Any thread. */
CONC_EXTERN int conc_queue_new(const conc_queue_opts *opts, conc_queue **out);

/* Frees the queue, passing the items still inside to `drop`. No thread may
 * be using the queue. NULL does nothing. */
CONC_EXTERN void conc_queue_free(conc_queue *q);

/* Puts `item` (any pointer, NULL included), waiting up to `timeout` for a
 * free slot in a bounded queue. Returns 0, CONC_EFULL when no slot freed in
 * time, CONC_ECLOSED once the queue is shut down (also for a waiting put),
 * CONC_EINVAL for a NaN timeout. On failure the caller keeps the item. On a
 * priority queue the item's priority is 0.
 * Any thread. */
CONC_EXTERN int conc_queue_put(conc_queue *q, void *item, double timeout);

/* conc_queue_put with a timeout of 0 (put_nowait). Any thread.
 * Errors as conc_queue_put. */
CONC_EXTERN int conc_queue_put_nowait(conc_queue *q, void *item);

/* Puts an item with a priority (lower leaves first) on a priority queue.
 * Errors as conc_queue_put, and CONC_EINVAL on another kind of queue.
 * Any thread. */
CONC_EXTERN int conc_queue_put_priority(conc_queue *q, void *item,
                                        int64_t priority, double timeout);

/* Takes the next item into *item, waiting up to `timeout` for one. Returns
 * 0, CONC_EEMPTY when none came in time, CONC_ECLOSED when the queue is
 * shut down and (for a normal shutdown) empty, CONC_EINVAL for a NaN
 * timeout or NULL item.
 * Any thread.
 * The item's ownership moves to the caller. */
CONC_EXTERN int conc_queue_get(conc_queue *q, double timeout, void **item);

/* conc_queue_get with a timeout of 0 (get_nowait). Any thread.
 * Errors and ownership as conc_queue_get. */
CONC_EXTERN int conc_queue_get_nowait(conc_queue *q, void **item);

/* Marks one item taken with get as processed. Returns 0, or CONC_EVALUE
 * when called more times than items were put (Python's ValueError).
 * Any thread. */
CONC_EXTERN int conc_queue_task_done(conc_queue *q);

/* Waits until every item put has been marked done. Returns 0,
 * CONC_ETIMEDOUT, or CONC_EINVAL for a NaN timeout.
 * Any thread. */
CONC_EXTERN int conc_queue_join(conc_queue *q, double timeout);

/* Shuts the queue down (Python 3.13): put fails with CONC_ECLOSED from now
 * on, and so does get once the queue is empty. With `immediate`, the items
 * still queued are removed at once (given to the drop function and counted
 * as done, so join returns) and get fails at once. Every blocked caller
 * wakes. Calling it again is allowed (immediate may upgrade a normal
 * shutdown). Returns 0.
 * Any thread. */
CONC_EXTERN int conc_queue_shutdown(conc_queue *q, int immediate);

/* A snapshot of the number of items, and whether the queue is empty or
 * full (1 or 0); an unbounded queue is never full.
 * Any thread.
 * For a NULL queue: 0 from qsize and maxsize, CONC_EINVAL from empty and full.
 */
CONC_EXTERN size_t conc_queue_qsize(conc_queue *q);
CONC_EXTERN int conc_queue_empty(conc_queue *q);
CONC_EXTERN int conc_queue_full(conc_queue *q);
CONC_EXTERN size_t conc_queue_maxsize(const conc_queue *q);

/* ---- SimpleQueue (queue.SimpleQueue) ------------------------------------ */
typedef struct conc_simplequeue conc_simplequeue;

/* Creates an unbounded FIFO queue. `drop` (may be NULL) receives the items
 * left at conc_simplequeue_free. Returns 0 or CONC_ENOMEM.
 * conc_simplequeue_free: any thread, once no other thread uses the object. The
 * others: any thread. */
CONC_EXTERN int conc_simplequeue_new(conc_queue_drop_fn drop,
                                     conc_simplequeue **out);
CONC_EXTERN void conc_simplequeue_free(conc_simplequeue *q);

/* Puts an item; never blocks. Returns 0 or CONC_ENOMEM. Any thread. */
CONC_EXTERN int conc_simplequeue_put(conc_simplequeue *q, void *item);

/* Takes the oldest item, waiting up to `timeout`. Returns 0, CONC_EEMPTY,
 * or CONC_EINVAL for a NaN timeout or NULL item.
 * Any thread.
 * The item's ownership moves to the caller. conc_simplequeue_get_nowait: errors
 * as conc_simplequeue_get; qsize 0 and empty CONC_EINVAL for a NULL queue. */
CONC_EXTERN int conc_simplequeue_get(conc_simplequeue *q, double timeout,
                                     void **item);
CONC_EXTERN int conc_simplequeue_get_nowait(conc_simplequeue *q, void **item);
CONC_EXTERN size_t conc_simplequeue_qsize(conc_simplequeue *q);
CONC_EXTERN int conc_simplequeue_empty(conc_simplequeue *q);

CONC_END_DECLS

#endif
