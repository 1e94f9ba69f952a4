/* Jobs: an executor's unit of work, a task and the future it completes,
 * in one block.
 *
 * Design. As libuv embeds `struct uv__work` in `uv_work_t` and gets the
 * request back with container_of, an executor's allocation holds the job's
 * fields beside a plain future: the future comes first, then what the
 * engines need (their list links, the task, its argument's place, the
 * engine's bookkeeping), then the argument's bytes, then the executor's
 * record for the job (conc__job_extra). The future knows nothing of this:
 * the executor hands out the future, and gets the job back from it with
 * conc__job_of, a constant offset. The engines keep handing futures to each
 * other (their lists link futures through job fields), since a future is
 * what every caller passes back to them.
 *
 * Layout. A job block is five cache lines in a pool (job.c): the future's
 * completion line; its callbacks, watches and small result; its hooks and
 * the fields a thread worker reads to run the job (its links, task,
 * argument, descriptor, kind and owner); the process engine's bookkeeping
 * and the block's pool, followed by the argument and record (64 bytes at
 * most in a pooled block). The static assertions below and in job.c keep
 * that layout: moving a field across a line adds a cache miss to every
 * task. */
#ifndef CONC_EXECUTOR_JOB_H
#define CONC_EXECUTOR_JOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/task.h"
#include "future/future_internal.h"

struct conc__jobpool;

struct conc__job {
    conc_future future; /* first: a job's block starts with its future */
    /* The line a thread worker reads to run the job. */
    conc_future *next;          /* the engine's list link (its lock guards) */
    conc_future *_Atomic qnext; /* the thread engine's queue link */
    conc_task_fn fn;
    const uint8_t *arg; /* len bytes: inline after the job, or owned */
    size_t len;
    int fd;        /* a descriptor for the task, or -1 */
    uint32_t kind; /* the executor's own tag (a Pool's, for its hook) */
    void *owner;   /* the executor's per-job record, or NULL */
    /* The process engine's bookkeeping, and where the block returns. */
    uint64_t seq;    /* the engine's sequence number */
    void *shared;    /* the engine's copy of the argument, or NULL */
    void *engine;    /* the process engine that holds the job, or NULL */
    uint64_t ticket; /* the engine's handle on a dispatched job */
    struct conc__jobpool *pool; /* where the block returns, or NULL */
};

/* The cache-line size the layout is made for (x86-64, most of aarch64). */
#define CONC__LINE 64

_Static_assert(offsetof(struct conc__job, future) == 0,
               "a job's future is its block's start");
_Static_assert(offsetof(struct conc__job, next) / CONC__LINE ==
                       offsetof(struct conc__job, owner) / CONC__LINE &&
                   offsetof(struct conc__job, owner) + sizeof(void *) <=
                       3 * CONC__LINE,
               "a job's run fields share its third line");
_Static_assert(sizeof(struct conc__job) <= 4 * CONC__LINE,
               "a job's fields fit in four lines");

/* The job a future of an executor belongs to. */
static inline struct conc__job *
conc__job_of(conc_future *f)
{
    return (struct conc__job *)((uint8_t *)f -
                                offsetof(struct conc__job, future));
}

/* The `extra` bytes after a job's argument, 8-aligned. */
static inline void *
conc__job_extra(struct conc__job *j)
{
    return (uint8_t *)(j + 1) + ((j->len + 7) & ~(size_t)7);
}

/* ---- Job blocks (job.c) ------------------------------------------------- */

/* A pool of job blocks, one per executor. Returns 0 or CONC_ENOMEM. */
int conc__jobpool_new(struct conc__jobpool **out);

/* Drops the owner's reference: the pool goes with its last job. */
void conc__jobpool_release(struct conc__jobpool *p);

/* A new pending job of `fn` in a block from `p` (NULL, or an argument too
 * large for a block: from the heap), with a copy of the `len` argument
 * bytes after it, room for `extra` bytes of the executor's own
 * (conc__job_extra), fd -1, and its future with `refs` references and
 * the hooks `ops`. Returns its future, or NULL without memory. */
conc_future *conc__job_new(struct conc__jobpool *p, conc_task_fn fn,
                           const void *arg, size_t len, size_t extra,
                           const struct conc__future_ops *ops, uint32_t refs);

/* Returns a freed job's block to its pool or the heap: the `release` hook
 * of every engine's futures (an engine with more to release calls it
 * last). */
void conc__job_release(conc_future *f);

#endif
