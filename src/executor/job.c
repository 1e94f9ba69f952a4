/* Job blocks: where an executor's jobs live (job.h).
 *
 * Design. A program that submits a batch of tiny tasks allocates and frees
 * thousands of jobs at a time; through malloc, the freed batch returns to
 * the top of the heap, which is trimmed, and the next batch faults its
 * pages in again. A pool keeps the blocks instead: slabs of fixed-size
 * blocks, one cache line aligned each (so a worker completing one job and
 * a thread reading its neighbour do not share a line), handed out from a
 * free list and taken back when a job's future loses its last reference.
 * A freed block goes onto a lock-free stack (whoever frees it: the caller
 * that held the result, or a worker for a fire-and-forget task); the
 * allocating side, under its own lock, takes that whole stack at once
 * when its private list runs out.
 * A block taken again is set up field by field, writing only what changes
 * (conc__future_reset and job_reset): the worker that ran its last task
 * read most of its lines, and a line rewritten must first be taken back
 * from that worker's cache, the main cost of a submit. Slabs start zeroed
 * for that. The pool holds what its executor used at the busiest moment,
 * and is freed when its executor is gone and its last job freed: each
 * block in use holds a reference to it, and so does the executor.
 *
 * Lock order: the pool's lock is a leaf (nothing is taken under it). */
#include <string.h>

#include "executor/job.h"

/* Argument and record bytes a pooled block holds: a line, room for a
 * small struct argument beside a Pool's callback record (40 bytes);
 * larger jobs come from the heap. */
#define INLINE 64
#define SLAB   256 /* blocks per slab (80 KiB): few allocations, little waste */
#define BLOCK                                                                  \
    ((sizeof(struct conc__job) + INLINE + CONC__LINE - 1) / CONC__LINE *       \
     CONC__LINE)

_Static_assert(BLOCK == 5 * CONC__LINE, "a pooled job takes five lines");

struct slab {
    struct slab *next;
};

struct conc__jobpool {
    _Atomic size_t refs;    /* the owner's and one per block in use */
    conc__lockword lock;    /* guards free and slabs */
    struct conc__job *free; /* linked by next */
    struct slab *slabs;
    struct conc__job *_Atomic returned; /* freed blocks, linked by next */
};

/* The free lists link blocks through the job's list field, unused while
 * a block is free. */
static struct conc__job *
link_of(struct conc__job *j)
{
    return j->next ? conc__job_of(j->next) : NULL;
}

static void
set_link(struct conc__job *j, struct conc__job *next)
{
    j->next = next ? &next->future : NULL;
}

int
conc__jobpool_new(struct conc__jobpool **out)
{
    struct conc__jobpool *p = conc__calloc(1, sizeof *p);
    if (!p)
        return CONC_ENOMEM;
    atomic_init(&p->refs, 1);
    *out = p;
    return 0;
}

static void
destroy(struct conc__jobpool *p)
{
    /* Every block is back: the slabs hold them all. */
    for (struct slab *s = p->slabs, *next; s; s = next) {
        next = s->next;
        conc__free(s);
    }
    conc__free(p);
}

void
conc__jobpool_release(struct conc__jobpool *p)
{
    if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        destroy(p);
}

/* Adds a slab's blocks to the free list (lock held). */
static void
carve_locked(struct conc__jobpool *p, struct slab *s)
{
    s->next = p->slabs;
    p->slabs = s;
    uintptr_t at =
        ((uintptr_t)(s + 1) + CONC__LINE - 1) & ~(uintptr_t)(CONC__LINE - 1);
    for (size_t i = 0; i < SLAB; i++) {
        struct conc__job *j = (struct conc__job *)(at + i * BLOCK);
        set_link(j, p->free);
        p->free = j;
    }
}

/* A free block, or NULL without memory. */
static struct conc__job *
take(struct conc__jobpool *p)
{
    conc__lockword_acquire(&p->lock, CONC__FOREVER, 0);
    if (!p->free)
        p->free =
            atomic_exchange_explicit(&p->returned, NULL, memory_order_acquire);
    if (!p->free) {
        conc__lockword_release(&p->lock, 0);
        struct slab *s = conc__calloc(1, sizeof *s + CONC__LINE + SLAB * BLOCK);
        if (!s)
            return NULL;
        conc__lockword_acquire(&p->lock, CONC__FOREVER, 0);
        carve_locked(p, s);
    }
    struct conc__job *j = p->free;
    p->free = link_of(j);
    conc__lockword_release(&p->lock, 0);
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return j;
}

/* Sets up the job's own fields of a block that holds zeroes or a freed
 * job, writing only those that change (see the design note). */
static void
job_reset(struct conc__job *j, struct conc__jobpool *p, conc_task_fn fn,
          const void *arg, size_t len)
{
    CONC__SET(j->next, NULL);
    CONC__SET(j->fn, fn);
    CONC__SET(j->len, len);
    CONC__SET(j->fd, -1);
    CONC__SET(j->kind, 0);
    CONC__SET(j->owner, NULL);
    CONC__SET(j->seq, 0);
    CONC__SET(j->shared, NULL);
    CONC__SET(j->engine, NULL);
    CONC__SET(j->ticket, 0);
    CONC__SET(j->pool, p);
    const uint8_t *at = len ? (const uint8_t *)(j + 1) : NULL;
    CONC__SET(j->arg, at);
    if (len)
        memcpy(j + 1, arg, len);
}

conc_future *
conc__job_new(struct conc__jobpool *p, conc_task_fn fn, const void *arg,
              size_t len, size_t extra, const struct conc__future_ops *ops,
              uint32_t refs)
{
    struct conc__job *j;
    if (p && len <= INLINE && extra <= INLINE - ((len + 7) & ~(size_t)7)) {
        if (!(j = take(p)))
            return NULL;
    } else {
        if (len > SIZE_MAX / 2 || extra > SIZE_MAX / 4)
            return NULL;
        if (!(j = conc__malloc(sizeof *j + len + 7 + extra)))
            return NULL;
        memset(j, 0, sizeof *j);
        p = NULL;
    }
    conc__future_reset(&j->future, ops, refs);
    job_reset(j, p, fn, arg, len);
    return &j->future;
}

void
conc__job_release(conc_future *f)
{
    struct conc__job *j = conc__job_of(f);
    struct conc__jobpool *p = j->pool;
    if (!p) {
        conc__free(j);
        return;
    }
    /* A push needs no lock: only the allocator pops, and it takes the
     * whole stack, so no block can come back under a stale head. */
    struct conc__job *head =
        atomic_load_explicit(&p->returned, memory_order_relaxed);
    do
        set_link(j, head);
    while (!atomic_compare_exchange_weak_explicit(
        &p->returned, &head, j, memory_order_release, memory_order_relaxed));
    conc__jobpool_release(p);
}
