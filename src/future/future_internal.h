/* Futures from the inside: what producers (executors, the async layer)
 * and waiters (conc_wait, map iterators) use.
 *
 * Lock order: a future's lock is taken after its producer's (an engine's
 * lock) and before a watcher's (watch->notify runs under it); it is never
 * held while a callback runs. */
#ifndef CONC_FUTURE_INTERNAL_H
#define CONC_FUTURE_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>

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

/* ---- The producer's side ------------------------------------------------
 *
 * A producer is whatever runs the work a future stands for and completes
 * it: an executor's engine, a Pool, the async layer's tasks. It may embed
 * the future in a larger block of its own (an executor's job holds the
 * future first, then its task's fields: executor/job.h), and it learns of
 * the future's life through the hooks below; the future knows nothing of
 * the producer beyond them. A producer changes a future only through this
 * section's calls and the result buffer it fills while it runs the
 * future; once the future is done, a reader inside the library (a map
 * iterator) may read its code and result as conc_future_result would.
 * Every other field is future.c's. */

/* The hooks a producer gives its futures (one static table per kind of
 * producer). Every hook may be NULL. */
struct conc__future_ops {
    /* The producer's part in conc_future_cancel on a future not done:
     * returns 1 if it cancelled the future, -1 if the future may no longer
     * be cancelled, 0 to let the future's own state decide. */
    int (*cancel)(conc_future *f);
    /* Its part in conc__future_cancel_hard, with `cancel`'s returns: a
     * producer that can stop running work by force (a process engine
     * kills the worker) does so. NULL: conc_future_cancel's part. */
    int (*cancel_hard)(conc_future *f);
    /* The producer's part in reading a pending future's state
     * (conc_future_state_of, conc_future_running): marks the future
     * running if its work has visibly started elsewhere. */
    void (*sync)(conc_future *f);
    /* Takes back the block once the last reference is gone and the
     * future's own parts (message, result, callbacks) are freed. NULL:
     * the block came from conc__malloc and goes to conc__free. */
    void (*release)(conc_future *f);
};

struct conc_future {
    /* The line every completion writes. */
    _Atomic uint32_t state;    /* conc_future_state; a futex word */
    _Atomic uint32_t sleepers; /* threads asleep on state */
    _Atomic uint32_t refs;
    _Atomic uint32_t cancel; /* the running task's cancel token */
    conc__lockword lock;     /* guards the transitions to done, cbs, links */
    int code;                /* the task's status once finished */
    char *msg;               /* its failure message, or NULL */
    conc_buf result;         /* written by the producer, read once done */
    struct conc__callback *cbs, **cbs_tail;
    struct conc__watch_link *links;
    uint64_t small[4]; /* result's storage while the result fits (no need
                        * to clear it: conc__future_reset skips it) */
    const struct conc__future_ops *ops; /* the producer's hooks, or NULL */
};

/* A completion reads and writes the state, the lock, the code, the
 * message and the result's data, length and capacity: one cache line. */
_Static_assert(offsetof(conc_future, result) + offsetof(conc_buf, borrowed) <=
                   64,
               "a future's completion fields share its first line");

/* Makes the block at `f`, which holds zeroes or a future freed earlier, a
 * new pending future with `refs` references (1 or 2) and the producer's
 * hooks `ops` (may be NULL). Writes only the fields that change, so a
 * recycled block's lines that other threads last read stay shared. Any
 * thread that owns the block. */
void conc__future_reset(conc_future *f, const struct conc__future_ops *ops,
                        uint32_t refs);

/* Sets a field only if it differs (see conc__future_reset): for producers
 * that recycle their own blocks too. */
#define CONC__SET(field, v)                                                    \
    do {                                                                       \
        if ((field) != (v))                                                    \
            (field) = (v);                                                     \
    } while (0)

/* The buffer a producer fills with the result while the future is running
 * (the task appends to it), before it completes the future. */
static inline conc_buf *
conc__future_result_buf(conc_future *f)
{
    return &f->result;
}

/* The running task's cancel token: nonzero once conc_future_cancel was
 * called on the running future. The producer's task reads it
 * (conc_task_cancelled). */
static inline _Atomic uint32_t *
conc__future_cancel_token(conc_future *f)
{
    return &f->cancel;
}

/* Finishes a future whose result buffer the producer filled: with `code`
 * < 0, the buffer is emptied and `msg` (may be NULL) copied (if the copy
 * finds no memory, the code still travels, without its message). Wakes
 * waiters, notifies watches and runs callbacks, in the calling thread.
 * Returns 0 or CONC_ESTATE (already done). */
int conc__future_finish(conc_future *f, int code, const char *msg);

/* Finishes `f` successfully with `len` bytes at `data` as its result,
 * borrowed, not copied: they must stay valid as long as anyone may read
 * the result (an array map's AsyncResult is the caller's output array).
 * Returns 0 or CONC_ESTATE. */
int conc__future_finish_borrowed(conc_future *f, const void *data, size_t len);

/* Cancels `f` if pending, for its producer (an executor shutting down):
 * as conc_future_cancel but without the producer's hook or the running
 * token. Returns 1 if it is now cancelled. */
int conc__future_cancel_pending(conc_future *f);

/* The first half of conc__future_cancel_pending, for a caller holding
 * its own lock: cancels `f` if pending (watches are notified) and returns
 * the callbacks that conc__future_complete_end must run once that lock is
 * released. *cancelled says whether `f` is now cancelled. */
struct conc__callback *conc__future_cancel_begin(conc_future *f,
                                                 int *cancelled);
void conc__future_complete_end(conc_future *f, struct conc__callback *cbs);

/* Marks a running future cancelled (its result buffer emptied): its task
 * saw the cancel token and returned CONC_ECANCELED. Returns 0 or
 * CONC_ESTATE. */
int conc__future_cancel_running(conc_future *f);

/* The first half of conc__future_cancel_running, for a producer holding
 * its own lock (as conc__future_cancel_begin): cancels `f` if running and
 * returns the callbacks for conc__future_complete_end. *cancelled says
 * whether `f` is now cancelled. */
struct conc__callback *conc__future_cancel_running_begin(conc_future *f,
                                                         int *cancelled);

/* conc_future_cancel for a caller that wants running work stopped, not
 * only pending work dropped (a TaskGroup that fails): through the
 * producer's cancel_hard hook when it has one (a process engine kills the
 * worker running `f`), else as conc_future_cancel. Returns 1 if `f` is
 * now cancelled, 0 if not (it finished, or runs on). Any thread. */
int conc__future_cancel_hard(conc_future *f);

/* Links `l` (l->watch and l->future set) into its future's list unless the
 * future is done. Returns 1 if linked, 0 if the future is already done. */
int conc__future_watch(struct conc__watch_link *l);

/* Unlinks `l` if it is still linked; afterwards its watch is never
 * notified through it. */
void conc__future_unwatch(struct conc__watch_link *l);

/* The state word as it is, without asking the producer (which
 * conc_future_state_of does, through ops->sync). */
static inline uint32_t
conc__future_state_raw(conc_future *f)
{
    return atomic_load_explicit(&f->state, memory_order_acquire);
}

/* Whether the future finished with a failure or was cancelled. */
int conc__future_failed(conc_future *f);

#endif
