/* Futures from the inside: what executors and waiters use. */
#ifndef CONC_FUTURE_INTERNAL_H
#define CONC_FUTURE_INTERNAL_H

#include <stdatomic.h>

#include "conc/future.h"
#include "core/internal.h"
#include "core/lockword.h"

/* Someone waiting on several futures (conc_wait, as_completed, map
 * iterators). `notify` runs in the completing thread while it holds the
 * future's lock: keep it short and never take that future's lock in it. */
struct conc__watch {
    void (*notify)(struct conc__watch *w, conc_future *f);
};

/* A watch's link into one future's list, owned by the watcher, who holds
 * a reference to the future while linked. */
struct conc__watch_link {
    struct conc__watch *watch;
    conc_future *future;
    int linked; /* guarded by the future's lock, as prev and next */
    struct conc__watch_link *prev, *next;
};

struct conc__callback {
    conc_future_cb fn;
    void *arg;
    struct conc__callback *next;
};

/* The task part of a future, owned by the executor that runs it. */
struct conc__job {
    conc_future *next; /* the executor's list link (its lock guards it) */
    conc_future *_Atomic qnext; /* the thread engine's queue link */
    conc_task_fn fn;
    const uint8_t *arg; /* len bytes: inline after the future, or owned */
    size_t len;
    int fd;        /* a descriptor for the task, or -1 */
    uint32_t kind; /* the executor's own tag */
    void *owner;   /* the executor's per-task context */
    uint64_t seq;  /* the executor's sequence number */
    void *shared;  /* the engine's copy of the argument, or NULL */
    /* The engine's part in conc_future_cancel, or NULL: returns 1 if it
     * cancelled the future, -1 if the future may no longer be cancelled,
     * 0 to let the future's own state decide. */
    int (*revoke)(conc_future *f);
    /* The engine's part in reading a pending future's state, or NULL:
     * marks it running if its worker has started it. */
    void (*sync)(conc_future *f);
    /* Drops the future's hold on `engine` when the future is freed. */
    void (*release)(void *engine);
    void *engine;    /* what revoke, sync and release work on */
    uint64_t ticket; /* the engine's handle on a dispatched job */
};

struct conc_future {
    _Atomic uint32_t state;    /* conc_future_state; a futex word */
    _Atomic uint32_t sleepers; /* threads asleep on state */
    _Atomic uint32_t refs;
    _Atomic uint32_t cancel; /* the running task's cancel token */
    conc__lockword lock;     /* guards the transitions to done, cbs, links */
    int code;                /* the task's status once finished */
    char *msg;               /* its failure message, or NULL */
    conc_buf result;         /* written by the runner, read once done */
    struct conc__callback *cbs, **cbs_tail;
    struct conc__watch_link *links;
    uint64_t small[4]; /* result's storage while the result fits (no need
                        * to clear it: conc__future_init skips it) */
    struct conc__job job;
    struct conc__fpool *pool; /* where the block returns, or NULL */
};

/* A new pending future with one reference and a copy of `len` argument
 * bytes laid out after it (job.arg; job.fd is -1), then room for `extra`
 * bytes of the executor's own (conc__future_extra). Returns 0 or
 * CONC_ENOMEM. */
int conc__future_new_job(conc_task_fn fn, const void *arg, size_t len,
                         size_t extra, conc_future **out);

/* The `extra` bytes after a future's argument, 8-aligned. */
static inline void *
conc__future_extra(conc_future *f)
{
    return (uint8_t *)(f + 1) + ((f->job.len + 7) & ~(size_t)7);
}

/* Makes the block at `f` (room for `len` argument bytes after it) a new
 * pending future of `fn`, as conc__future_new_job does. */
void conc__future_init(conc_future *f, conc_task_fn fn, const void *arg,
                       size_t len);
/* conc__future_init for a block that holds a future already (a freed one,
 * or zeroes): writes only the fields that change. */
void conc__future_reinit(conc_future *f, conc_task_fn fn, const void *arg,
                         size_t len);

/* A pool of future blocks (fpool.c), one per executor. */
struct conc__fpool;
int conc__fpool_new(struct conc__fpool **out);
/* Drops the owner's reference: the pool goes with its last future. */
void conc__fpool_release(struct conc__fpool *p);
/* conc__future_new_job with the block from `p` (NULL: from the heap; an
 * argument too large for a block also goes to the heap). */
int conc__future_new_pooled(struct conc__fpool *p, conc_task_fn fn,
                            const void *arg, size_t len, size_t extra,
                            conc_future **out);
/* Returns a freed future's block to its pool. */
void conc__fpool_put(struct conc__fpool *p, conc_future *f);

/* Finishes a running future whose result buffer the runner filled: with
 * `code` < 0, the buffer is emptied and `msg` (may be NULL) copied. Wakes
 * waiters, notifies watches and runs callbacks. Returns 0 or CONC_ESTATE. */
int conc__future_finish(conc_future *f, int code, const char *msg);

/* Cancels `f` if pending, from an executor shutting down: as
 * conc_future_cancel but without touching the running token. Returns 1 if
 * it is now cancelled. */
int conc__future_cancel_pending(conc_future *f);

/* The first half of conc__future_cancel_pending, for a caller holding
 * its own lock: cancels `f` if pending (watches are notified) and returns
 * the callbacks that conc__future_complete_end must run once that lock is
 * released. *cancelled says whether `f` is now cancelled. */
struct conc__callback *conc__future_cancel_begin(conc_future *f,
                                                 int *cancelled);
void conc__future_complete_end(conc_future *f, struct conc__callback *cbs);

/* Marks a running future cancelled: its task saw the cancel token and
 * returned CONC_ECANCELED. Returns 0 or CONC_ESTATE. */
int conc__future_cancel_running(conc_future *f);

/* Links `l` (l->watch and l->future set) into its future's list unless the
 * future is done. Returns 1 if linked, 0 if the future is already done. */
int conc__future_watch(struct conc__watch_link *l);

/* Unlinks `l` if it is still linked; afterwards its watch is never
 * notified through it. */
void conc__future_unwatch(struct conc__watch_link *l);

/* The state word as it is, without asking the engine (which
 * conc_future_state_of does, under the engine's lock). */
static inline uint32_t
conc__future_state_raw(conc_future *f)
{
    return atomic_load_explicit(&f->state, memory_order_acquire);
}

/* Whether the future finished with a failure or was cancelled. */
int conc__future_failed(conc_future *f);

/* The task context of the calling thread, set by executors around a task
 * so that conc_task_cancelled and conc_task_fd can answer. */
struct conc__task_ctx {
    _Atomic uint32_t *cancel; /* the future's token, or NULL */
    int fd;
};
void conc__task_enter(struct conc__task_ctx *ctx);
void conc__task_leave(void);

#endif
