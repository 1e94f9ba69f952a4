/* A worker's batch: the jobs a thread-engine worker took from the shared
 * queue with the one it runs, so that one pop's lock and its walk of the
 * queue serve several tiny tasks.
 *
 * Design. The jobs sit in a small array and a single word says which are
 * left: a generation, then the index of the next job (lo) and the end
 * (hi). Anyone takes the next job with one compare-and-swap that moves lo:
 * the owner as it goes on, and an idle worker that finds the shared queue
 * empty (so no job waits behind a long task while another worker idles,
 * and jobs still start in the order they were taken). Only the owner
 * refills the array, and only once it is empty; a refill bumps the
 * generation, so a taker whose view of the word predates the refill fails
 * its compare-and-swap instead of taking a stale entry. */
#ifndef CONC_EXECUTOR_BATCH_H
#define CONC_EXECUTOR_BATCH_H

#include <stdatomic.h>
#include <stdint.h>

#include "executor/job.h"

/* Jobs a batch holds: enough that one pop's lock and queue walk serve
 * several tiny tasks, few enough that the jobs behind a long task soon go
 * to idle workers. */
#define CONC__BATCH 8

/* The range word: a generation, then lo and hi, 8 bits each (CONC__BATCH
 * fits). */
#define CONC__BATCH_LO_SHIFT  8
#define CONC__BATCH_GEN_SHIFT 16
#define CONC__BATCH_INDEX     0xffu
_Static_assert(CONC__BATCH <= CONC__BATCH_INDEX, "a batch index fits 8 bits");

struct conc__batch {
    _Alignas(64) _Atomic uint64_t range; /* gen << 16 | lo << 8 | hi */
    conc_future *_Atomic jobs[CONC__BATCH];
};

static inline unsigned
conc__batch_lo(uint64_t w)
{
    return (unsigned)(w >> CONC__BATCH_LO_SHIFT) & CONC__BATCH_INDEX;
}

static inline unsigned
conc__batch_hi(uint64_t w)
{
    return (unsigned)w & CONC__BATCH_INDEX;
}

/* Whether jobs are left. Any thread. */
static inline int
conc__batch_nonempty(struct conc__batch *b)
{
    uint64_t w = atomic_load_explicit(&b->range, memory_order_seq_cst);
    return conc__batch_lo(w) < conc__batch_hi(w);
}

/* Fills an empty batch with `n` (1..CONC__BATCH) jobs. Its owner only. */
static inline void
conc__batch_fill(struct conc__batch *b, conc_future *const *jobs, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        atomic_store_explicit(&b->jobs[i], jobs[i], memory_order_relaxed);
    uint64_t w = atomic_load_explicit(&b->range, memory_order_relaxed);
    atomic_store_explicit(
        &b->range,
        ((w >> CONC__BATCH_GEN_SHIFT) + 1) << CONC__BATCH_GEN_SHIFT | n,
        memory_order_seq_cst);
}

/* Takes the batch's next job, or NULL if none is left. Any thread. */
static inline conc_future *
conc__batch_take(struct conc__batch *b)
{
    uint64_t w = atomic_load_explicit(&b->range, memory_order_acquire);
    for (;;) {
        unsigned lo = conc__batch_lo(w);
        if (lo >= conc__batch_hi(w))
            return NULL;
        conc_future *f =
            atomic_load_explicit(&b->jobs[lo], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(
                &b->range, &w, w + (1u << CONC__BATCH_LO_SHIFT),
                memory_order_acquire, memory_order_acquire))
            return f;
    }
}

#endif
