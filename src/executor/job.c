/* Pools of future blocks: where a thread executor's futures live.
 *
 * Design. A program that submits a batch of tiny tasks allocates and frees
 * thousands of futures at a time; through malloc, the freed batch returns
 * to the top of the heap, which is trimmed, and the next batch faults its
 * pages in again. A pool keeps the blocks instead: slabs of fixed-size
 * blocks, one cache line aligned each (so a worker completing one future
 * and a thread reading its neighbour do not share a line), handed out
 * from a free list and taken back when a future's last reference goes.
 * A freed block goes onto a lock-free stack (whoever frees it: the caller
 * that held the result, or a worker for a fire-and-forget task); the
 * allocating side, under its own lock, takes that whole stack at once
 * when its private list runs out.
 * A block taken again is set up field by field, writing only what changes
 * (conc__future_reinit): the worker that ran its last task read most of
 * its lines, and a line rewritten must first be taken back from that
 * worker's cache, the main cost of a submit. Slabs start zeroed for that.
 * The pool holds what its executor used at the busiest moment, and is
 * freed when its executor is gone and its last future freed: each block
 * in use holds a reference to it, and so does the executor. */
#include <string.h>

#include "future/future_internal.h"

#define LINE   64
#define INLINE 64  /* argument bytes a pooled future holds */
#define SLAB   256 /* blocks per slab */
#define BLOCK  ((sizeof(conc_future) + INLINE + LINE - 1) / LINE * LINE)

struct slab {
    struct slab *next;
};

struct conc__fpool {
    _Atomic size_t refs; /* the owner's and one per block in use */
    conc__lockword lock; /* guards free and slabs */
    conc_future *free;   /* linked by job.next */
    struct slab *slabs;
    conc_future *_Atomic returned; /* freed blocks, linked by job.next */
};

int
conc__fpool_new(struct conc__fpool **out)
{
    struct conc__fpool *p = conc__calloc(1, sizeof *p);
    if (!p)
        return CONC_ENOMEM;
    atomic_init(&p->refs, 1);
    *out = p;
    return 0;
}

static void
destroy(struct conc__fpool *p)
{
    /* Every block is back: the slabs hold them all. */
    for (struct slab *s = p->slabs, *next; s; s = next) {
        next = s->next;
        conc__free(s);
    }
    conc__free(p);
}

void
conc__fpool_release(struct conc__fpool *p)
{
    if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        destroy(p);
}

/* Adds a slab's blocks to the free list (lock held). */
static void
carve_locked(struct conc__fpool *p, struct slab *s)
{
    s->next = p->slabs;
    p->slabs = s;
    uintptr_t at = ((uintptr_t)(s + 1) + LINE - 1) & ~(uintptr_t)(LINE - 1);
    for (size_t i = 0; i < SLAB; i++) {
        conc_future *f = (conc_future *)(at + i * BLOCK);
        f->job.next = p->free;
        p->free = f;
    }
}

/* A free block, or NULL without memory. */
static conc_future *
take(struct conc__fpool *p)
{
    conc__lockword_acquire(&p->lock, CONC__FOREVER, 0);
    if (!p->free)
        p->free =
            atomic_exchange_explicit(&p->returned, NULL, memory_order_acquire);
    if (!p->free) {
        conc__lockword_release(&p->lock, 0);
        struct slab *s = conc__calloc(1, sizeof *s + LINE + SLAB * BLOCK);
        if (!s)
            return NULL;
        conc__lockword_acquire(&p->lock, CONC__FOREVER, 0);
        carve_locked(p, s);
    }
    conc_future *f = p->free;
    p->free = f->job.next;
    conc__lockword_release(&p->lock, 0);
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return f;
}

int
conc__future_new_pooled(struct conc__fpool *p, conc_task_fn fn, const void *arg,
                        size_t len, size_t extra, conc_future **out)
{
    if (!p || len > INLINE || extra > INLINE - ((len + 7) & ~(size_t)7))
        return conc__future_new_job(fn, arg, len, extra, out);
    conc_future *f = take(p);
    if (!f)
        return CONC_ENOMEM;
    conc__future_reinit(f, fn, arg, len); /* zeroes or a freed future */
    if (f->pool != p)
        f->pool = p;
    *out = f;
    return 0;
}

void
conc__fpool_put(struct conc__fpool *p, conc_future *f)
{
    /* A push needs no lock: only the allocator pops, and it takes the
     * whole stack, so no block can come back under a stale head. */
    conc_future *head =
        atomic_load_explicit(&p->returned, memory_order_relaxed);
    do
        f->job.next = head;
    while (!atomic_compare_exchange_weak_explicit(
        &p->returned, &head, f, memory_order_release, memory_order_relaxed));
    conc__fpool_release(p);
}
