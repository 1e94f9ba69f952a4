/* conc_queue: Queue, LifoQueue and PriorityQueue, with maxsize, task
 * tracking and Python 3.13's shutdown.
 *
 * Design. One lock word, `lock`, guards the store: for FIFO the inbox that
 * producers append to, for LIFO the stack, for PRIORITY the heap. Counts
 * are kept as two monotonic counters rather than one size, so that each
 * side writes only its own: `puts` (items ever put, written by producers
 * under `lock`) and `gets` (items ever taken or removed, written by
 * consumers). The size is puts - gets, the unfinished task count is
 * puts - done, where `done` counts task_done calls. A producer remembers
 * the last `gets` it saw and reads the consumers' counter again only when
 * the queue looks full; a put that may block then waits for a run of free
 * slots rather than one ("Waiting for room" below).
 *
 * FIFO batching. A lock hand-off between cores costs a cache-line transfer,
 * and a lock taken by both sides for every item moves that line twice per
 * item. So FIFO consumers keep a private batch under a second lock word,
 * `glock`: a getter takes from the batch, and only when it is empty takes
 * `lock` once to swap the whole inbox for the (empty) batch array. Order is
 * kept, since everything in the batch is older than everything in the
 * inbox. LIFO and PRIORITY cannot batch (a newer item may have to leave
 * first), so their getters take `lock` for each item.
 *
 * Waiting. Getters, putters and joiners each have a conc__qwait (see
 * queue_internal.h): they spin, then sleep on a futex word; the other side
 * wakes them only if a sleeper is counted, so no system call is made while
 * both sides are busy. The lock under which a condition changes is its
 * guard: `lock` for getters (puts changes under it), the lock that guards
 * `gets` for putters, and none for joiners (task_done changes `done` with a
 * CAS, sequentially consistent). So a put or get needs no fence beyond its
 * lock. Locks are held while checking a condition, never while sleeping.
 *
 * Shutdown sets `closed` under both locks. An immediate shutdown also takes
 * every item out under the locks, counts them as taken and as done, and
 * hands them to `drop` after the locks are released, so `drop` may use the
 * queue without deadlocking.
 *
 * Lock order: glock before lock. Neither is held while calling user code
 * or sleeping. */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>

#include "core/lockword.h"
#include "queue/queue_internal.h"
#include "unix/coro.h"

struct conc_queue {
    /* Fixed at creation. */
    conc_queue_kind kind;
    size_t maxsize;
    conc_queue_drop_fn drop;
    char pad0[CONC__QUEUE_LINE];

    /* Producers' side. */
    conc__lockword lock;
    struct conc__qstore store; /* guarded by lock */
    uint64_t gets_seen;        /* a value gets had; guarded by lock */
    char pad1[CONC__QUEUE_LINE];

    /* What waiting getters poll, apart from the lock so that polling does
     * not take the lock's line away from a producer. */
    _Atomic uint64_t puts; /* written under lock, read anywhere */
    _Atomic int closed;    /* written under lock (and glock for FIFO) */
    char pad1b[CONC__QUEUE_LINE];

    /* Consumers' side: the FIFO batch, guarded by glock. */
    conc__lockword glock;
    void **batch;
    size_t batch_pos, batch_len, batch_cap;
    /* Written under glock (FIFO) or lock (LIFO, PRIORITY), read anywhere. */
    _Atomic uint64_t gets;
    char pad2[CONC__QUEUE_LINE];

    _Atomic uint64_t done; /* atomic; never above puts */
    char pad3[CONC__QUEUE_LINE];

    struct conc__qwait getters, putters, joiners;
    char pad4[CONC__QUEUE_LINE];
};

/* Items taken out of a queue by an immediate shutdown or at free, to be
 * given to the drop function with no lock held. */
struct removed {
    struct conc__qstore store;
    void **batch;
    size_t batch_pos, batch_len;
};

/* ---- Conditions that callers wait for ------------------------------------ */

static int
nonempty_or_closed(const void *arg)
{
    conc_queue *q = (conc_queue *)arg;
    uint64_t g = atomic_load(&q->gets);
    return atomic_load(&q->puts) > g || atomic_load(&q->closed);
}

static int
notfull_or_closed(const void *arg)
{
    conc_queue *q = (conc_queue *)arg;
    uint64_t g = atomic_load(&q->gets);
    return atomic_load(&q->puts) - g < q->maxsize || atomic_load(&q->closed);
}

static int
all_done(const void *arg)
{
    conc_queue *q = (conc_queue *)arg;
    uint64_t d = atomic_load(&q->done);
    return atomic_load(&q->puts) == d;
}

/* ---- Creation and destruction -------------------------------------------- */

int
conc_queue_new(const conc_queue_opts *opts, conc_queue **out)
{
    conc_queue_opts o = {0};
    if (opts)
        o = *opts;
    if (!out || (unsigned)o.kind > CONC_QUEUE_PRIORITY)
        return CONC_EINVAL;
    conc_queue *q = conc__calloc(1, sizeof *q);
    if (!q)
        return CONC_ENOMEM;
    q->kind = o.kind;
    q->maxsize = o.maxsize;
    q->drop = o.drop;
    *out = q;
    return 0;
}

static size_t
elem_size(const conc_queue *q)
{
    return q->kind == CONC_QUEUE_PRIORITY ? sizeof(struct conc__qentry)
                                          : sizeof(void *);
}

/* Moves every item out of `q` into `r`. The caller holds both locks. */
static size_t
remove_all(conc_queue *q, struct removed *r)
{
    r->store = q->store;
    r->batch = q->batch;
    r->batch_pos = q->batch_pos;
    r->batch_len = q->batch_len;
    q->store = (struct conc__qstore){0};
    q->batch = NULL;
    q->batch_pos = q->batch_len = q->batch_cap = 0;
    return r->store.len + (r->batch_len - r->batch_pos);
}

/* Gives the removed items to `drop` (oldest first where that is defined)
 * and frees their arrays. */
static void
drop_removed(conc_queue *q, struct removed *r)
{
    if (q->drop) {
        for (size_t i = r->batch_pos; i < r->batch_len; i++)
            q->drop(r->batch[i]);
        for (size_t i = 0; i < r->store.len; i++) {
            if (q->kind == CONC_QUEUE_PRIORITY)
                q->drop(((struct conc__qentry *)r->store.buf)[i].item);
            else
                q->drop(((void **)r->store.buf)[i]);
        }
    }
    conc__free(r->batch);
    conc__free(r->store.buf);
}

void
conc_queue_free(conc_queue *q)
{
    if (!q)
        return;
    struct removed r;
    remove_all(q, &r);
    drop_removed(q, &r);
    conc__free(q);
}

/* ---- Put ----------------------------------------------------------------- */

/* The lock under which `gets` changes, which waiting putters take to count
 * themselves and check (queue_internal.h): FIFO consumers write it under
 * glock, the others under lock. */
static conc__lockword *
putters_guard(conc_queue *q)
{
    return q->kind == CONC_QUEUE_FIFO ? &q->glock : &q->lock;
}

/* Appends `item` to the store. The caller holds lock; `seq` is this put's
 * number. Returns 0 or CONC_ENOMEM. */
static int
store_push(conc_queue *q, void *item, int64_t prio, uint64_t seq)
{
    if (CONC__UNLIKELY(q->store.len == q->store.cap) &&
        conc__qstore_reserve(&q->store, elem_size(q), q->maxsize) != 0)
        return CONC_ENOMEM;
    if (q->kind == CONC_QUEUE_PRIORITY) {
        struct conc__qentry e = {.prio = prio, .seq = seq, .item = item};
        conc__qheap_push(&q->store, &e);
    } else {
        ((void **)q->store.buf)[q->store.len++] = item;
    }
    return 0;
}

/* Whether a put must not go ahead once `p` were put. The caller holds
 * lock. While the last value of the consumers' counter seen leaves a slot,
 * it goes ahead; otherwise that counter is read again, and then it needs
 * `need` free slots (1, or a run: see "Waiting for room"). So a producer
 * touches the consumers' cache line once per run of puts. */
static int
full(conc_queue *q, uint64_t p, uint64_t need)
{
    if (q->maxsize == 0 || p - q->gets_seen < q->maxsize)
        return 0;
    q->gets_seen = atomic_load(&q->gets);
    return p - q->gets_seen + need > q->maxsize;
}

/* One attempt to put, needing `need` free slots when the counter must be
 * read again (full). Returns 0, CONC_EFULL, CONC_ECLOSED or CONC_ENOMEM.
 * A sleeping getter is woken after the lock is released: woken first, it
 * would only find the lock still held. */
static int
try_put(conc_queue *q, void *item, int64_t prio, uint64_t need)
{
    int r = 0, wake = 0;
    conc__lockword_acquire(&q->lock, CONC__FOREVER, 0);
    uint64_t p = atomic_load_explicit(&q->puts, memory_order_relaxed);
    if (atomic_load_explicit(&q->closed, memory_order_relaxed)) {
        r = CONC_ECLOSED;
    } else if (full(q, p, need)) {
        r = CONC_EFULL;
    } else if ((r = store_push(q, item, prio, p)) == 0) {
        atomic_store_explicit(&q->puts, p + 1, memory_order_release);
        wake = conc__qwait_wanted(&q->getters);
    }
    conc__lockword_release(&q->lock, 0);
    if (wake)
        conc__qwait_wake(&q->getters, 1);
    return r;
}

/* ---- Waiting for room ------------------------------------------------------
 * A producer that runs a little faster than its consumer keeps a bounded
 * queue nearly full. Taking each slot as soon as it is freed, it would
 * find the queue full again a put or two later and read `gets` again:
 * producer and consumer would hand that cache line back and forth every
 * few items, a transfer each way, which made Queue(maxsize=1024) several
 * times slower than Queue() under one fast producer. So a put that may
 * block and finds fewer than a run of free slots (REFILL_MAX, or a share
 * of a small maxsize) does not take them at once: it spins until a run is
 * free, then puts that many without reading `gets` again. It takes what
 * is free as soon as the getters stop taking (no get over REFILL_STALLS
 * looks), and the sleep that follows the spin waits for one slot only, so
 * a put never blocks while a slot stays free; put_nowait takes any slot. */

/* The run of free slots a spinning putter waits for, at most. */
#define REFILL_MAX 64

/* The share of maxsize a putter waits for, when that is smaller. */
#define REFILL_SHARE 8

/* Looks in a row without a get after which a putter takes what is free. */
#define REFILL_STALLS 3

/* What a spinning putter watches. Written by that putter only. */
struct refill {
    conc_queue *q;
    uint64_t want;   /* free slots worth waiting for */
    uint64_t gets;   /* gets at the previous look */
    unsigned stalls; /* looks in a row that saw gets unchanged */
};

static int
roomy_or_closed(const void *arg)
{
    struct refill *f = (struct refill *)arg; /* this thread's own */
    conc_queue *q = f->q;
    uint64_t g = atomic_load(&q->gets);
    uint64_t used = atomic_load(&q->puts) - g;
    if (atomic_load(&q->closed) || used + f->want <= q->maxsize)
        return 1;
    f->stalls = g == f->gets ? f->stalls + 1 : 0;
    f->gets = g;
    return used < q->maxsize && f->stalls >= REFILL_STALLS;
}

/* The run of free slots worth waiting for in `q`: 1 when unbounded. */
static uint64_t
refill_want(const conc_queue *q)
{
    uint64_t want = q->maxsize / REFILL_SHARE;
    return want == 0 ? 1 : want > REFILL_MAX ? REFILL_MAX : want;
}

/* Waits until the queue has room or is closed, or `deadline` passes:
 * spins for a run of free slots, then sleeps for one. Returns 0 or
 * CONC_ETIMEDOUT, as conc__qwait_until. */
static int
wait_room(conc_queue *q, int64_t deadline)
{
    struct refill f = {
        .q = q,
        .want = refill_want(q),
        .gets = atomic_load_explicit(&q->gets, memory_order_relaxed),
    };
    if (conc__qwait_spin(roomy_or_closed, &f, deadline))
        return 0;
    return conc__qwait_sleep(&q->putters, putters_guard(q), notfull_or_closed,
                             q, deadline);
}

/* The waiting half of put. */
static int
put_waiting_body(conc_queue *q, void *item, int64_t prio, int64_t deadline)
{
    for (;;) {
        int timed_out = wait_room(q, deadline);
        int r = try_put(q, item, prio, 1);
        if (r != CONC_EFULL || timed_out)
            return r;
    }
}

/* put_waiting_body as a cancellation point in a coroutine, out of line. */
static __attribute__((noinline)) int
put_waiting(conc_queue *q, void *item, int64_t prio, int64_t deadline)
{
    CONC__CANCEL_POINT(put_waiting_body(q, item, prio, deadline));
}

/* Puts with a timeout. The deadline is computed only when the first try
 * finds too little room, so a put that need not wait reads no clock. */
static int
put(conc_queue *q, void *item, int64_t prio, double timeout)
{
    if (isnan(timeout))
        return CONC_EINVAL;
    int may_block = timeout > 0 || timeout == CONC_FOREVER;
    int r = try_put(q, item, prio, may_block ? refill_want(q) : 1);
    if (r != CONC_EFULL || timeout == 0)
        return r;
    int64_t deadline;
    conc__deadline(timeout, &deadline);
    return put_waiting(q, item, prio, deadline);
}

int
conc_queue_put(conc_queue *q, void *item, double timeout)
{
    if (!q)
        return CONC_EINVAL;
    return put(q, item, 0, timeout);
}

int
conc_queue_put_nowait(conc_queue *q, void *item)
{
    if (!q)
        return CONC_EINVAL;
    return put(q, item, 0, 0);
}

int
conc_queue_put_priority(conc_queue *q, void *item, int64_t priority,
                        double timeout)
{
    if (!q)
        return CONC_EINVAL;
    if (q->kind != CONC_QUEUE_PRIORITY)
        return CONC_EINVAL;
    return put(q, item, priority, timeout);
}

/* ---- Get ----------------------------------------------------------------- */

/* The error for a get that found nothing; the caller holds lock. */
static int
nothing(conc_queue *q)
{
    return atomic_load_explicit(&q->closed, memory_order_relaxed) ? CONC_ECLOSED
                                                                  : CONC_EEMPTY;
}

/* Swaps the inbox for the empty batch. The caller holds glock and lock.
 * An empty array far larger than the flow (left by a burst) is freed
 * rather than handed back; the next put allocates a small one. */
static void
swap_batch(conc_queue *q)
{
    void **full = q->store.buf;
    size_t cap = q->store.cap;
    if (conc__qstore_oversized(q->batch_cap, q->store.len)) {
        conc__free(q->batch);
        q->batch = NULL;
        q->batch_cap = 0;
    }
    q->store.buf = q->batch;
    q->store.cap = q->batch_cap;
    q->batch = full;
    q->batch_cap = cap;
    q->batch_len = q->store.len;
    q->batch_pos = 0;
    q->store.len = 0;
}

/* Counts one item taken, and says whether a putter waiting for the slot
 * must be woken (after the release, as in try_put). The caller holds the
 * lock that guards `gets` (putters_guard): a plain store suffices and no
 * fence is needed (queue_internal.h). */
static int
count_get(conc_queue *q)
{
    uint64_t g = atomic_load_explicit(&q->gets, memory_order_relaxed);
    atomic_store_explicit(&q->gets, g + 1, memory_order_release);
    return q->maxsize > 0 && conc__qwait_wanted(&q->putters);
}

/* One attempt to get from a FIFO queue. Returns 0, CONC_EEMPTY or
 * CONC_ECLOSED, and in *wake whether a putter must be woken. */
static int
try_get_fifo(conc_queue *q, void **item, int *wake)
{
    int r = 0;
    conc__lockword_acquire(&q->glock, CONC__FOREVER, 0);
    if (q->batch_pos == q->batch_len) {
        conc__lockword_acquire(&q->lock, CONC__FOREVER, 0);
        if (q->store.len > 0)
            swap_batch(q);
        else
            r = nothing(q);
        conc__lockword_release(&q->lock, 0);
    }
    if (r == 0) {
        *item = q->batch[q->batch_pos++];
        *wake = count_get(q);
    }
    conc__lockword_release(&q->glock, 0);
    return r;
}

/* One attempt to get from a LIFO or priority queue. */
static int
try_get_locked(conc_queue *q, void **item, int *wake)
{
    int r = 0;
    conc__lockword_acquire(&q->lock, CONC__FOREVER, 0);
    if (q->store.len == 0) {
        r = nothing(q);
    } else if (q->kind == CONC_QUEUE_PRIORITY) {
        struct conc__qentry e;
        conc__qheap_pop(&q->store, &e);
        *item = e.item;
    } else {
        *item = ((void **)q->store.buf)[--q->store.len];
    }
    if (r == 0) {
        conc__qstore_shrink(&q->store, elem_size(q));
        *wake = count_get(q);
    }
    conc__lockword_release(&q->lock, 0);
    return r;
}

/* One attempt to get, waking a putter if it freed a slot. */
static int
try_get(conc_queue *q, void **item)
{
    int wake = 0;
    int r = q->kind == CONC_QUEUE_FIFO ? try_get_fifo(q, item, &wake)
                                       : try_get_locked(q, item, &wake);
    if (wake)
        conc__qwait_wake(&q->putters, 1);
    return r;
}

/* The waiting half of conc_queue_get. */
static int
get_waiting_body(conc_queue *q, int64_t deadline, void **item)
{
    for (;;) {
        int timed_out = conc__qwait_until(&q->getters, &q->lock,
                                          nonempty_or_closed, q, deadline);
        int r = try_get(q, item);
        if (r != CONC_EEMPTY || timed_out)
            return r;
    }
}

/* get_waiting_body as a cancellation point in a coroutine, out of line. */
static __attribute__((noinline)) int
get_waiting(conc_queue *q, int64_t deadline, void **item)
{
    CONC__CANCEL_POINT(get_waiting_body(q, deadline, item));
}

int
conc_queue_get(conc_queue *q, double timeout, void **item)
{
    if (!q)
        return CONC_EINVAL;
    if (!item || isnan(timeout))
        return CONC_EINVAL;
    int r = try_get(q, item);
    if (r != CONC_EEMPTY || timeout == 0)
        return r;
    int64_t deadline;
    conc__deadline(timeout, &deadline);
    return get_waiting(q, deadline, item);
}

int
conc_queue_get_nowait(conc_queue *q, void **item)
{
    if (!q)
        return CONC_EINVAL;
    return conc_queue_get(q, 0, item);
}

/* ---- Tasks --------------------------------------------------------------- */

int
conc_queue_task_done(conc_queue *q)
{
    if (!q)
        return CONC_EINVAL;
    uint64_t d = atomic_load(&q->done);
    do {
        if (d >= atomic_load(&q->puts))
            return CONC_EVALUE;
    } while (!atomic_compare_exchange_weak(&q->done, &d, d + 1));
    if (d + 1 == atomic_load(&q->puts))
        conc__qwait_notify(&q->joiners, INT32_MAX);
    return 0;
}

static int
queue_join_uncancelled(conc_queue *q, double timeout)
{
    if (!q)
        return CONC_EINVAL;
    int64_t deadline;
    if (conc__deadline(timeout, &deadline) != 0)
        return CONC_EINVAL;
    int timed_out = 0;
    for (;;) {
        if (all_done(q))
            return 0;
        if (deadline == CONC__POLL || timed_out)
            return CONC_ETIMEDOUT;
        if (conc__qwait_until(&q->joiners, NULL, all_done, q, deadline))
            timed_out = 1;
    }
}

int
conc_queue_join(conc_queue *q, double timeout)
{
    CONC__CANCEL_POINT(queue_join_uncancelled(q, timeout));
}

/* ---- Shutdown ------------------------------------------------------------ */

/* Counts `n` removed items as taken and, as far as tasks are unfinished,
 * as done (Python never lets the unfinished count go below zero). The
 * caller holds lock, so puts holds still. */
static void
count_removed(conc_queue *q, size_t n)
{
    atomic_fetch_add(&q->gets, n);
    uint64_t p = atomic_load(&q->puts);
    uint64_t d = atomic_load(&q->done);
    uint64_t k;
    do {
        k = p - d < n ? p - d : n;
    } while (!atomic_compare_exchange_weak(&q->done, &d, d + k));
}

int
conc_queue_shutdown(conc_queue *q, int immediate)
{
    if (!q)
        return CONC_EINVAL;
    struct removed r = {0};
    if (q->kind == CONC_QUEUE_FIFO)
        conc__lockword_acquire(&q->glock, CONC__FOREVER, 0);
    conc__lockword_acquire(&q->lock, CONC__FOREVER, 0);
    atomic_store(&q->closed, 1);
    if (immediate)
        count_removed(q, remove_all(q, &r));
    conc__lockword_release(&q->lock, 0);
    if (q->kind == CONC_QUEUE_FIFO)
        conc__lockword_release(&q->glock, 0);
    if (immediate)
        drop_removed(q, &r);
    conc__qwait_wake(&q->getters, INT32_MAX);
    conc__qwait_wake(&q->putters, INT32_MAX);
    conc__qwait_wake(&q->joiners, INT32_MAX);
    return 0;
}

/* ---- Sizes --------------------------------------------------------------- */

size_t
conc_queue_qsize(conc_queue *q)
{
    if (!q)
        return 0;
    uint64_t g = atomic_load(&q->gets);
    return (size_t)(atomic_load(&q->puts) - g);
}

int
conc_queue_empty(conc_queue *q)
{
    if (!q)
        return CONC_EINVAL;
    return conc_queue_qsize(q) == 0;
}

int
conc_queue_full(conc_queue *q)
{
    if (!q)
        return CONC_EINVAL;
    return q->maxsize > 0 && conc_queue_qsize(q) >= q->maxsize;
}

size_t
conc_queue_maxsize(const conc_queue *q)
{
    if (!q)
        return 0;
    return q->maxsize;
}

void
conc__queue_waiters(conc_queue *q, unsigned *getters, unsigned *putters,
                    unsigned *joiners)
{
    if (getters)
        *getters = (unsigned)atomic_load(&q->getters.sleepers);
    if (putters)
        *putters = (unsigned)atomic_load(&q->putters.sleepers);
    if (joiners)
        *joiners = (unsigned)atomic_load(&q->joiners.sleepers);
}
