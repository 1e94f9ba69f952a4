/* Process queues: creation, the public put and get calls, the snapshots,
 * close and shutdown, and JoinableQueue's task counting. The ring and its
 * protocol are in ring.c, the side locks in sidelock.c.
 *
 * JoinableQueue. The number of unfinished tasks is the number of messages
 * put (the count packed in `tail`, which moves in the same store that
 * commits a message, so a crash cannot separate the two) minus `done`, the
 * number of task_done calls. task_done raises `done` with a CAS that first
 * checks there is an unfinished task; join sleeps on `join_seq`, which a
 * task_done bumps when it brings the count to zero and a joiner has
 * announced itself in `join_waiters`. */
#include <limits.h>
#include <unistd.h>

#include "mpqueue/mpqueue_internal.h"
#include "unix/futex.h"
#include "unix/coro.h"

static size_t
round_capacity(size_t cap)
{
    size_t c = CONC_MPQUEUE_MIN_CAPACITY;
    while (c < cap)
        c <<= 1;
    return c;
}

static int
make_queue(const conc_mpqueue_opts *opts, uint32_t flags, conc_mpqueue **out)
{
    conc_mpqueue_opts o = opts ? *opts : (conc_mpqueue_opts){0};
    if (!out)
        return CONC_EINVAL;
    size_t cap = o.capacity ? o.capacity : CONC_MPQUEUE_CAPACITY;
    if (cap > CONC_MPQUEUE_MAX_CAPACITY)
        return CONC_EINVAL;
    cap = round_capacity(cap);
    conc_arena *arena = o.arena;
    int r = arena ? 0 : conc_arena_default(&arena);
    if (r)
        return r;
    conc_mpqueue *q = conc__calloc(1, sizeof *q);
    if (!q)
        return CONC_ENOMEM;
    void *mem;
    r = conc_arena_alloc(arena, sizeof(struct conc__mpq_shared) + cap, &mem);
    if (r) {
        conc__free(q);
        return r;
    }
    struct conc__mpq_shared *s = mem; /* zeroed by the arena */
    s->magic = CONC__MPQ_MAGIC;
    s->cap = (uint32_t)cap;
    s->flags = flags;
    s->maxsize = o.maxsize;
    q->s = s;
    q->cap = (uint32_t)cap;
    q->arena = arena;
    q->creator = getpid();
    *out = q;
    return 0;
}

int
conc_mpqueue_share(const conc_mpqueue *q, conc_mpqueue_ref *ref)
{
    if (!q || !ref)
        return CONC_EINVAL;
    int r = conc_arena_share(q->arena, &ref->arena);
    if (r)
        return r;
    ref->offset = (uint64_t)((char *)q->s - (char *)q->arena);
    ref->capacity = q->cap;
    ref->flags = q->s->flags;
    return 0;
}

int
conc_mpqueue_open(const conc_mpqueue_ref *ref, conc_mpqueue **out)
{
    conc_arena *arena;
    if (!ref || !out)
        return CONC_EINVAL;
    int r = conc_arena_open(&ref->arena, &arena);
    if (r)
        return r;
    /* The bytes are input: the shared part must lie inside the arena and
     * look like a queue of that capacity. */
    uint64_t size = sizeof(struct conc__mpq_shared) + (uint64_t)ref->capacity;
    struct conc__mpq_shared *s =
        (struct conc__mpq_shared *)((char *)arena + ref->offset);
    if (ref->offset % CONC__MPQ_LINE || !conc_arena_contains(arena, s) ||
        size > conc_arena_capacity(arena) ||
        !conc_arena_contains(arena, (char *)s + size - 1) ||
        s->magic != CONC__MPQ_MAGIC || s->cap != ref->capacity)
        return CONC_EINVAL;
    conc_mpqueue *q = conc__calloc(1, sizeof *q);
    if (!q)
        return CONC_ENOMEM;
    q->s = s;
    q->cap = ref->capacity;
    q->arena = arena;
    q->creator = 0; /* not this process's to free */
    *out = q;
    return 0;
}

int
conc_mpqueue_new(const conc_mpqueue_opts *opts, conc_mpqueue **out)
{
    return make_queue(opts, 0, out);
}

int
conc_mpsimplequeue_new(const conc_mpqueue_opts *opts, conc_mpqueue **out)
{
    if (opts && opts->maxsize)
        return CONC_EINVAL;
    return make_queue(opts, 0, out);
}

int
conc_joinable_new(const conc_mpqueue_opts *opts, conc_mpqueue **out)
{
    return make_queue(opts, CONC__MPQ_JOINABLE, out);
}

void
conc_mpqueue_free(conc_mpqueue *q)
{
    if (!q)
        return;
    if (q->creator == getpid()) {
        /* The magic is not checked: another process may have written over
         * it, and the block is this handle's to return either way. */
        q->s->magic = 0;
        conc_arena_dealloc(q->arena, q->s);
    }
    conc__free(q);
}

/* Whether this process called conc_mpqueue_close. */
static int
closed_here(conc_mpqueue *q)
{
    pid_t c = atomic_load_explicit(&q->closed, memory_order_relaxed);
    return c != 0 && c == getpid();
}

static int
mpqueue_put_uncancelled(conc_mpqueue *q, const void *data, size_t len,
                        double timeout)
{
    int64_t deadline;
    if (!q || (!data && len))
        return CONC_EINVAL;
    int r = conc__deadline(timeout, &deadline);
    if (r)
        return r;
    struct conc__mpq_shared *s = q->s;
    if (closed_here(q) || atomic_load_explicit(&s->shut, memory_order_acquire))
        return CONC_ECLOSED;
    r = conc__mpq_lock_acquire(&s->plock, deadline);
    if (r == CONC_ETIMEDOUT)
        return CONC_EFULL;
    if (r == CONC__MPQ_RECOVERED)
        conc__mpq_repair_producer(s);
    r = conc__mpq_check(s, q->cap);
    if (!r)
        r = conc__mpq_put_locked(s, data, len, deadline);
    conc__mpq_lock_release(&s->plock);
    return r;
}

int
conc_mpqueue_put(conc_mpqueue *q, const void *data, size_t len, double timeout)
{
    CONC__CANCEL_POINT(mpqueue_put_uncancelled(q, data, len, timeout));
}

int
conc_mpqueue_put_nowait(conc_mpqueue *q, const void *data, size_t len)
{
    return conc_mpqueue_put(q, data, len, 0);
}

static int
get_common(conc_mpqueue *q, struct conc__mpq_sink *k, double timeout)
{
    int64_t deadline;
    int r = conc__deadline(timeout, &deadline);
    if (r)
        return r;
    if (closed_here(q))
        return CONC_ECLOSED;
    struct conc__mpq_shared *s = q->s;
    r = conc__mpq_lock_acquire(&s->clock, deadline);
    if (r == CONC_ETIMEDOUT)
        return CONC_EEMPTY;
    if (r == CONC__MPQ_RECOVERED)
        conc__mpq_repair_consumer(s);
    r = conc__mpq_check(s, q->cap);
    if (!r)
        r = conc__mpq_get_locked(s, k, deadline);
    conc__mpq_lock_release(&s->clock);
    return r;
}

static int
mpqueue_get_uncancelled(conc_mpqueue *q, double timeout, conc_buf *out)
{
    if (!q || !out)
        return CONC_EINVAL;
    struct conc__mpq_sink k = {out, NULL, 0, 0};
    return get_common(q, &k, timeout);
}

int
conc_mpqueue_get(conc_mpqueue *q, double timeout, conc_buf *out)
{
    CONC__CANCEL_POINT(mpqueue_get_uncancelled(q, timeout, out));
}

int
conc_mpqueue_get_nowait(conc_mpqueue *q, conc_buf *out)
{
    return conc_mpqueue_get(q, 0, out);
}

static int
mpqueue_get_into_uncancelled(conc_mpqueue *q, void *buf, size_t cap,
                             double timeout, size_t *len)
{
    if (!q || (!buf && cap) || !len)
        return CONC_EINVAL;
    struct conc__mpq_sink k = {NULL, buf, cap, 0};
    int r = get_common(q, &k, timeout);
    if (r == 0 || r == CONC_EMSGSIZE)
        *len = k.len;
    return r;
}

int
conc_mpqueue_get_into(conc_mpqueue *q, void *buf, size_t cap, double timeout,
                      size_t *len)
{
    CONC__CANCEL_POINT(mpqueue_get_into_uncancelled(q, buf, cap, timeout, len));
}

/* Reads both positions, head first: messages are taken only after they
 * are put, so the later tail is never behind it. */
static void
positions(struct conc__mpq_shared *s, uint64_t *head, uint64_t *tail)
{
    *head = atomic_load_explicit(&s->head, memory_order_acquire);
    *tail = atomic_load_explicit(&s->tail, memory_order_acquire);
}

size_t
conc_mpqueue_qsize(conc_mpqueue *q)
{
    if (!q)
        return 0;
    uint64_t head, tail;
    positions(q->s, &head, &tail);
    return (uint32_t)(conc__mpq_msgs(tail) - conc__mpq_msgs(head));
}

int
conc_mpqueue_empty(conc_mpqueue *q)
{
    if (!q)
        return CONC_EINVAL;
    return conc_mpqueue_qsize(q) == 0;
}

int
conc_mpqueue_full(conc_mpqueue *q)
{
    if (!q)
        return CONC_EINVAL;
    uint64_t head, tail;
    positions(q->s, &head, &tail);
    uint32_t n = conc__mpq_msgs(tail) - conc__mpq_msgs(head);
    uint32_t used = conc__mpq_bytes(tail) - conc__mpq_bytes(head);
    if (q->s->maxsize && n >= q->s->maxsize)
        return 1;
    return q->s->cap - used < CONC_MPQUEUE_FRAME_SIZE(0);
}

size_t
conc_mpqueue_capacity(const conc_mpqueue *q)
{
    if (!q)
        return 0;
    return q->s->cap;
}

int
conc_mpqueue_close(conc_mpqueue *q)
{
    if (!q)
        return CONC_EINVAL;
    atomic_store_explicit(&q->closed, getpid(), memory_order_relaxed);
    return 0;
}

int
conc_mpqueue_shutdown(conc_mpqueue *q)
{
    if (!q)
        return CONC_EINVAL;
    atomic_store_explicit(&q->s->shut, 1, memory_order_seq_cst);
    conc__mpq_wake_all(q->s);
    return 0;
}

/* ---- JoinableQueue ------------------------------------------------------ */

static int
joinable(const conc_mpqueue *q)
{
    return q && (q->s->flags & CONC__MPQ_JOINABLE);
}

/* Unfinished tasks: `done` is read before the count of messages put, so
 * the result may be high but is never low. */
static uint32_t
unfinished(struct conc__mpq_shared *s, uint64_t *done)
{
    *done = atomic_load_explicit(&s->done, memory_order_seq_cst);
    uint64_t tail = atomic_load_explicit(&s->tail, memory_order_seq_cst);
    return conc__mpq_msgs(tail) - (uint32_t)*done;
}

int
conc_joinable_task_done(conc_mpqueue *q)
{
    if (!joinable(q))
        return CONC_EINVAL;
    struct conc__mpq_shared *s = q->s;
    for (;;) {
        uint64_t done;
        uint32_t n = unfinished(s, &done);
        if (n == 0)
            return CONC_EVALUE;
        if (!atomic_compare_exchange_weak_explicit(&s->done, &done, done + 1,
                                                   memory_order_seq_cst,
                                                   memory_order_relaxed))
            continue;
        if (n == 1 &&
            atomic_load_explicit(&s->join_waiters, memory_order_seq_cst)) {
            atomic_fetch_add_explicit(&s->join_seq, 1, memory_order_seq_cst);
            conc__futex_wake(&s->join_seq, INT_MAX, 1);
        }
        return 0;
    }
}

static int
joinable_join_uncancelled(conc_mpqueue *q, double timeout)
{
    int64_t deadline;
    if (!joinable(q) || conc__deadline(timeout, &deadline))
        return CONC_EINVAL;
    struct conc__mpq_shared *s = q->s;
    int64_t slice = CONC__MPQ_SLICE_MIN;
    int r = 0;
    atomic_fetch_add_explicit(&s->join_waiters, 1, memory_order_seq_cst);
    for (;;) {
        uint32_t seq = atomic_load_explicit(&s->join_seq, memory_order_seq_cst);
        uint64_t done;
        if (unfinished(s, &done) == 0)
            break;
        if (deadline != CONC__FOREVER && conc__now_ns() >= deadline) {
            r = CONC_ETIMEDOUT;
            break;
        }
        conc__mpq_sleep(&s->join_seq, seq, &slice, deadline);
    }
    atomic_fetch_sub_explicit(&s->join_waiters, 1, memory_order_relaxed);
    return r;
}

int
conc_joinable_join(conc_mpqueue *q, double timeout)
{
    CONC__CANCEL_POINT(joinable_join_uncancelled(q, timeout));
}
